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

from .conftest import resco_map, write_sumocfg


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
    c = MaxPressure(normalize=False)
    c.reset(corridor, seed=1)
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0})
    assert c.pressures(o) == pytest.approx([0, 0, 0, 6.0])
    strict = MaxPressure(normalize=False, include_permissive=False)
    strict.reset(corridor, seed=1)
    assert strict.pressures(o) == pytest.approx([0, 0, 0, 4.0])  # the permissive left's third left out
    # its exits: J1_W_0 (right), J1_S1_0 (through), J1_J2_1 (left): a standing queue on one costs 1/3 each
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0}, out_queue={"J1_S1_0": 3.0})
    assert c.pressures(o)[3] == pytest.approx(6.0 - 3.0 / 3)
    upstream_queue = MaxPressure(normalize=False, upstream="queue")
    upstream_queue.reset(corridor, seed=1)
    assert upstream_queue.pressures(_obs(corridor, 2, count={"N1_J1_0": 6.0}, queue={"N1_J1_0": 2.0}))[3] == 2.0


def test_serves_the_largest_pressure_ties_keep_the_current_green(corridor: SignalNetwork) -> None:
    c = MaxPressure(normalize=False)
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
    """The north side street's through exit J1_S1_0 is full (every 7.5 m slot taken, vehicles
    standing): with the guard (default 0.9) its through link adds no pressure (its right and left
    links still do); without it, the lane's count dominates. Full of *moving* vehicles, or half
    full, it is not spillback."""
    j = corridor.junctions["J1"]
    k = j.outgoing_lanes.index("J1_S1_0")
    cap = np.floor(corridor.lane_length("J1_S1_0") / 7.5)
    n = cap + 30.0  # more waiting upstream than the exit holds: the through link's own pressure is positive
    o = _obs(corridor, 2, count={"N1_J1_0": n}, out_queue={"J1_S1_0": cap})
    o.out_count_veh[k] = cap
    plain = MaxPressure(normalize=False, spillback_guard=None, downstream="count")
    plain.reset(corridor, seed=1)
    guarded = MaxPressure(normalize=False, downstream="count")
    guarded.reset(corridor, seed=1)
    assert guarded.get_params()["spillback_guard"] == 0.9
    assert plain.pressures(o)[3] == pytest.approx(n - cap / 3)
    assert guarded.pressures(o)[3] == pytest.approx(n * 2 / 3)  # right and left links only
    assert guarded.full_exits(o)[k] and guarded.full_exits(o).sum() == 1
    o.out_queue_veh[k] = 0.0  # full but moving: not spillback
    assert not guarded.full_exits(o)[k]
    o.out_queue_veh[k] = o.out_count_veh[k] = np.ceil(0.5 * cap)  # half full, standing: no effect
    assert not guarded.full_exits(o)[k]
    assert guarded.pressures(o)[3] == pytest.approx(n - np.ceil(0.5 * cap) / 3)


def test_normalized_pressure_reads_lanes_as_shares_of_their_storage(corridor: SignalNetwork) -> None:
    """normalize=True: the north side street (one lane, three links) holding 6 vehicles weighs
    6 / its 7.5 m slots; a full short lane weighs as much as a full long one."""
    c = MaxPressure(normalize=True)
    c.reset(corridor, seed=1)
    slots = np.floor(corridor.lane_length("N1_J1_0") / 7.5)
    assert c.pressures(_obs(corridor, 2, count={"N1_J1_0": 6.0}))[3] == pytest.approx(6.0 / slots)
    assert c.pressures(_obs(corridor, 2, count={"N1_J1_0": slots}))[3] == pytest.approx(1.0)


def test_stages_contained_in_another_are_not_chosen() -> None:
    """Real programs carry intermediate phases: a stage whose green links are a subset of another's,
    or a repeat of an earlier stage, is never chosen by pressure."""
    from mobility.controllers.max_pressure import _maximal

    serves = np.array([[1, 1, 0, 0],   # 0: main
                       [0, 1, 0, 0],   # 1: part of 0 (intermediate)
                       [0, 0, 1, 1],   # 2: cross
                       [1, 1, 0, 0],   # 3: repeat of 0
                       [0, 1, 1, 0]], dtype=bool)  # 4: overlaps both, contained in neither
    assert _maximal(np.where(serves, 2, 0)).tolist() == [True, False, True, False, True]
    # right of way counts: a stage protecting a turn ('G', 2) that another serves permissively
    # ('g', 1) is not contained in it; a stage serving it permissively only is
    priority = np.array([[2, 1, 0],    # 0: through G, left turn g
                         [0, 2, 0],    # 1: protected left
                         [0, 1, 0],    # 2: the left turn permissive only: contained in 0 and 1
                         [0, 0, 2]])   # 3: cross
    assert _maximal(priority).tolist() == [True, True, False, True]


def test_a_permissive_turn_facing_an_opposing_queue_adds_no_pressure() -> None:
    """ingolstadt21's gneJ257: its first stage (``GGrrrrGg``) serves the left turn from -174800513
    (link 7) permissively against the through stream from 201238718#1 (link 1, a foe); its second
    (``rrrrrrGG``) protects it. With ``permissive_weight=0`` the left-turn lane's queue counts in the
    first stage only while the opposing lane is empty; the protected stage always has it."""
    net = SignalNetwork.load(resco_map("ingolstadt21").with_name("ingolstadt21.net.xml"))
    j = net.junctions["gneJ257"]
    left, opposing = "-174800513_2", "201238718#1_1"
    assert {lk.in_lane for lk in j.links if lk.index == 7} == {left}

    def obs(count: dict[str, float]) -> JunctionObservation:
        c = np.array([count.get(lane, 0.0) for lane in j.incoming_lanes])
        return JunctionObservation("gneJ257", j.incoming_lanes, np.zeros(len(c)), c, np.zeros(len(c)), 0, 0, 10.0,
                                   j.outgoing_lanes, np.zeros(len(j.outgoing_lanes)), np.zeros(len(j.outgoing_lanes)))

    weighted, full = MaxPressure(permissive_weight=0.0, approach_m=None), MaxPressure(approach_m=None)
    for c in (weighted, full):
        c.reset(net, 1)
    alone, opposed = obs({left: 6.0}), obs({left: 6.0, opposing: 4.0})
    assert weighted.pressures(alone)[0] == pytest.approx(full.pressures(alone)[0])  # nobody to yield to
    assert weighted.pressures(opposed)[0] == pytest.approx(full.pressures(opposed)[0] - 6.0)  # the turn drops out
    assert weighted.pressures(opposed)[1] == pytest.approx(full.pressures(opposed)[1])  # protected: unchanged
    assert weighted._eligible["gneJ257"][1] and not full._eligible["gneJ257"][1]


def test_signals_joined_by_a_short_link_with_one_program_are_coupled() -> None:
    """ingolstadt21 has two pairs of signals 12–15 m apart: 30503246/30624898 (15.3 m, the same
    38/3/6/3/37/3 s program: one controller in the field) and 243641585/gneJ257 (12.1 m, programs
    of 85 s and 90 s). Only the first runs in lockstep; cologne8 has no short link between signals."""
    from mobility.network import coupled_signals, short_link

    net = SignalNetwork.load(resco_map("ingolstadt21").with_name("ingolstadt21.net.xml"))
    assert coupled_signals(net) == [("30503246", "30624898")]
    assert short_link(net, "243641585", "-174800513_2") == ("gneJ257", (7,))
    assert short_link(net, "gneJ257", "201201950#0_1") is None  # 68 m: not short
    assert coupled_signals(SignalNetwork.load(resco_map("cologne8").with_name("cologne8.net.xml"))) == []


def test_coupled_signals_serve_the_stage_of_their_summed_pressure() -> None:
    """30503246 alone would keep its first stage; the queue at 30624898 makes the third stage the
    group's largest pressure: both serve it (and with ``coupled=False`` each decides alone)."""
    net = SignalNetwork.load(resco_map("ingolstadt21").with_name("ingolstadt21.net.xml"))
    ids = ("30503246", "30624898")

    def obs(jid: str, count: dict[int, float]) -> JunctionObservation:
        j = net.junctions[jid]
        c = np.zeros(len(j.incoming_lanes))
        for stage, n in count.items():  # n vehicles on every lane the stage serves only
            st = j.phases[j.green_phases[stage]].state
            served = {lk.in_lane for lk in j.links if st[lk.index] in "Gg"}
            others = {lk.in_lane for k, g in enumerate(j.green_phases) if k != stage
                      for lk in j.links if j.phases[g].state[lk.index] in "Gg"}
            for lane in served - others:
                c[j.incoming_lanes.index(lane)] = n
        return JunctionObservation(jid, j.incoming_lanes, np.zeros(len(c)), c, np.zeros(len(c)), 0, 0, 30.0,
                                   j.outgoing_lanes, np.zeros(len(j.outgoing_lanes)), np.zeros(len(j.outgoing_lanes)))

    o = Observation(1000.0, {ids[0]: obs(ids[0], {0: 2.0}), ids[1]: obs(ids[1], {2: 9.0})})
    both = MaxPressure(approach_m=None, switch_cost=False)
    both.reset(net, 1)
    acts = both.act(o)
    assert acts[ids[0]] == acts[ids[1]] and acts[ids[0]].index == 2
    alone = MaxPressure(approach_m=None, switch_cost=False, coupled=False)
    alone.reset(net, 1)
    acts = alone.act(o)
    assert acts[ids[0]].index == 0 and acts[ids[1]].index == 2


@pytest.mark.sumo
def test_ingolstadt21_does_not_lock_where_it_locked() -> None:
    """RESCO's ingolstadt21 under ``--time-to-teleport -1``, seed 7: before signals joined by a short
    link were coupled (30503246/30624898 deciding together, 243641585/gneJ257 left to their
    programs), max-pressure locked the network (vehicles standing in the junctions and on the
    12–15 m links between them): 249 s/veh network delay, 50 vehicles never entered (static: 138).
    Now every vehicle enters and the delay is below RESCO's 1.3 × 76 s target for max-pressure.
    (Lock-ups are chaotic: over seeds 1–10, 2 of 10 still lock partly, against 4 of 10 before;
    docs/benchmarks.md.)"""
    res = run(resco_map("ingolstadt21"), "max-pressure", seed=7, sumo_args=["--time-to-teleport", "-1"])
    n = res.network.iloc[0]
    assert n["insertion_backlog_veh"] == 0
    assert n["delay_s_per_veh"] < 99.0


def test_cyclic_serves_stages_in_program_order(corridor: SignalNetwork) -> None:
    """cyclic=True: when the current stage loses, the next stage in program order with pressure is
    served, not the one with the largest pressure."""
    c = MaxPressure(normalize=False, cyclic=True, maximal_stages=False)
    c.reset(corridor, seed=1)
    plain = MaxPressure(normalize=False, maximal_stages=False)
    plain.reset(corridor, seed=1)
    # stage 0 (protected lefts) has a little pressure, stage 3 (side streets) the most; stage 2 is showing, empty
    o = _obs(corridor, 2, count={"N1_J1_0": 6.0, "W_J1_bay_2": 1.0})
    p = c.pressures(o)
    assert p[3] > p[0] > 0 and p[2] <= 0
    assert plain.act(Observation(0.0, {"J1": o}))["J1"].index == 3
    assert c.act(Observation(0.0, {"J1": o}))["J1"].index == 3  # 2 -> next in order with pressure: 3
    o = _obs(corridor, 3, count={"N1_J1_0": 0.0, "W_J1_bay_2": 1.0, "W_J1_bay_0": 9.0})
    # showing 3, now empty; stage 1 has the most pressure (10) but 0 (1) comes next in order
    assert plain.act(Observation(5.0, {"J1": o}))["J1"].index == 1
    assert c.act(Observation(5.0, {"J1": o}))["J1"].index == 0


def test_a_starved_lane_is_served_after_max_red(corridor: SignalNetwork) -> None:
    """Throughs keep the pressure; one vehicle waits in the westbound left bay (served by stage 0 only)."""
    busy = {"W_J1_bay_0": 8.0, "W_J1_bay_1": 8.0, "J2_J1_bay_0": 8.0, "J2_J1_bay_1": 8.0, "J2_J1_bay_2": 1.0}
    for max_red, expected in ((120.0, 0), (None, 2)):
        c = MaxPressure(normalize=False, max_red_s=max_red)
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


@pytest.mark.sumo
def test_capacity_aware_does_not_feed_a_blocked_exit(tmp_path: Path) -> None:
    """Two signals 45 m apart (conftest.build_two_junctions); max-pressure drives A only, B keeps a
    fixed 10 s / 50 s program that passes ~270 veh/h of the 400 veh/h W→E stream, so the A–B link
    (4 vehicles) is full most of the time and the W→E queue reaches back through A. Plain
    (count-based, no guard) max-pressure keeps giving A's green to the long W→E queue although
    nobody can move into the full link, and the 600 veh/h cross street at A waits (starvation guard
    only); with the capacity guard it serves the cross street while the link is full: less W→E
    green at A, lower delay at A and in the network, no fewer vehicles through A. Storage-normalised
    pressure (``normalize=True``) does the same."""
    from .conftest import build_two_junctions

    net = build_two_junctions(tmp_path, b_greens_s=(10.0, 50.0))
    routes = """<routes><vType id="c" sigma="0"/>
      <flow id="we" type="c" begin="0" end="1200" vehsPerHour="400" from="W_A" to="B_E" departSpeed="max"/>
      <flow id="na" type="c" begin="0" end="1200" vehsPerHour="600" from="NA_A" to="A_SA" departSpeed="max"/>
      <flow id="nb" type="c" begin="0" end="1200" vehsPerHour="300" from="NB_B" to="B_SB" departSpeed="max"/>
      </routes>"""
    sc = from_sumocfg(write_sumocfg(tmp_path, net, routes, end=1300)).replace(zones=ZoneSpec(300, 300), junctions=("A",))
    we = SignalNetwork.load(net).junctions["A"].incoming_lanes.index("W_A_0")  # W→E's link index at A
    out = {}
    for name, spec in (("plain", "max-pressure(spillback_guard=None, normalize=False)"),
                       ("aware", "max-pressure"), ("normalized", "max-pressure(normalize=True)")):
        add, states = tmp_path / f"{name}.add.xml", tmp_path / f"{name}.states.xml"
        add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="A" dest="{states}"/></additional>')
        res = run(sc, spec, seed=1, sumo_args=["-a", str(add)])
        shown = [e.get("state") for e in ET.parse(states).getroot().iter("tlsState")]
        a = res.junctions.set_index("junction_id").loc["A"]
        out[name] = (a["delay_s_per_veh"], a["vehicles"], res.network.iloc[0]["delay_s_per_veh"],
                     sum(st[we] in "Gg" for st in shown) / len(shown))
    plain = out["plain"]
    for name in ("aware", "normalized"):
        ok = out[name]
        assert ok[3] < 0.8 * plain[3], name  # W→E green share at A
        assert ok[0] < 0.75 * plain[0], name  # delay at A
        assert ok[2] < plain[2], name  # network delay
        assert ok[1] >= plain[1], name


@pytest.mark.sumo
def test_every_movement_is_served_within_its_bound(one_junction: Path, tmp_path: Path) -> None:
    """1080 veh/h W→E against one N→S vehicle every 100 s, maximum green 300 s. With
    ``max_red_s=30`` no N→S vehicle waits longer than 30 s + yellow and red (5 s) + one decision
    interval (5 s) + its own start-up; the pure rule (``max_red_s=None``) lets them wait until the
    maximum green ends (W→E always has more vehicles on its lane)."""
    shutil.copy(one_junction, tmp_path / one_junction.name)
    routes = """<routes><vType id="c" sigma="0"/>
      <flow id="we" type="c" begin="0" end="900" vehsPerHour="1080" from="W_C" to="C_E" departSpeed="max"/>
      <flow id="ns" type="c" begin="20" end="900" period="100" from="N_C" to="C_S" departSpeed="max"/></routes>"""
    sc = from_sumocfg(write_sumocfg(tmp_path, tmp_path / one_junction.name, routes, end=1000))
    waits = {}
    for max_red in (30.0, None):
        trips = tmp_path / f"trips{max_red}.xml"
        run(sc, f"max-pressure(max_red_s={max_red}, max_green_s=300)", seed=1, sumo_args=["--tripinfo-output", str(trips)])
        waits[max_red] = [float(t.get("waitingTime")) for t in ET.parse(trips).getroot().iter("tripinfo")
                          if t.get("id").startswith("ns")]
    assert len(waits[30.0]) >= 8
    assert max(waits[30.0]) <= 30 + 5 + 5 + 3
    assert max(waits[None]) > 60


def test_switch_cost_changes_stage_only_when_the_gain_outweighs_the_lost_time(corridor: SignalNetwork) -> None:
    """From the throughs (stage 2, 4 vehicles) to the side streets (stage 3): a change loses L = 5 s
    (3 s yellow + 2 s all-red) and buys H = L + 5 s min green, so it is worth it only if
    p3 * 5 > p2 * 10, i.e. p3 > 8."""
    c = MaxPressure(switch_cost=True)
    c.reset(corridor, seed=1)
    plain = MaxPressure(switch_cost=False)
    plain.reset(corridor, seed=1)
    through = {"W_J1_bay_0": 2.0, "W_J1_bay_1": 2.0}  # stage 2 pressure 4 (stage 1 serves them too)
    for side, expected in ((6.0, 2), (8.0, 2), (9.0, 3)):
        o = _obs(corridor, 2, count={**through, "N1_J1_0": side})
        p = c.pressures(o)
        assert (p[2], p[3]) == pytest.approx((4.0, side))
        assert c.act(Observation(0.0, {"J1": o}))["J1"].index == expected
        assert plain.act(Observation(0.0, {"J1": o}))["J1"].index == 3  # plain max-pressure always changes
    # nothing on the current stage: any stage with more pressure is served at once
    assert c.act(Observation(0.0, {"J1": _obs(corridor, 2, count={"N1_J1_0": 1.0})}))["J1"].index == 3


def test_approach_counts_the_queue_behind_a_short_lane(corridor: SignalNetwork) -> None:
    """With approach readings the upstream queue is the approach's, not the lane's."""
    c = MaxPressure(approach_m=100.0)
    assert c.approach_m() == 100.0
    c.reset(corridor, seed=1)
    o = _obs(corridor, 2, count={"N1_J1_0": 1.0})
    o.approach_count_veh = o.count_veh + np.where(np.array(o.lanes) == "N1_J1_0", 9.0, 0.0)
    o.approach_queue_veh = o.approach_count_veh
    assert c.pressures(o)[3] == pytest.approx(10.0)
    assert MaxPressure(approach_m=None).approach_m() is None
    assert MaxPressure().approach_m() == 100.0  # the default


def test_a_junction_running_its_own_actuated_program_is_left_to_it(one_junction: Path, tmp_path: Path) -> None:
    """keep_actuated (default): a signal whose own program is SUMO-actuated gets no action; with
    keep_actuated=False max-pressure (and actuated) drive it."""
    from mobility.controllers.actuated import Actuated

    text = one_junction.read_text()
    assert 'type="static"' in text
    actuated_net = tmp_path / "actuated.net.xml"
    actuated_net.write_text(text.replace('type="static"', 'type="actuated"'))
    for path, kept in ((one_junction, False), (actuated_net, True)):
        net = SignalNetwork.load(path)
        j = net.junctions["C"]
        o = JunctionObservation("C", j.incoming_lanes, np.zeros(2), np.array([3.0, 0.0]), np.zeros(2), 0, 0, 10.0,
                                j.outgoing_lanes, np.zeros(2), np.zeros(2), np.full(2, np.inf))
        for c in (MaxPressure(), Actuated()):
            c.reset(net, seed=1)
            assert ("C" not in c.act(Observation(10.0, {"C": o}))) == kept
        replace = MaxPressure(keep_actuated=False)
        replace.reset(net, seed=1)
        assert "C" in replace.act(Observation(10.0, {"C": o}))
