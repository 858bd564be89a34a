"""The actuator enforces yellow, clearance red, min and max green (pure logic, fake port)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mobility.controllers import GreenPhase, Safety, SiteSafety, TimingPlan
from mobility.errors import SimulationError
from mobility.network import SignalNetwork
from mobility.signals import Actuator, clearance_state, yellow_state

from .conftest import SHARED


class FakePort:
    def __init__(self, state: str) -> None:
        self.state = state
        self.history: list[tuple[float, str]] = []
        self.now = 0.0
        self.programs: list[tuple] = []
        self.states: list[list[str]] = []

    def set_state(self, tls: str, state: str) -> None:
        self.state = state
        self.history.append((self.now, state))

    def get_state(self, tls: str) -> str:
        return self.state

    def set_program(self, tls, program_id, kind, phases, params, phase_index, remaining_s):
        self.programs.append((program_id, kind, [p.duration for p in phases], phase_index, remaining_s))
        self.states.append([p.state for p in phases])


def test_transition_states() -> None:
    assert yellow_state("GGrr", "rrGG") == "yyrr"
    assert yellow_state("GgrG", "rrGG") == "yyrG"
    assert clearance_state("GgrG", "rrGG") == "rrrG"


def _drive(net: SignalNetwork, safety: Safety, requests: dict[float, int], until: float,
           site: SiteSafety | None = None) -> FakePort:
    j = net.junctions["C"]
    port = FakePort(j.phases[0].state)
    act = Actuator(net, ["C"], safety, port, "test", site=site)
    t = 0.0
    while t <= until:
        port.now = t
        if t in requests:
            act.apply(t, {"C": GreenPhase(requests[t])})
        act.tick(t)
        t += 1.0
    return port


def test_min_green_yellow_red_sequence(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    j = net.junctions["C"]
    g0, g1 = (j.phases[i].state for i in j.green_phases)
    safety = Safety(yellow_s=3, all_red_s=2, min_green_s=10, max_green_s=100)
    # take over on green 0 at t=0, ask for green 1 at t=4: it must wait for min green (t=10)
    port = _drive(net, safety, {0.0: 0, 4.0: 1}, until=30)
    # (the first write at t=0 hands the junction from its program to the controller)
    assert port.history == [(0.0, g0), (10.0, yellow_state(g0, g1)), (13.0, clearance_state(g0, g1)), (15.0, g1)]


def test_site_floors_lengthen_but_never_shorten(one_junction: Path) -> None:
    """A controller asking for no yellow and no all-red gets the site's floors; one asking for more
    than the floors gets what it asked for."""
    net = SignalNetwork.load(one_junction)
    j = net.junctions["C"]
    g0, g1 = (j.phases[i].state for i in j.green_phases)
    unsafe = Safety(yellow_s=0, all_red_s=0, min_green_s=1, max_green_s=100)
    port = _drive(net, unsafe, {0.0: 0, 4.0: 1}, until=30, site=SiteSafety(yellow_s=4, all_red_s=2, min_green_s=8))
    # min green 8 s (site), then 4 s yellow and 2 s all-red (site)
    assert port.history == [(0.0, g0), (8.0, yellow_state(g0, g1)), (12.0, clearance_state(g0, g1)), (14.0, g1)]
    # default floors: 3 s yellow, 1 s all-red
    port = _drive(net, unsafe, {0.0: 0, 4.0: 1}, until=30)
    assert port.history == [(0.0, g0), (4.0, yellow_state(g0, g1)), (7.0, clearance_state(g0, g1)), (8.0, g1)]
    # longer than the floors: kept
    port = _drive(net, Safety(yellow_s=5, all_red_s=3, min_green_s=10, max_green_s=100), {0.0: 0, 4.0: 1}, until=30)
    assert port.history == [(0.0, g0), (10.0, yellow_state(g0, g1)), (15.0, clearance_state(g0, g1)), (18.0, g1)]


def test_max_green_forces_next_phase(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    j = net.junctions["C"]
    g0, g1 = (j.phases[i].state for i in j.green_phases)
    safety = Safety(yellow_s=3, all_red_s=0, min_green_s=5, max_green_s=20)
    port = _drive(net, safety, {0.0: 0}, until=50, site=SiteSafety(all_red_s=0))
    # 0..20 green 0, yellow 20..23, green 1 from 23 to 43, then back to green 0
    assert [t for t, _ in port.history] == [0.0, 20.0, 23.0, 43.0, 46.0]
    assert port.history[2][1] == g1 and port.history[4][1] == g0


def test_bad_phase_fails_with_context(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    act = Actuator(net, ["C"], Safety(), FakePort(net.junctions["C"].phases[0].state), "mine")
    with pytest.raises(SimulationError, match="controller 'mine'.*GreenPhase\\(5\\).*'C'"):
        act.apply(0.0, {"C": GreenPhase(5)})
    with pytest.raises(SimulationError, match="unknown junction 'X'"):
        act.apply(0.0, {"X": GreenPhase(0)})


def test_timing_plan_starts_at_offset(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    port = FakePort("")
    act = Actuator(net, ["C"], Safety(), port, "plan")
    # greens 40 and 20 + two 3 s yellows = 66 s cycle; offset 10 → at t=0 we are 56 s into the cycle,
    # i.e. in the second green (43..63), 7 s before its end
    act.apply(0.0, {"C": TimingPlan((40.0, 20.0), offset_s=10.0)})
    _, kind, durations, phase, remaining = port.programs[0]
    assert kind == "static" and durations == [40.0, 3.0, 20.0, 3.0]
    assert phase == 2 and remaining == pytest.approx(7.0)


def test_plan_change_never_cuts_a_green_without_yellow(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    j = net.junctions["C"]
    g0, g1 = (j.phases[i].state for i in j.green_phases)
    port = FakePort(g0)  # W→E is green now
    act = Actuator(net, ["C"], Safety(yellow_s=3, all_red_s=2), port, "plan")
    # at t=100 this plan is in its N→S green (offset 60: 40 s into a 66 s cycle → phase 2)
    act.apply(100.0, {"C": TimingPlan((30.0, 30.0), offset_s=60.0)})
    assert port.history == [(0.0, yellow_state(g0, g1))] and not port.programs
    for t in (101.0, 102.0, 103.0, 104.0, 105.0):
        port.now = t
        act.tick(t)
    assert port.history[1] == (103.0, clearance_state(g0, g1))
    (_, kind, durations, phase, remaining), = port.programs
    # installed at t=105, aligned to the offset: 45 s into the cycle = N→S green (33..63), 18 s left
    assert phase == 2 and remaining == pytest.approx(18.0)


def test_timing_plan_states_install_a_mirrored_program_and_unsafe_states_are_refused() -> None:
    """A plan may replace the program's states (a lagging left turn): the bundled corridor's J1 with
    its arterial approaches exchanged (westbound left leads) is installed as given; states that give
    foes a priority green together, cut a green without yellow or move the stages are refused with
    one line naming the junction."""
    from mobility.controllers.coordination.greenwave import corridor_path, mirror_states
    from mobility.scenario import load_scenario

    net = SignalNetwork.load(load_scenario("corridor").net_file)
    j = net.junctions["J1"]
    mirrored = mirror_states(net, corridor_path(net), "J1")
    assert mirrored is not None
    # phase 3 was "EB lead" (EB left 13 + EB through 10-12); mirrored it is WB left 6 + WB through 3-5
    assert j.phases[3].state == "rrrrrrrrrrGGGG" and mirrored[3] == "rrrGGGGrrrrrrr"
    assert mirrored[6] == j.phases[6].state  # both throughs: symmetric, unchanged
    port = FakePort(j.phases[0].state)
    act = Actuator(net, ["J1"], Safety(), port, "plan")
    act.apply(0.0, {"J1": TimingPlan((8.0, 6.0, 42.0, 24.0), 0.0, mirrored)})
    assert port.states[-1] == list(mirrored)
    # the WB right (3) and the EB left (13) both enter J1_N1: foes, both G is refused
    unsafe = list(mirrored)
    unsafe[3] = unsafe[3][:13] + "G"
    with pytest.raises(SimulationError, match=r"junction 'J1'.*conflicting links 3 and 13") as e:
        act.apply(1.0, {"J1": TimingPlan((8.0, 6.0, 42.0, 24.0), 0.0, tuple(unsafe))})
    assert "\n" not in str(e.value)
    no_yellow = list(mirrored)
    no_yellow[4] = no_yellow[5]  # the WB left goes from G straight to r
    with pytest.raises(SimulationError, match="without yellow"):
        act.apply(1.0, {"J1": TimingPlan((8.0, 6.0, 42.0, 24.0), 0.0, tuple(no_yellow))})
    with pytest.raises(SimulationError, match="expected 12"):
        act.apply(1.0, {"J1": TimingPlan((8.0, 6.0, 42.0, 24.0), 0.0, tuple(mirrored[:11]))})


def _clearance_net() -> SignalNetwork:
    """One junction 'C' whose program ends stage A (W through + permissive left) with a yellow for the
    through while the left turn finishes protected (a clearance tail), a yellow for the left, an
    all-red, then stage B (N approach); B ends with a 4 s yellow, then stage D (a right turn that
    neither A nor B serves), its yellow, and A again."""
    import networkx as nx

    from mobility.network import Junction, Link, Phase

    links = tuple(Link(i, f"in{i}", f"out{i}", (), d) for i, d in enumerate("slslr"))
    phases = tuple(Phase(st, d, d, d) for st, d in (("Ggrrr", 20.0), ("yGrrr", 3.0), ("ryrrr", 3.0), ("rrrrr", 2.0),
                                                   ("rrGGr", 20.0), ("rryyr", 4.0), ("rrrrG", 10.0), ("rrrry", 3.0)))
    j = Junction("C", links, phases, "0", 0.0, tuple(f"in{i}" for i in range(5)), tuple(f"out{i}" for i in range(5)), ())
    return SignalNetwork(Path("hand-built.net.xml"), {"C": j}, {}, nx.DiGraph())


def test_program_transitions_are_replayed_state_for_state() -> None:
    net = _clearance_net()
    j = net.junctions["C"]
    assert j.green_phases == (0, 4, 6)  # 'yGrr' follows nothing green-only: it is a transition, not a stage
    safety = Safety(yellow_s=3, all_red_s=2, min_green_s=5, max_green_s=100, transitions="program")
    port = _drive(net, safety, {0.0: 0, 6.0: 1, 30.0: 0}, until=60)
    # A -> B: the program's own yellow, protected-left tail, left yellow, all-red; B -> A: its 4 s yellow
    # then (the program goes B -> D -> A) no direct path: generic yellow of at least the program's 4 s, 2 s red
    assert port.history == [(0.0, "Ggrrr"), (6.0, "yGrrr"), (9.0, "ryrrr"), (12.0, "rrrrr"), (14.0, "rrGGr"),
                            (30.0, "rryyr"), (34.0, "rrrrr"), (36.0, "Ggrrr")]
    # the generic actuator goes from A's yellow straight to the all-red, cutting the left turn's tail
    generic = _drive(net, Safety(yellow_s=3, all_red_s=2, min_green_s=5, max_green_s=100), {0.0: 0, 6.0: 1}, until=20)
    assert generic.history == [(0.0, "Ggrrr"), (6.0, "yyrrr"), (9.0, "rrrrr"), (11.0, "rrGGr")]


def test_program_transitions_keep_the_safety_floor_and_time_what_they_show() -> None:
    from mobility.signals import transition_steps, transition_time_s

    net = _clearance_net()
    j = net.junctions["C"]
    # a 5 s yellow floor lengthens the program's 3 s yellows (a phase showing a yellow), never the all-red
    floor = Safety(yellow_s=5, all_red_s=2, transitions="program")
    assert transition_steps(j, 0, 1, "Ggrrr", floor) == [("yGrrr", 5.0), ("ryrrr", 5.0), ("rrrrr", 2.0)]
    assert transition_time_s(j, 0, 1, floor) == 12.0
    assert transition_time_s(j, 1, 1, floor) == 0.0
    assert j.transition(2, 0) == (j.phases[7],)  # D -> A: D's yellow
    assert j.transition(1, 0) is None  # B -> D -> A: D's right turn is shown on the way
    assert transition_time_s(j, 1, 0, floor) == 5.0 + 2.0  # generic: 5 s yellow floor (program: 4), 2 s red
    assert transition_time_s(j, 0, 1, Safety(yellow_s=3, all_red_s=2)) == 5.0  # generic everywhere


def test_a_program_that_joins_two_stages_directly_changes_at_once() -> None:
    """Stage B only adds a movement to stage A ('Grr' → 'GGr'): the program has no phase between
    them, so the replayed transition is empty and B's green shows in the same step."""
    import networkx as nx

    from mobility.network import Junction, Link, Phase

    links = tuple(Link(i, f"in{i}", f"out{i}", (), "s") for i in range(3))
    phases = tuple(Phase(st, d, d, d) for st, d in (("Grr", 20.0), ("GGr", 10.0), ("yyr", 3.0), ("rrG", 20.0),
                                                   ("rry", 3.0)))
    j = Junction("C", links, phases, "0", 0.0, ("in0", "in1", "in2"), ("out0", "out1", "out2"), ())
    net = SignalNetwork(Path("hand-built.net.xml"), {"C": j}, {}, nx.DiGraph())
    port = _drive(net, Safety(min_green_s=5, max_green_s=100, transitions="program"), {0.0: 0, 6.0: 1}, until=12)
    assert port.history == [(0.0, "Grr"), (6.0, "GGr")]


def _tail_net(program: tuple[tuple[str, float], ...]) -> SignalNetwork:
    """One junction: through 0 with permissive left 1, through 2 with permissive left 3."""
    import networkx as nx

    from mobility.network import Junction, Link, Phase, _LaneInfo

    links = tuple(Link(i, f"in{i}", f"out{i}", (), d) for i, d in enumerate("slsl"))
    phases = tuple(Phase(st, d, 5.0, 50.0) for st, d in program)
    j = Junction("T", links, phases, "0", 0.0, tuple(f"in{i}" for i in range(4)), tuple(f"out{i}" for i in range(4)), (),
                 turn_stages=True)  # as SignalNetwork.with_turn_stages marks a vehicle-actuated program
    lanes = {f"{k}{i}": _LaneInfo(100.0, 13.9, f"{k}{i}", False) for k in ("in", "out") for i in range(4)}
    return SignalNetwork(Path("hand-built.net.xml"), {"T": j}, lanes, nx.DiGraph())


def test_protected_turn_tails_are_stages_that_a_max_out_passes_by() -> None:
    """netconvert's protected left after a through stage that serves it permissively: with turn
    stages (``actuated``) a stage, marked as a tail; a max-out moves past it to the next through
    stage, or back to the only one."""
    from mobility.controllers import make
    from mobility.signals import _next_after_max_out

    assert make("actuated").protected_turn_stages()
    assert not any(make(c).protected_turn_stages() for c in ("max-pressure", "cycle-adaptive", "webster", "static"))

    net = _tail_net((("GgGg", 30.0), ("yGyG", 3.0), ("rGrG", 6.0), ("ryry", 3.0)))  # one through stage
    j = net.junctions["T"]
    assert j.green_phases == (0, 2) and j.protected_turn_tails == (1,)
    assert _next_after_max_out(j, 0) == 0 and _next_after_max_out(j, 1) == 0
    net = _tail_net((("Ggrr", 30.0), ("yGrr", 3.0), ("rGrr", 6.0), ("ryrr", 3.0),
                     ("rrGg", 30.0), ("rryG", 3.0), ("rrrG", 6.0), ("rrry", 3.0)))
    j = net.junctions["T"]
    assert j.green_phases == (0, 2, 4, 6) and j.protected_turn_tails == (1, 3)
    assert [_next_after_max_out(j, g) for g in range(4)] == [2, 2, 0, 0]
    plain = replace(j, turn_stages=False)
    assert plain.green_phases == (0, 4) and plain.protected_turn_tails == ()


@pytest.mark.skipif(not (SHARED / "scenarios" / "real" / "hamburg-tavf").exists(), reason="../shared/scenarios not present")
def test_turn_stages_only_where_the_city_program_is_vehicle_actuated() -> None:
    """hamburg-tavf's ``cluster_683859663`` (an actuated program) gets its two protected left-turn
    tails as stages; its fixed-time ``1996`` and RESCO's fixed-time cologne8 keep theirs as clearances."""
    ham = SignalNetwork.load(SHARED / "scenarios" / "real" / "hamburg-tavf" / "network.net.xml.gz")
    assert ham.junctions["cluster_683859663"].green_phases == (0, 4)
    turn = ham.with_turn_stages()
    assert turn.junctions["cluster_683859663"].green_phases == (0, 2, 4, 6)
    assert turn.junctions["cluster_683859663"].protected_turn_tails == (1, 3)
    assert not turn.junctions["1996"].turn_stages
    cologne = SHARED / "scenarios" / "resco" / "cologne8" / "cologne8.net.xml"
    if cologne.exists():
        net = SignalNetwork.load(cologne)
        assert net.with_turn_stages().junctions == net.junctions


def test_actuated_runs_the_protected_turn_tail_after_a_turner_came() -> None:
    """The tail after through ``in0`` (left ``in1`` protected) runs when a turner came onto its lane
    during the through stage, even if the lane is empty when the stage ends: the turner waits
    inside the junction, where no loop sees it (two such turners from opposing approaches locked
    hamburg-tavf's cluster_683859663). With no turner during the stage it is skipped."""
    import numpy as np

    from mobility.controllers.actuated import Actuated
    from mobility.controllers.base import JunctionObservation, Observation

    net = _tail_net((("Ggrr", 30.0), ("yGrr", 3.0), ("rGrr", 6.0), ("ryrr", 3.0), ("rrGG", 30.0), ("rryy", 3.0)))
    j = net.junctions["T"]
    assert j.green_phases == (0, 2, 4) and j.protected_turn_tails == (1,)
    ctrl = Actuated(keep_actuated=False, keep_short_linked=False)
    ctrl.reset(net, 1)

    def act(t: float, green: int, in_phase: float, count: list[float]) -> int:
        n = len(j.incoming_lanes)
        o = JunctionObservation("T", j.incoming_lanes, np.zeros(n), np.array(count), np.zeros(n), j.green_phases[green],
                                green, in_phase, j.outgoing_lanes, np.zeros(4), np.zeros(4), np.full(n, 99.0))
        return ctrl.act(Observation(t, {"T": o}))["T"].index

    assert act(0, 0, 0, [1, 1, 2, 2]) == 0  # a turner on in1
    assert act(3, 0, 3, [0, 0, 2, 2]) == 0  # ... now inside the junction
    assert act(6, 0, 6, [0, 0, 2, 2]) == 1  # gap-out: the tail, although its lane is empty
    assert act(12, 1, 6, [0, 0, 2, 2]) == 2  # then the cross street
    assert act(20, 2, 8, [2, 0, 0, 0]) == 0  # back to the through
    assert act(26, 0, 6, [0, 0, 2, 2]) == 2  # no turner this time: the tail is skipped
