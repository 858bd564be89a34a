"""SignalNetwork: what is read from a .net.xml (unit tests on a network built by netconvert)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mobility.errors import NetworkError
from mobility.network import SignalNetwork, states_problem

from .conftest import ROOT


def test_one_junction_movements_phases_and_lanes(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    assert net.junction_ids == ["C"]
    j = net.junctions["C"]
    # two movements, W->E and N->S, each from its in-lane to its out-lane through one internal lane
    moves = {(lk.in_lane, lk.out_lane) for lk in j.links}
    assert moves == {("W_C_0", "C_E_0"), ("N_C_0", "C_S_0")}
    assert all(lk.direction == "s" and len(lk.via) == 1 for lk in j.links)
    assert set(j.incoming_lanes) == {"W_C_0", "N_C_0"} and set(j.outgoing_lanes) == {"C_E_0", "C_S_0"}
    # the program: green WE 30 s, yellow 3 s, green NS 30 s, yellow 3 s
    assert [p.duration for p in j.phases] == [30.0, 3.0, 30.0, 3.0] and j.cycle_s == 66.0
    assert j.green_phases == (0, 2)
    assert j.green_lanes() == [("W_C_0",), ("N_C_0",)]
    # crossing movements are foes: they may never both show a priority green
    (a, b) = sorted(lk.index for lk in j.links)
    assert j.foes == frozenset({(a, b)})
    # lanes: 300 m legs (minus the junction), 50 km/h
    assert 280 < net.lane_length("W_C_0") <= 300 and net.lane_speed("W_C_0") == pytest.approx(13.89)
    assert net.has_edge("W_C") and not net.has_edge("nowhere")


def test_states_problem_refuses_unsafe_programs(one_junction: Path) -> None:
    j = SignalNetwork.load(one_junction).junctions["C"]
    ok = [p.state for p in j.phases]
    assert states_problem(j, ok) == ""
    both = ok[0].replace("r", "G")
    assert "conflicting links" in states_problem(j, [both, *ok[1:]])
    assert "without yellow" in states_problem(j, [ok[0], ok[0].replace("G", "r"), *ok[2:]])
    assert "expected 4" in states_problem(j, ok[:3])


def test_bundled_corridor_is_an_arterial_of_six_signals() -> None:
    net = SignalNetwork.load(ROOT / "networks" / "corridor" / "corridor.net.xml")
    assert net.junction_ids == [f"J{i}" for i in range(1, 7)]
    for j in net.junctions.values():
        assert len(j.green_phases) >= 2
        # every link enters from one of the junction's incoming lanes and leaves by an outgoing one
        assert {lk.in_lane for lk in j.links} <= set(j.incoming_lanes)
        assert {lk.out_lane for lk in j.links} <= set(j.outgoing_lanes)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="network file does not exist"):
        SignalNetwork.load(tmp_path / "none.net.xml")


def test_load_is_cached_until_the_file_changes(one_junction: Path, tmp_path: Path) -> None:
    assert SignalNetwork.load(one_junction) is SignalNetwork.load(one_junction)
    copy = tmp_path / "x.net.xml"
    copy.write_bytes(one_junction.read_bytes())
    first = SignalNetwork.load(copy)
    assert SignalNetwork.load(copy) is first
    text = one_junction.read_bytes()
    assert text.count(b'<phase duration="30"') == 2
    copy.write_bytes(text.replace(b'<phase duration="30"', b'<phase duration="20"', 1))
    os.utime(copy, ns=(1, copy.stat().st_mtime_ns + 1_000_000))  # a new modification time, even on coarse clocks
    second = SignalNetwork.load(copy)
    assert second is not first and second.junctions["C"].phases[0].duration == 20.0


def test_a_tail_holding_a_movements_only_green_is_a_stage() -> None:
    """hamburg-tavf's junction 94: the left turns (links 2, 3) are released permissively inside the
    through yellow, then protected in a phase of their own. Read as a clearance tail, no stage would
    ever give them a green. When a stage serves them permissively (``'g'``, yielding to the opposing
    through), the phase is the protected turn netconvert writes after it: a clearance, as the
    program runs it, unless the network takes turn stages (``actuated``: without it, left-turners
    waiting inside hamburg-tavf's ``cluster_683859663`` locked it). With a stage serving them with
    priority elsewhere, the same phase is a clearance tail in every reading."""
    from mobility.network import Junction, Link, Phase

    links = tuple(Link(i, f"in{i}", f"out{i}", (), d) for i, d in enumerate("ssllr"))

    def junction(program: tuple[tuple[str, float], ...], turn_stages: bool = False) -> Junction:
        phases = tuple(Phase(st, d, 5.0, 50.0) for st, d in program)
        return Junction("J", links, phases, "0", 0.0, tuple(f"in{i}" for i in range(5)),
                        tuple(f"out{i}" for i in range(5)), (), turn_stages=turn_stages)

    only_there = junction((("GGrrr", 33.0), ("yyggr", 3.0), ("rrGGr", 6.0), ("rryyr", 3.0), ("rrrrG", 20.0),
                           ("rrrry", 3.0)))
    assert only_there.green_phases == (0, 2, 4)
    assert only_there.protected_turn_tails == ()  # a stage in every reading, not a protected-turn tail
    program = (("GGggr", 33.0), ("yyggr", 3.0), ("rrGGr", 6.0), ("rryyr", 3.0), ("rrrrG", 20.0), ("rrrry", 3.0))
    assert junction(program).green_phases == (0, 4)  # a clearance, as the program runs it
    turn_stages = junction(program, turn_stages=True)  # for actuated: a stage, marked as a tail
    assert turn_stages.green_phases == (0, 2, 4) and turn_stages.protected_turn_tails == (1,)
    served_elsewhere = junction((("GGGGr", 33.0), ("yyGGr", 3.0), ("rrGGr", 6.0), ("rryyr", 3.0), ("rrrrG", 20.0),
                                 ("rrrry", 3.0)))
    assert served_elsewhere.green_phases == (0, 4)


def test_a_lane_extends_a_stage_only_if_all_its_links_have_green() -> None:
    """hamburg-tavf's cluster_18: main-road lane ``m_0`` turns right (link 2, green in both stages) and
    goes straight (link 3, main stage only); in the side-road stage its vehicles call (the right
    turn is green) but may not extend it: they may be waiting for the red straight movement.
    Permissive links (``'g'``) count as green; a lane whose left turn is protected in a stage of
    its own extends that stage only if its other links are green there too; a stage with no lane
    passing the test keeps them all."""
    from mobility.network import Junction, Link, Phase

    links = (Link(0, "s_0", "x_0", (), "s"), Link(1, "s_0", "y_0", (), "l"),
             Link(2, "m_0", "z_0", (), "r"), Link(3, "m_0", "x_0", (), "s"),
             Link(4, "m_1", "x_1", (), "s"), Link(5, "m_1", "w_0", (), "l"),
             Link(6, "n_0", "y_0", (), "s"), Link(7, "n_1", "y_1", (), "s"), Link(8, "n_1", "z_0", (), "l"))

    def junction(*states: str) -> Junction:
        phases = tuple(p for st in states
                       for p in (Phase(st, 30.0, 5.0, 50.0), Phase(st.replace("G", "y").replace("g", "y"), 3.0, 3.0, 3.0)))
        return Junction("J", links, phases, "0", 0.0, ("s_0", "m_0", "m_1", "n_0", "n_1"),
                        ("x_0", "x_1", "y_0", "y_1", "z_0", "w_0"), ())

    permissive = junction("rrGGGgGGg", "GgGrrrrrr")
    assert permissive.served_lanes() == [("m_0", "m_1", "n_0", "n_1"), ("s_0", "m_0")]
    assert permissive.extending_lanes() == [("m_0", "m_1", "n_0", "n_1"), ("s_0",)]
    protected = junction("rrGGGgGGg", "GGGrrrrrr", "rrrrrGrGG")  # left turns 5 and 8 protected, with n's straight 7
    assert protected.served_lanes()[2] == ("m_1", "n_1")
    assert protected.extending_lanes()[2] == ("n_1",)  # m_1's straight (4) is red there
    assert junction("rrGGGGrrr", "rrGrrrrrr").extending_lanes()[1] == ("m_0",)  # no lane passes: all it serves


def test_phases_the_cycle_never_reaches_are_dropped() -> None:
    """``next="0"`` on phase 3 of a 6-phase program: SUMO cycles 0–3; phases 4–5 (a tail the field
    controller calls on its own) are no stages and add nothing to the cycle. A branching ``next`` or a
    jump into the middle keeps the program whole."""
    from sumolib.net import Phase as SumoPhase

    from mobility.network import _cycle_length

    def program(nexts: dict[int, list[int]], n: int = 6) -> list[SumoPhase]:
        return [SumoPhase(10, "G", next=nexts.get(i, [])) for i in range(n)]

    assert _cycle_length(program({})) == 6
    assert _cycle_length(program({3: [0]})) == 4
    assert _cycle_length(program({3: [0, 4]})) == 6  # branching: SUMO may go either way
    assert _cycle_length(program({1: [3]})) == 6  # skips phase 2 in the middle: kept whole
    assert _cycle_length(program({5: [0]})) == 6


def test_hamburg_programs_run_their_real_cycle() -> None:
    """hamburg-tavf's joined1 holds 16 phases of which SUMO runs 10 (phase 9 has next="0"): a 90 s
    cycle, as its neighbours, not 105 s; the fixed-time 1996 runs 90 s with three stages, not 108 s
    with five."""
    path = ROOT.parent / "shared" / "scenarios" / "real" / "hamburg-tavf" / "network.net.xml.gz"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared is absent on this machine)")
    net = SignalNetwork.load(path)
    assert len(net.junctions["joined1"].phases) == 10 and net.junctions["joined1"].cycle_s == 90.0
    assert net.junctions["1996"].cycle_s == 90.0 and len(net.junctions["1996"].green_phases) == 3
    assert net.junctions["94"].cycle_s == 90.0 and len(net.junctions["94"].phases) == 8  # no next: whole


@pytest.mark.sumo
def test_a_dead_tail_never_runs_when_a_controller_installs_the_program(tmp_path: Path) -> None:
    """The one-junction cross with a program of 4 live phases (``next="0"`` on the last yellow) and
    a dead 40 s all-red tail. SUMO's own run never shows the all-red; neither may ``sumo-actuated``,
    which installs the junction's phases as a program of its own: read with the tail (and without
    ``next``), it ran the all-red every cycle."""
    import shutil
    import subprocess
    import xml.etree.ElementTree as ET

    from mobility import run
    from mobility.scenario import ZoneSpec, from_sumocfg

    from .conftest import _write, build_one_junction, netconvert, write_sumocfg

    base = build_one_junction(tmp_path)
    program = SignalNetwork.load(base).junctions["C"].phases  # W→E green, yellow, N→S green, yellow
    we, ns = program[0].state, program[2].state
    ywe, yns = we.replace("G", "y"), ns.replace("G", "y")
    _write(tmp_path / "dead.tll.xml", f"""
        <tlLogics>
          <tlLogic id="C" type="static" programID="0" offset="0">
            <phase duration="30" state="{we}"/> <phase duration="3" state="{ywe}"/>
            <phase duration="30" state="{ns}"/> <phase duration="3" state="{yns}" next="0"/>
            <phase duration="40" state="{'r' * len(we)}"/>
          </tlLogic>
        </tlLogics>""")
    net = tmp_path / "dead.net.xml"
    subprocess.run([netconvert(), "-s", str(base), "--tllogic-files", str(tmp_path / "dead.tll.xml"), "-o", str(net)],
                   check=True, capture_output=True)
    j = SignalNetwork.load(net).junctions["C"]
    assert len(j.phases) == 4 and j.cycle_s == 66.0 and j.green_phases == (0, 2)
    d = tmp_path / "case"
    d.mkdir()
    shutil.copy(net, d / net.name)
    routes = ('<routes><vType id="c" sigma="0"/><flow id="we" type="c" begin="0" end="600" period="6" '
              'from="W_C" to="C_E"/><flow id="ns" type="c" begin="0" end="600" period="6" from="N_C" to="C_S"/></routes>')
    sc = from_sumocfg(write_sumocfg(d, d / net.name, routes, end=600)).replace(zones=ZoneSpec(400, 400))
    add, states = d / "tls.add.xml", d / "states.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="C" dest="{states}"/></additional>')
    for controller in ("static", "sumo-actuated"):
        run(sc, controller, seed=1, sumo_args=["-a", str(add)])
        shown = {e.get("state") for e in ET.parse(states).getroot().iter("tlsState")}
        assert we in shown and ns in shown, controller
        assert "r" * len(we) not in shown, controller
