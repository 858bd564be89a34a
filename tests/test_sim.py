"""The run's parts: the FCD reader's attribution (add_rows) against the per-step path, the run
until the network is empty, and the progress line."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobility.metrics import NEAR, Attribution, ZoneMap
from mobility.sim import Progress


def _zones() -> ZoneMap:
    # lane 0 "a": approach of A from 0 m; lane 1 "b": approach of B from 50 m, exit of A up to 20 m;
    # lane 2 "c": in no zone; "": off the network
    return ZoneMap(["A", "B"], {"a": 0, "b": 1, "c": 2, "": 3}, ["a", "b", "c", ""],
                   np.array([0.0, 50.0, np.inf, np.inf]), np.array([0 * 4 + NEAR, 1 * 4 + NEAR, -1, -1]),
                   np.array([0.0, 20.0, 0.0, 0.0]), np.array([-1, 0 * 4 + 3, -1, -1]),
                   np.array([10.0, 15.0, 12.0, np.inf]))


def _trajectories(seed: int = 5) -> tuple[pd.DataFrame, dict[int, float]]:
    """Rows (t, veh, lane, pos, speed, co2, fuel, nox, elec) of 12 vehicles over 60 steps: each is
    inserted at its own step, stops and goes at random, changes lane and leaves (or not) before the
    end. Times follow the step loop's clock (s)."""
    rng = np.random.default_rng(seed)
    rows = []
    factors = {}
    for v in range(12):
        start = int(rng.integers(0, 30))
        stop = int(rng.integers(start + 1, 70))  # beyond 60: still on the road at the end
        factors[v] = float(rng.uniform(0.8, 1.2))
        pos = 0.0
        for k, t in enumerate(range(start, min(stop, 61))):
            speed = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.05, 14.0))
            pos = (pos + speed) % 100.0
            lane = 0 if k < 8 else (1 if k < 20 else 2)
            rows.append((float(t), v, lane, pos, speed, *rng.uniform(0, 3000, 3), float(v % 3 == 0) * 5.0))
    df = pd.DataFrame(rows, columns=["t", "veh", "lane", "pos", "speed", "co2", "fuel", "nox", "elec"])
    return df.sort_values(["t", "veh"], kind="stable").reset_index(drop=True), factors


def test_rows_in_batches_give_the_per_step_numbers() -> None:
    """The FCD path (all rows, in batches cut at step boundaries, insertion rows included) and the
    per-step path (one call per step, vehicles known from their insertion) are the same arithmetic."""
    df, factors = _trajectories()
    zm, dt, measure_from, t_end = _zones(), 1.0, 10.0, 60.0
    ids = np.arange(12)
    sf = np.array([factors[v] for v in ids])
    vt = ids % 2

    # per step: a vehicle's first row is its insertion (its speed is the departure speed)
    a = Attribution(zm, dt, capacity=4)
    seen: set[int] = set()
    last = df.groupby("veh")["t"].max()
    for t in np.arange(0.0, t_end + dt / 2, dt):
        g = df[df.t == t]
        new = g[~g.veh.isin(seen)]
        old = g[g.veh.isin(seen)]
        if len(old):
            s = old.veh.to_numpy()
            lane = old.lane.to_numpy()
            speed = old.speed.to_numpy()
            dloss = a.step_loss(s, lane, speed)
            a.add_step(s, lane, old.pos.to_numpy(), speed, dloss, old.co2.to_numpy(), old.fuel.to_numpy(),
                       old.nox.to_numpy(), t > measure_from + 1e-9, old.elec.to_numpy())
        gone = last[last == t - dt].index.to_numpy()  # their last row was the step before: they left
        a.arrive(gone, t > measure_from + 1e-9)
        if len(new):
            n = new.veh.to_numpy()
            a.new_slot_state(n, sf[n], np.full(len(n), 13.0), vt[n], new.speed.to_numpy())
            seen.update(n.tolist())

    b = Attribution(zm, dt, capacity=4)
    b.new_slot_state(ids, sf, np.full(12, 13.0), vt)
    cuts = [0, *np.flatnonzero(np.diff(df.t.to_numpy()) > 0)[[5, 20, 40]] + 1, len(df)]
    for lo, hi in zip(cuts, cuts[1:]):
        c = df.iloc[lo:hi]
        b.add_rows(c.veh.to_numpy(), c.t.to_numpy(), c.lane.to_numpy(), c.pos.to_numpy(), c.speed.to_numpy(),
                   c.co2.to_numpy(), c.fuel.to_numpy(), c.nox.to_numpy(), c.elec.to_numpy(), measure_from)
    left = b.arrive_rows(t_end, measure_from)
    assert set(left) == set(last[last < t_end].index)

    ta, tb = a.junction_table(), b.junction_table()
    pd.testing.assert_frame_equal(ta, tb, check_exact=False, rtol=1e-12)
    assert a.network_totals() == pytest.approx(b.network_totals(), rel=1e-12)
    assert a.vehicles_seen == b.vehicles_seen > 0
    assert tb["stops"].sum() > 0 and tb["vehicles"].sum() > 0 and (tb["queue_max_veh"] > 0).any()
    names = (["A", "B", "(unattributed)"], ["t0", "t1"], ["c0", "c1"])
    pd.testing.assert_frame_equal(a.kinematics.table(*names), b.kinematics.table(*names))


def test_a_gap_in_a_vehicles_rows_restarts_it_without_a_stop() -> None:
    """A vehicle missing for steps (teleported) has no previous sample when it reappears: no stop
    and no acceleration from the speed before the gap."""
    att = Attribution(_zones(), 1.0)
    att.new_slot_state(np.array([0]), np.ones(1), np.full(1, 13.0), np.zeros(1, dtype=np.int64))
    t = np.array([1.0, 2.0, 3.0, 9.0, 10.0])
    speed = np.array([5.0, 5.0, 5.0, 0.0, 0.0])
    z = np.zeros(5)
    counted, dloss, stop = att.add_rows(np.zeros(5, dtype=np.int64), t, np.zeros(5, dtype=np.int64), z + 10, speed,
                                        z + 100, z, z, z, measure_from=0.0)
    assert counted.tolist() == [False, True, True, True, True]  # the first row is the insertion
    assert stop.sum() == 0
    n = att.network_totals()
    assert n["co2_cruise_kg"] == pytest.approx(200 / 1e6)  # t = 2, 3: moving at constant speed
    assert n["co2_idle_kg"] == pytest.approx(200 / 1e6)  # t = 9, 10: at rest, not a braking step
    assert n["co2_decel_kg"] == n["co2_accel_kg"] == 0.0


def test_progress_is_silent_off_a_terminal_and_says_time_vehicles_eta() -> None:
    stream = io.StringIO()  # not a terminal
    p = Progress(0.0, 3600.0, stream=stream)
    assert not p.enabled and not p.due()
    on = Progress(0.0, 3600.0, stream=stream, enabled=True, interval_s=0.0)
    assert on.due()
    line = on.line(600.0, 1234, elapsed_s=10.0)
    assert line.startswith("simulated 0:10:00 of 1:00:00 (17 %), ETA 0:00:50")
    assert "1234 vehicles" in line
    assert "ETA" not in Progress(0.0, None, stream=stream, enabled=False).line(600.0, 5, 10.0)
    on.update(600.0, 3)
    on.close()
    assert stream.getvalue().startswith("\rsimulated 0:10:00") and stream.getvalue().endswith("\r\x1b[K")


# ------------------------------------------------------------------------------------------ real SUMO

ROUTES = """<routes>
  <vType id="c" sigma="0.5"/>
  <flow id="we" type="c" begin="0" end="300" vehsPerHour="600" from="W_J1" to="J6_E" departSpeed="max"/>
  <flow id="ew" type="c" begin="0" end="300" vehsPerHour="400" from="E_J6" to="J1_W" departSpeed="max"/>
</routes>
"""


def _no_end_case(tmp_path: Path, net: Path, routes: str):
    from mobility.scenario import ZoneSpec, from_sumocfg

    shutil.copy(net, tmp_path / net.name)
    (tmp_path / "case.rou.xml").write_text(routes)
    cfg = tmp_path / "case.sumocfg"
    cfg.write_text(f"""<configuration>
  <input><net-file value="{net.name}"/><route-files value="case.rou.xml"/></input>
  <time><begin value="0"/><end value="100000"/></time>
</configuration>""")
    sc = from_sumocfg(cfg)
    cfg.write_text(cfg.read_text().replace('<end value="100000"/>', ""))  # as real models come: no end
    return sc.replace(end_s=None, zones=ZoneSpec(200, 100))


@pytest.mark.sumo
def test_no_end_runs_until_the_network_is_empty_and_conserves(tmp_path: Path) -> None:
    """Through traffic on the corridor (2.4 km, six signals) for 5 minutes, no end time: the run
    lasts until the last vehicle has left, and SUMO's own totals are matched."""
    from mobility import run
    from mobility.scenario import ROOT

    sc = _no_end_case(tmp_path, ROOT / "networks" / "corridor" / "corridor.net.xml", ROUTES)
    trips = tmp_path / "trips.xml"
    res = run(sc, "static", seed=1, sumo_args=["--device.emissions.probability", "1", "--tripinfo-output", str(trips)])
    n = res.network.iloc[0]
    tinfo = list(ET.parse(trips).getroot().iter("tripinfo"))
    assert n["vehicles_running_at_end"] == 0 and n["insertion_backlog_veh"] == 0
    assert n["vehicles_arrived"] == n["vehicles_seen"] == len(tinfo) >= 80  # all 50 + 34 of the flows, to the end
    assert max(float(t.get("arrival")) for t in tinfo) > 300  # the run went on after the demand stopped
    assert n["vehicle_classes"] == f"passenger={len(tinfo)}"  # what the sums count
    co2 = sum(float(e.get("CO2_abs")) for e in ET.parse(trips).getroot().iter("emissions"))
    assert n["co2_kg"] == pytest.approx(co2 / 1e6, rel=0.005)
    assert n["delay_s"] == pytest.approx(sum(float(t.get("timeLoss")) for t in tinfo), rel=0.01)
    assert res.junctions["co2_kg"].sum() == pytest.approx(n["co2_kg"], rel=1e-9)


@pytest.mark.sumo
def test_the_arrival_step_estimate_on_short_trips(one_junction: Path, tmp_path: Path) -> None:
    """Where every trip is short (45 s across one junction), the estimate of each vehicle's
    unobserved final step shows: CO2 within 1 % of SUMO's (0.7 % measured), delay within 1 %."""
    from mobility import run

    routes = ROUTES.replace("W_J1", "W_C").replace("J6_E", "C_E").replace('"E_J6" to="J1_W"', '"N_C" to="C_S"')
    sc = _no_end_case(tmp_path, one_junction, routes)
    trips = tmp_path / "trips.xml"
    n = run(sc, "static", seed=1, sumo_args=["--device.emissions.probability", "1", "--tripinfo-output",
                                             str(trips)]).network.iloc[0]
    tinfo = list(ET.parse(trips).getroot().iter("tripinfo"))
    assert n["vehicles_arrived"] == len(tinfo) >= 80
    co2 = sum(float(e.get("CO2_abs")) for e in ET.parse(trips).getroot().iter("emissions"))
    assert n["co2_kg"] == pytest.approx(co2 / 1e6, rel=0.01)
    assert n["delay_s"] == pytest.approx(sum(float(t.get("timeLoss")) for t in tinfo), rel=0.01)


def test_an_fcd_output_in_the_sumo_arguments_is_refused_with_the_reason(tmp_path: Path) -> None:
    from mobility.controllers import make
    from mobility.errors import MobilityError
    from mobility.scenario import load_scenario
    from mobility.sim import simulate

    sc = load_scenario("corridor").replace(end_s=60.0)
    with pytest.raises(MobilityError, match="SUMO option --fcd-output: mobility writes SUMO's FCD output itself"):
        simulate(sc, make("static"), 1, tmp_path, sumo_args="--fcd-output mine.xml")


@pytest.mark.sumo
def test_a_missing_fcd_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If SUMO wrote no FCD file, the run stops with the one error that says so, before the approach
    pass or the attribution pass reads it."""
    import mobility.sim as sim
    from mobility.controllers import make
    from mobility.errors import SimulationError
    from mobility.scenario import load_scenario

    monkeypatch.setattr(sim, "fcd_args", lambda path, electric: [])  # SUMO writes no samples
    sc = load_scenario("corridor").replace(end_s=60.0)
    with pytest.raises(SimulationError, match=r"mobility_samples\.parquet: SUMO wrote no vehicle samples \(is "
                       "--fcd-output overridden"):
        sim.simulate(sc, make("static"), 1, tmp_path)


@pytest.mark.sumo
def test_bicycles_lose_time_against_their_own_desired_speed(tmp_path: Path) -> None:
    """Bicycles ride at their type's desired maximum speed (20 km/h), well below the 50 km/h limit:
    SUMO's timeLoss measures them against that, and so must the delay (it was +30 % on the Berlin
    model before). The network total names both classes."""
    from mobility import run
    from mobility.scenario import ROOT

    routes = ROUTES.replace('<vType id="c" sigma="0.5"/>', '<vType id="c" sigma="0.5"/>\n  <vType id="b" vClass="bicycle"/>')
    routes = routes.replace("</routes>", '  <flow id="bike" type="b" begin="0" end="300" vehsPerHour="300" from="W_J1" '
                                         'to="J6_E" departSpeed="max"/>\n</routes>')
    sc = _no_end_case(tmp_path, ROOT / "networks" / "corridor" / "corridor.net.xml", routes)
    trips = tmp_path / "trips.xml"
    n = run(sc, "static", seed=1, sumo_args=["--tripinfo-output", str(trips)]).network.iloc[0]
    tinfo = list(ET.parse(trips).getroot().iter("tripinfo"))
    bikes = [t for t in tinfo if t.get("id").startswith("bike")]
    assert len(bikes) >= 20 and n["vehicles_arrived"] == len(tinfo)
    assert n["vehicle_classes"] == f"passenger={len(tinfo) - len(bikes)},bicycle={len(bikes)}"
    assert n["delay_s"] == pytest.approx(sum(float(t.get("timeLoss")) for t in tinfo), rel=0.01)


@pytest.mark.sumo
def test_scheduled_stops_lose_no_time_and_are_no_stops(tmp_path: Path) -> None:
    """A bus dwelling 60 s at a stop inside J3's approach zone: SUMO's timeLoss leaves the dwell out,
    and so must the delay (counted, it would add about 60 s per bus); the planned halt is not a stop.
    Emissions while dwelling (idling) are still counted: CO2 is conserved against SUMO."""
    from mobility import run
    from mobility.scenario import ROOT

    bus = ('  <vType id="bus" vClass="bus"/>\n'
           '  <flow id="line" type="bus" begin="0" end="300" period="60" from="W_J1" to="J6_E" departSpeed="max">\n'
           '    <stop lane="J2_J3_0" endPos="200" duration="60"/>\n  </flow>\n</routes>')
    sc = _no_end_case(tmp_path, ROOT / "networks" / "corridor" / "corridor.net.xml",
                      ROUTES.replace("</routes>", bus))
    trips = tmp_path / "trips.xml"
    res = run(sc, "static", seed=1, sumo_args=["--tripinfo-output", str(trips),
                                                "--device.emissions.probability", "1"])
    n = res.network.iloc[0]
    tinfo = list(ET.parse(trips).getroot().iter("tripinfo"))
    buses = [t for t in tinfo if t.get("id").startswith("line")]
    assert len(buses) == 5 and all(float(t.get("stopTime")) >= 60 for t in buses)
    time_loss = sum(float(t.get("timeLoss")) for t in tinfo)
    assert n["delay_s"] == pytest.approx(time_loss, rel=0.01)
    assert n["delay_s"] < time_loss + 0.5 * 60 * len(buses)  # the dwell (300 s) is not in the delay
    co2 = sum(float(t.find("emissions").get("CO2_abs")) for t in tinfo) / 1e6
    assert n["co2_kg"] == pytest.approx(co2, rel=0.005)
