"""Phase-level control through the contract on real SUMO: the phases are predictable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility import load_scenario, run
from mobility.network import SignalNetwork
from mobility.signals import clearance_state, yellow_state

from .helpers import Cyclic

pytestmark = pytest.mark.sumo


def test_cyclic_controller_yields_predictable_safe_phases(tmp_path: Path) -> None:
    sc = load_scenario("corridor").replace(end_s=400.0, warmup_s=0.0)
    add = tmp_path / "tls.add.xml"
    states = tmp_path / "states.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="J2" dest="{states}"/></additional>')
    res = run(sc, Cyclic(green_s=20.0), seed=1,
              sumo_args=["-a", str(add), "--collision.action", "warn", "--collision-output", str(tmp_path / "col.xml")])
    assert res.network.iloc[0]["teleports"] == 0
    assert not list(ET.parse(tmp_path / "col.xml").getroot().iter("collision"))

    j = SignalNetwork.load(sc.net_file).junctions["J2"]
    greens = [j.phases[i].state for i in j.green_phases]
    every_step = [(float(e.get("time")), e.get("state")) for e in ET.parse(states).getroot().iter("tlsState")]
    changes = [c for i, c in enumerate(every_step) if i == 0 or c[1] != every_step[i - 1][1]]
    assert len(greens) == 4  # lefts, eastbound lead, through, side street (clearance tails are not stages)
    # from the first take-over on, the sequence is green k (20 s) → yellow (3 s) → clearance (2 s) → green k+1
    first = next(i for i, (_, s) in enumerate(changes) if s == greens[1])
    seq = changes[first:first + 9]
    expected, t = [], seq[0][0]
    for k in range(1, 4):
        g, h = greens[k % len(greens)], greens[(k + 1) % len(greens)]
        expected += [(t, g), (t + 20, yellow_state(g, h)), (t + 23, clearance_state(g, h))]
        t += 25
    assert seq == expected
