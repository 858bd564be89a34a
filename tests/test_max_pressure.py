"""The ``max-pressure`` controller: pressures on synthetic observations, then real SUMO runs."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mobility import load_scenario, run
from mobility.controllers import JunctionObservation, Observation, make
from mobility.controllers.max_pressure import MaxPressure
from mobility.errors import ControllerError
from mobility.network import SignalNetwork
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import write_sumocfg


@pytest.fixture(scope="module")
def corridor() -> SignalNetwork:
    return SignalNetwork.load(load_scenario("corridor").net_file)


def _obs(net: SignalNetwork, green: int | None, count: dict[str, float] | None = None,
         queue: dict[str, float] | None = None, out_queue: dict[str, float] | None = None) -> JunctionObservation:
    """Junction J1 with the given per-lane readings (zero elsewhere)."""
    j = net.junctions["J1"]

    def arr(lanes: tuple[str, ...], values: dict[str, float] | None) -> np.ndarray:
        return np.array([(values or {}).get(lane, 0.0) for lane in lanes])

    return JunctionObservation("J1", j.incoming_lanes, arr(j.incoming_lanes, queue), arr(j.incoming_lanes, count),
                               np.zeros(len(j.incoming_lanes)), 0, green, 10.0, j.outgoing_lanes,
                               np.zeros(len(j.outgoing_lanes)), arr(j.outgoing_lanes, out_queue))


def test_a_lane_feeding_several_links_counts_once(corridor: SignalNetwork) -> None:
    """J1's stages: 0 protected lefts, 1 eastbound lead, 2 throughs, 3 side streets. The northern side
    street is one lane with three links (right 'G', through 'G', left 'g')."""
    c = MaxPressure()
    c.reset(corridor, seed=1)
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0})
    assert c.pressures(o) == pytest.approx([0, 0, 0, 6.0])
    strict = MaxPressure(include_permissive=False)
    strict.reset(corridor, seed=1)
    assert strict.pressures(o) == pytest.approx([0, 0, 0, 4.0])  # the permissive left's third left out
    # its exits: J1_W_0 (right), J1_S1_0 (through), J1_J2_1 (left): a standing queue on one costs 1/3 each
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0}, out_queue={"J1_S1_0": 3.0})
    assert c.pressures(o)[3] == pytest.approx(6.0 - 3.0 / 3)
    upstream_queue = MaxPressure(upstream="queue")
    upstream_queue.reset(corridor, seed=1)
    assert upstream_queue.pressures(_obs(corridor, 2, count={"N1_J1_0": 6.0}, queue={"N1_J1_0": 2.0}))[3] == 2.0


def test_serves_the_largest_pressure_ties_keep_the_current_green(corridor: SignalNetwork) -> None:
    c = MaxPressure()
    c.reset(corridor, seed=1)

    def act(o: JunctionObservation, t: float = 0.0) -> int:
        return c.act(Observation(t, {"J1": o}))["J1"].index

    assert act(_obs(corridor, 2)) == 2  # nothing anywhere: keep
    assert act(_obs(corridor, 2, count={"N1_J1_0": 3.0, "S1_J1_0": 1.0})) == 3
    # eastbound lead (stage 1) and throughs (stage 2) both serve W_J1_bay_0/1 equally: a tie, keep 2
    assert act(_obs(corridor, 2, count={"W_J1_bay_0": 4.0})) == 2
    assert act(_obs(corridor, 1, count={"W_J1_bay_0": 4.0})) == 1
    # during a transition (no green showing) the stage being moved to counts as current
    assert act(_obs(corridor, None, count={"W_J1_bay_0": 4.0})) == 1


def test_spillback_guard_ignores_movements_into_a_full_lane(corridor: SignalNetwork) -> None:
    """The north side street's through exit J1_S1_0 is full: with the guard its through link adds no
    pressure (its right and left links still do); without it, the lane's count dominates."""
    j = corridor.junctions["J1"]
    cap = corridor.lane_length("J1_S1_0") / 7.5
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0})
    o.out_count_veh[j.outgoing_lanes.index("J1_S1_0")] = cap  # full, nobody halted yet
    plain = MaxPressure()
    plain.reset(corridor, seed=1)
    guarded = MaxPressure(spillback_guard=0.9)
    guarded.reset(corridor, seed=1)
    assert plain.pressures(o)[3] == pytest.approx(6.0)
    assert guarded.pressures(o)[3] == pytest.approx(6.0 * 2 / 3)  # right and left links only
    o.out_count_veh[j.outgoing_lanes.index("J1_S1_0")] = 0.5 * cap  # half full: no effect
    assert guarded.pressures(o)[3] == pytest.approx(6.0)


def test_a_starved_lane_is_served_after_max_red(corridor: SignalNetwork) -> None:
    """Throughs keep the pressure; one vehicle waits in the westbound left bay (served by stage 0 only)."""
    busy = {"W_J1_bay_0": 8.0, "W_J1_bay_1": 8.0, "J2_J1_bay_0": 8.0, "J2_J1_bay_1": 8.0, "J2_J1_bay_2": 1.0}
    for max_red, expected in ((120.0, 0), (None, 2)):
        c = MaxPressure(max_red_s=max_red)
        c.reset(corridor, seed=1)
        picks = [c.act(Observation(t, {"J1": _obs(corridor, 2, count=busy)}))["J1"].index for t in (0.0, 60.0, 115.0, 120.0)]
        assert picks == [2, 2, 2, expected]


def test_declares_its_safety_and_decision_interval() -> None:
    c = MaxPressure(decision_interval_s=2, min_green_s=8, max_green_s=60)
    assert c.decision_interval_s == 2.0
    assert (c.safety().min_green_s, c.safety().max_green_s) == (8.0, 60.0)
    assert c.get_params()["decision_interval_s"] == 2  # stored unchanged


@pytest.mark.parametrize("spec, param", [("max-pressure(decision_interval_s=0)", "decision_interval_s"),
                                         ("max-pressure(min_green_s=20, max_green_s=10)", "max_green_s"),
                                         ("max-pressure(upstream='halted')", "upstream"),
                                         ("max-pressure(max_red_s=-5)", "max_red_s"),
                                         ("max-pressure(include_permissive=1)", "include_permissive")])
def test_bad_parameters_are_named(spec: str, param: str) -> None:
    with pytest.raises(ControllerError, match=f"controller 'max-pressure': parameter '{param}'"):
        make(spec)


# -- real SUMO ------------------------------------------------------------------------------


@pytest.mark.sumo
def test_keeps_the_only_loaded_approach_green(one_junction: Path, tmp_path: Path) -> None:
    """900 veh/h W→E only. The fixed 30/30 s plan gives W→E ~45 % of the time (oversaturated);
    max-pressure holds W→E until the 90 s maximum green, visits the empty N→S for its 5 s minimum,
    and returns: W→E shows green > 80 % of the time and delay falls below 40 % of static's."""
    shutil.copy(one_junction, tmp_path / one_junction.name)
    routes = """<routes><vType id="c" sigma="0"/>
      <flow id="we" type="c" begin="0" end="900" period="exp(0.25)" from="W_C" to="C_E" departSpeed="max"/></routes>"""
    sc = from_sumocfg(write_sumocfg(tmp_path, tmp_path / one_junction.name, routes, end=1000))
    sc = sc.replace(zones=ZoneSpec(400, 400))
    add, states = tmp_path / "tls.add.xml", tmp_path / "states.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="C" dest="{states}"/></additional>')
    static = run(sc, "static", seed=1).junctions.set_index("junction_id").loc["C"]
    mp = run(sc, "max-pressure", seed=1, sumo_args=["-a", str(add)]).junctions.set_index("junction_id").loc["C"]
    shown = [e.get("state") for e in ET.parse(states).getroot().iter("tlsState")]
    assert shown.count("rG") / len(shown) > 0.8
    assert static["delay_s_per_veh"] > 20
    assert mp["delay_s_per_veh"] < 0.4 * static["delay_s_per_veh"]
    assert mp["stops_per_veh"] < static["stops_per_veh"]


@pytest.mark.sumo
def test_corridor_runs_clean_and_beats_the_existing_timing(tmp_path: Path) -> None:
    """The whole bundled corridor run (seed 1): no teleports (no left-turner starved), no collisions,
    everyone inserted, and network delay well below the existing timing's."""
    sc = load_scenario("corridor")
    stats = tmp_path / "stats.xml"
    mp = run(sc, "max-pressure", seed=1, sumo_args=["--collision.action", "warn", "--statistic-output", str(stats)])
    static = run(sc, "static", seed=1).network.iloc[0]
    n = mp.network.iloc[0]
    root = ET.parse(stats).getroot()
    assert n["teleports"] == 0 and root.find("teleports").get("total") == "0"
    assert root.find("safety").get("collisions") == "0"
    assert n["insertion_backlog_veh"] == 0
    assert n["delay_s_per_veh"] < 0.7 * static["delay_s_per_veh"]
