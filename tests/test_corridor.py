"""Corridor metrics and time–space data on the bundled corridor (real SUMO)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from mobility import load_scenario, run
from mobility.corridor import CorridorMap
from mobility.errors import ScenarioError
from mobility.metrics import ZoneMap
from mobility.network import SignalNetwork
from mobility.scenario import ZoneSpec

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def corridor_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    d = tmp_path_factory.mktemp("corr")
    sc = load_scenario("corridor").replace(end_s=2400.0, warmup_s=0.0)
    trips = d / "trips.xml"
    res = run(sc, "static", seed=2, timespace=True, sumo_args=["--tripinfo-output", str(trips)])
    return sc, res, ET.parse(trips).getroot()


def test_corridor_trips_match_sumo_through_vehicles(corridor_run: tuple) -> None:
    sc, res, trips = corridor_run
    c = res.corridor.set_index("direction")
    # eastbound through vehicles are flow 0 (W_J1 → J6_E), westbound flow 1 (E_J6 → J1_W)
    for direction, prefix in (("outbound", "f0_"), ("inbound", "f1_")):
        through = [t for t in trips.iter("tripinfo") if t.get("id").startswith(prefix)]
        assert c.loc[direction, "vehicles"] == pytest.approx(len(through), rel=0.02)
        stops = np.mean([int(t.get("waitingCount")) for t in through])
        assert c.loc[direction, "stops_per_veh"] == pytest.approx(stops, rel=0.1)
    # travel time = free-flow time + delay (speed factors scatter around 1)
    free = c["travel_time_s_mean"] - c["delay_s_per_veh"]
    assert (abs(free - c["length_m"] / 13.89) < 0.15 * c["length_m"] / 13.89).all()


def test_timespace_signals_follow_the_program(corridor_run: tuple) -> None:
    sc, res, _ = corridor_run
    sig = res.timespace["signals"]
    net = SignalNetwork.load(sc.net_file)
    for j in ("J1", "J4"):
        onsets = sig[(sig.junction_id == j) & (sig.direction == "outbound") & (sig.state == "G")]["time_s"].to_numpy()
        assert len(onsets) > 10
        assert np.allclose(np.diff(onsets), net.junctions[j].cycle_s)
    traj = res.timespace["trajectories"]
    # trajectories are monotone in distance for each trip (vehicles never move backwards)
    one = traj[traj.trip == traj.trip.iloc[len(traj) // 2]]
    assert (np.diff(one["distance_m"].to_numpy()) >= -1e-6).all()
    assert traj["distance_m"].max() <= res.corridor["length_m"].max() + 1e-6


def test_bad_corridor_is_a_one_line_error() -> None:
    net = SignalNetwork.load(load_scenario("grid").net_file)
    zm = ZoneMap.build(net, ZoneSpec())
    with pytest.raises(ScenarioError, match="field 'corridor': expected at least 2 junctions"):
        CorridorMap.build(net, ["G00"], zm.lane_index, "grid.toml")
    with pytest.raises(ScenarioError, match="field 'corridor': 'J1' is not a signalised junction"):
        CorridorMap.build(net, ["G00", "J1"], zm.lane_index, "grid.toml")
