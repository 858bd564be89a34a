"""The ``cycle-adaptive`` controller: split arithmetic on synthetic numbers, then real SUMO runs on the
one-junction network of conftest (stage 0 = W→E, stage 1 = N→S, 30 s + 3 s each, cycle 66 s)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mobility import run
from mobility.controllers import make
from mobility.controllers.adaptive import CycleAdaptive, _bounded_share, _round_to
from mobility.errors import ControllerError
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import write_sumocfg


def test_bounded_share_meets_the_total_within_bounds() -> None:
    g = _bounded_share(np.array([50.0, 5.0, 5.0]), np.array([10.0, 10.0, 10.0]), np.array([40.0, 40.0, 40.0]), 60.0)
    assert g.sum() == pytest.approx(60.0)
    assert g == pytest.approx([40.0, 10.0, 10.0])
    g = _bounded_share(np.array([3.0, 1.0]), np.array([5.0, 5.0]), np.array([100.0, 100.0]), 40.0)
    assert g == pytest.approx([30.0, 10.0])
    r = _round_to(np.array([10.4, 20.4, 9.2]), 40.0)
    assert r.sum() == 40 and (r == np.round(r)).all()


@pytest.mark.parametrize("spec, param", [("cycle-adaptive(target_ds=1.5)", "target_ds"),
                                         ("cycle-adaptive(cycle_max=0.8)", "cycle_max"),
                                         ("cycle-adaptive(split_min=0)", "split_min"),
                                         ("cycle-adaptive(coordinate=1)", "coordinate")])
def test_bad_parameters_are_named(spec: str, param: str) -> None:
    with pytest.raises(ControllerError, match=f"controller 'cycle-adaptive': parameter '{param}'"):
        make(spec)


@pytest.mark.sumo
def test_busier_stage_gets_the_longer_split_cycle_within_bounds(one_junction: Path, tmp_path: Path) -> None:
    """W→E 720 veh/h, N→S 120 veh/h on the 30/30 s program: after a few cycles the W→E green is longer
    in every cycle and on average more than 1.8 × the N→S green (mostly at its lower bound, half its
    real green), every installed cycle lies within [0.75, 1.3] × 66 s, the plans change
    only at cycle boundaries (no yellow is inserted: every state SUMO shows is one of the program's),
    and the delay falls below the fixed program's."""
    shutil.copy(one_junction, tmp_path / one_junction.name)
    routes = """<routes><vType id="c" sigma="0"/>
      <flow id="we" type="c" begin="0" end="1500" vehsPerHour="720" from="W_C" to="C_E" departSpeed="max"/>
      <flow id="ns" type="c" begin="0" end="1500" vehsPerHour="120" from="N_C" to="C_S" departSpeed="max"/>
      </routes>"""
    sc = from_sumocfg(write_sumocfg(tmp_path, tmp_path / one_junction.name, routes, end=1600))
    sc = sc.replace(zones=ZoneSpec(300, 300))
    add, states = tmp_path / "tls.add.xml", tmp_path / "states.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="C" dest="{states}"/></additional>')
    static = run(sc, "static", seed=1).junctions.set_index("junction_id").loc["C"]
    ctl = CycleAdaptive()
    res = run(sc, ctl, seed=1, sumo_args=["-a", str(add)]).junctions.set_index("junction_id").loc["C"]
    cycles = [c for _, _, c, _ in ctl.history]
    assert len(ctl.history) >= 15
    assert all(0.75 * 66 - 1e-9 <= c <= 1.3 * 66 + 1e-9 for c in cycles)
    # boundaries follow each other by exactly the cycle installed at the previous one
    times = [t for t, *_ in ctl.history]
    assert np.diff(times) == pytest.approx(cycles[:-1])
    late = [g for t, _, _, g in ctl.history if t > 600]
    assert late and all(g[0] > g[1] for g in late)
    assert np.mean([g[0] for g in late]) > 1.8 * np.mean([g[1] for g in late])
    assert min(cycles) < 66  # undersaturated: the cycle shortens
    shown = {e.get("state") for e in ET.parse(states).getroot().iter("tlsState")}
    assert shown <= {"rG", "ry", "Gr", "yr"}
    assert res["delay_s_per_veh"] < static["delay_s_per_veh"]
