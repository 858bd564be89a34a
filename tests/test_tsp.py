"""Transit signal priority ``NAME+tsp``: spec parsing, the counterfactual, and (real SUMO) a bus on the
hand-built junction gets its green earlier / held, the seconds saved are counted, and without transit
vehicles ``+tsp`` changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mobility.controllers.base import Observation
from mobility.experiments import run as experiment
from mobility.cli import main
from mobility.controllers import make
from mobility.controllers.tsp import Tsp, next_green_s
from mobility.errors import ControllerError
from mobility.network import Phase
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import write_sumocfg

# the one-junction program (conftest.build_one_junction): W->E green 0-30 s, yellow 30-33, N->S green 33-63,
# yellow 63-66; cycle 66 s. Link 0 stands for W->E here.
PROGRAM = (Phase("Gr", 30, 30, 30), Phase("yr", 3, 3, 3), Phase("rG", 30, 30, 30), Phase("ry", 3, 3, 3))

CARS = """
  <vType id="car" sigma="0" speedFactor="1"/>
  <flow id="we" type="car" begin="0" end="300" period="9" from="W_C" to="C_E" departSpeed="max"/>
  <flow id="ns" type="car" begin="0" end="300" period="11" from="N_C" to="C_S" departSpeed="max"/>
"""
BUS_TYPE = '  <vType id="bus" vClass="bus" sigma="0" speedFactor="1"/>\n'


def _routes(*vehicles: str, cars: bool = True) -> str:
    return "<routes>\n" + BUS_TYPE + (CARS if cars else "") + "".join(vehicles) + "</routes>\n"


def _bus(depart: float) -> str:
    return f'  <vehicle id="bus1" type="bus" depart="{depart}" departSpeed="max"><route edges="W_C C_E"/></vehicle>\n'


def _run(one_junction: Path, tmp_path: Path, routes: str, spec: str, name: str) -> experiment.Results:
    d = tmp_path / name
    d.mkdir()
    shutil.copy(one_junction, d / one_junction.name)
    cfg = write_sumocfg(d, d / one_junction.name, routes, end=200)
    sc = from_sumocfg(cfg).replace(zones=ZoneSpec(upstream_m=400, downstream_m=400))
    return experiment.run(sc, spec, 1)


def test_specs_and_labels() -> None:
    c = make("static+tsp")
    assert c.name == "static+tsp" and c.tsp == Tsp() and c.decision_interval_s == 1.0
    assert c.transit_classes() == ("bus", "tram", "rail_urban")
    c = make('max-pressure@(J2)+glosa(share=0.5)+tsp(max_extension_s=20, early_green=false, classes="tram,bus")')
    assert c.name == 'max-pressure@(J2)+glosa(share=0.5)+tsp(max_extension_s=20,early_green=false,classes="tram,bus")'
    assert c.tsp.classes == ("tram", "bus") and c.tsp.early_green is False and c.decision_interval_s == 1.0
    assert make(c.name).name == c.name  # the canonical name parses back to the same controller


@pytest.mark.parametrize("spec, msg", [
    ("static+tsp(max_extension_s=-1)", "max_extension_s: expected a duration"),
    ("static+tsp(checkin_m=0)", "checkin_m: expected a positive distance"),
    ("static+tsp(early_green=1)", "early_green: expected true or false"),
    ("static+tsp(classes=\"tram,boat\")", "'boat' is not a SUMO vehicle class"),
    ("static+tsp(max_ext=5)", "unknown parameter 'max_ext'"),
    ("static+tsp(early_green=false, extension=false)", "both false"),
    ("static+tsp+tsp", r"\+tsp given twice"),
])
def test_bad_tsp_parameters_are_one_line_errors(spec: str, msg: str) -> None:
    with pytest.raises(ControllerError, match=msg):
        make(spec)


def test_bad_tsp_parameter_on_the_command_line_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", "corridor", "--controller", "static+tsp(max_extension_s='long')", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "max_extension_s" in err and "Traceback" not in err
    assert not out.exists()


def test_counterfactual_next_green() -> None:
    # phase 0 (W->E green) programmed to end at 30 s
    assert next_green_s(29.0, 0, 30.0, 0, PROGRAM) == 29.0  # still green: nothing saved
    assert next_green_s(33.0, 0, 30.0, 0, PROGRAM) == 66.0  # held past its end: the next green is a cycle on
    assert next_green_s(33.0 + 66 * 3, 0, 30.0, 0, PROGRAM) == 66.0 + 66 * 3
    # N->S (link 1) during phase 0: its green starts when phases 0 and 1 are over
    assert next_green_s(20.0, 1, 30.0, 0, PROGRAM) == 33.0
    assert next_green_s(40.0, 1, 30.0, 0, PROGRAM) == 40.0
    assert next_green_s(5.0, 0, 30.0, 0, (Phase("rr", 30, 30, 30),)) == float("inf")


@pytest.mark.sumo
def test_bus_at_red_gets_green_earlier_and_the_seconds_saved_are_counted(one_junction: Path, tmp_path: Path) -> None:
    """The bus reaches the stop line at ~55 s, in N->S's green (33-63 s): without priority it stops and
    waits for W->E's green at 66 s; with +tsp it checks in 150 m out (~44 s), N->S's green is cut
    (it has run its 5 s minimum), the program's own 3 s yellow runs, and W->E is green before the bus
    arrives. Saved: from its crossing to 66 s."""
    routes = _routes(_bus(33))
    base = _run(one_junction, tmp_path, routes, "static", "base")
    tsp = _run(one_junction, tmp_path, routes, "static+tsp", "tsp")
    b = base.transit.set_index("vehicle_id").loc["bus1"]
    t = tsp.transit.set_index("vehicle_id").loc["bus1"]
    assert b["halts"] == 1 and t["halts"] == 0  # it stops at red without priority, not with it
    assert b["priority_events"] == 0 and t["priority_events"] == 1
    ev = tsp.transit_events.iloc[0]
    assert ev["kind"] == "early_green" and ev["junction_id"] == "C" and ev["program"] == "fixed"
    assert 53 <= ev["pass_s"] <= 58
    assert ev["saved_s"] == pytest.approx(66 - ev["pass_s"], abs=1e-6)
    # the estimate is a lower bound of the trip's gain: the wait for green, without the braking and
    # start-up a stop costs (about 9 s for this bus)
    gained = b["trip_time_s"] - t["trip_time_s"]
    assert ev["saved_s"] >= 8 and ev["saved_s"] <= gained <= ev["saved_s"] + 12
    assert t["saved_s_per_event"] == ev["saved_s"]
    assert not tsp.transit_events.empty and set(tsp.transit_events["run_id"]) == set(tsp.runs["run_id"])


@pytest.mark.sumo
def test_green_is_held_for_a_bus_arriving_just_after_its_end(one_junction: Path, tmp_path: Path) -> None:
    """The bus reaches the stop line at ~32.6 s, 2.6 s after W->E's green was programmed to end:
    without priority it stops at yellow and waits for 66 s; with +tsp the green is held until it is
    through, and the saving is counted against that next green."""
    routes = _routes(_bus(11), cars=False)
    base = _run(one_junction, tmp_path, routes, "static", "base")
    tsp = _run(one_junction, tmp_path, routes, "static+tsp", "tsp")
    short = _run(one_junction, tmp_path, routes, "static+tsp(max_extension_s=1, early_green=false)", "short")
    fallback = _run(one_junction, tmp_path, routes, "static+tsp(max_extension_s=1)", "fallback")
    b = base.transit.set_index("vehicle_id").loc["bus1"]
    t = tsp.transit.set_index("vehicle_id").loc["bus1"]
    assert b["halts"] == 1 and t["halts"] == 0
    ev = tsp.transit_events.iloc[0]
    assert ev["kind"] == "extension" and 0 < ev["changed_s"] <= 15
    assert 31 <= ev["pass_s"] <= 35
    assert ev["saved_s"] == pytest.approx(66 - ev["pass_s"])
    gained = b["trip_time_s"] - t["trip_time_s"]
    assert ev["saved_s"] <= gained <= ev["saved_s"] + 12
    # a hold of at most 1 s cannot get it through: no extension is granted, it waits as without priority
    s = short.transit.set_index("vehicle_id").loc["bus1"]
    assert s["priority_events"] == 0 and s["trip_time_s"] == b["trip_time_s"]
    # ... but with early green it stops, and N->S's green is cut to its 5 s minimum: through at ~42 s, not 66
    ev = fallback.transit_events.iloc[0]
    assert ev["kind"] == "early_green" and 40 <= ev["pass_s"] <= 45
    assert ev["saved_s"] == pytest.approx(66 - ev["pass_s"])


@pytest.mark.sumo
def test_tsp_without_transit_vehicles_equals_the_plain_controller(one_junction: Path, tmp_path: Path) -> None:
    """Cars only, or a bus of a class that gets no priority: every table is the plain controller's."""
    cols = ["junction_id", "vehicles", "delay_s", "stops", "co2_kg", "halted_veh_s", "queue_max_veh"]
    for i, (routes, spec) in enumerate([(_routes(), "static+tsp"), (_routes(_bus(33)), 'static+tsp(classes="tram")')]):
        a = _run(one_junction, tmp_path, routes, "static", f"a{i}")
        b = _run(one_junction, tmp_path, routes, spec, f"b{i}")
        pd.testing.assert_frame_equal(a.junctions[cols], b.junctions[cols])
        net = ["vehicles_seen", "delay_s", "stops", "co2_kg"]
        pd.testing.assert_frame_equal(a.network[net], b.network[net])
        assert b.transit_events.empty if not b.transit.empty else True
        if not a.transit.empty:
            tc = ["vehicle_id", "trip_time_s", "time_loss_s", "halts"]
            pd.testing.assert_frame_equal(a.transit[tc], b.transit[tc])
            assert (b.transit["priority_events"] == 0).all()


@pytest.mark.sumo
def test_phase_by_phase_control_gets_priority_through_the_actuator(one_junction: Path, tmp_path: Path) -> None:
    """Under a phase-level controller (round robin, 30 s greens, the actuator's yellow and all-red) the
    bus's green is requested as a GreenPhase: it arrives sooner; no program, so no counterfactual."""
    routes = _routes(_bus(60))
    base = _run(one_junction, tmp_path, routes, "tests.helpers:Cyclic", "base")
    tsp = _run(one_junction, tmp_path, routes, "tests.helpers:Cyclic+tsp", "tsp")
    b = base.transit.set_index("vehicle_id").loc["bus1"]
    t = tsp.transit.set_index("vehicle_id").loc["bus1"]
    assert b["halts"] == 1 and t["trip_time_s"] < b["trip_time_s"] - 5
    ev = tsp.transit_events.iloc[0]
    assert ev["program"] == "phase" and ev["kind"] == "early_green" and pd.isna(ev["saved_s"])


def _obs(t: float, *, stop_before: bool = False, junction: str = "C") -> "Observation":
    import numpy as np

    from mobility.controllers.base import JunctionObservation, Observation, TransitVehicle

    z = np.zeros(0)
    # N->S green (phase 2) for 10 s, programmed to run 20 s more; the bus's link 0 (W->E) is red
    o = JunctionObservation("C", (), z, z, z, 2, 1, 10.0, state="rG", program=PROGRAM, next_switch_s=20.0)
    bus = TransitVehicle("bus1", "bus", junction, 0, 100.0, 10.0, False, stop_before)
    return Observation(t, {"C": o}, (bus,))


def test_priority_only_at_treated_junctions_and_not_before_a_scheduled_stop() -> None:
    """The pure decision: an approaching bus at red gets the conflicting green cut to what is left of
    its 5 s minimum (0 after 10 s); not at an untreated junction, not while a stop lies ahead."""
    from mobility.controllers.base import PhaseRemaining
    from mobility.controllers.tsp import TspLogic

    logic = TspLogic(Tsp(), None, ["C"])
    assert logic.act(_obs(100.0)) == {"C": PhaseRemaining(0.0)}
    ev = logic.events[0]
    assert (ev.kind, ev.program, ev.changed_s) == ("early_green", "fixed", 20.0)
    assert TspLogic(Tsp(), None, ["D"]).act(_obs(100.0)) == {}  # untreated: the program runs on
    assert TspLogic(Tsp(), None, ["C"]).act(_obs(100.0, stop_before=True)) == {}  # it will dwell first
    assert TspLogic(Tsp(early_green=False), None, ["C"]).act(_obs(100.0)) == {}
    # the bus crossed at 112 s: the counterfactual next green of link 0 is when phases 2 and 3 were due
    # to end (100 + 20 + 3 = 123 s): 11 s saved
    logic.act(_gone(112.0))
    assert ev.pass_s == 112.0 and ev.saved_s == pytest.approx(11.0)


def _gone(t: float) -> "Observation":
    """The same junction once the bus has crossed (no transit vehicle approaches)."""
    from mobility.controllers.base import Observation

    o = _obs(t)
    return Observation(t, o.junctions, ())


def test_no_hold_when_the_next_phase_keeps_the_link_green() -> None:
    """A link green through two phases: its green ends with the second, so a bus that arrives within
    it needs no hold; one arriving later gets the first phase held only by what the second lacks."""
    import numpy as np

    from mobility.controllers.base import JunctionObservation, Observation, PhaseRemaining, TransitVehicle
    from mobility.controllers.tsp import TspLogic

    program = (Phase("Gr", 10, 10, 10), Phase("Gr", 5, 5, 5), Phase("yr", 3, 3, 3), Phase("rG", 30, 30, 30),
               Phase("ry", 3, 3, 3))
    z = np.zeros(0)

    def obs(dist: float) -> Observation:
        o = JunctionObservation("C", (), z, z, z, 0, 0, 8.0, state="Gr", program=program, next_switch_s=2.0)
        return Observation(50.0, {"C": o}, (TransitVehicle("bus1", "bus", "C", 0, dist, 10.0),))

    assert TspLogic(Tsp(), None, ["C"]).act(obs(40.0)) == {}  # 6 s away, green for 7 s more
    # 90 s away at 10 m/s: 11 s (with the 2 s margin), green for 7 s: the first phase runs 4 s longer
    assert TspLogic(Tsp(), None, ["C"]).act(obs(90.0)) == {"C": PhaseRemaining(pytest.approx(6.0))}
