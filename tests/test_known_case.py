"""A hand-built junction whose stops and delay are known by construction (real SUMO)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility import run
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import write_sumocfg

pytestmark = pytest.mark.sumo

ROUTES = """
<routes>
  <vType id="exact" sigma="0" speedFactor="1" speedDev="0" emissionClass="HBEFA4/PC_petrol_Euro-6ab"/>
  <!-- reaches the stop line at ~21 s, W->E green until 30 s: passes without stopping -->
  <vehicle id="on_green" type="exact" depart="0" departSpeed="max"><route edges="W_C C_E"/></vehicle>
  <!-- N->S is red until 33 s: stops once, waits ~11 s -->
  <vehicle id="ns_red" type="exact" depart="0" departSpeed="max"><route edges="N_C C_S"/></vehicle>
  <!-- reaches the stop line at ~41 s, W->E red from 33 to 66 s: stops once, waits ~24 s -->
  <vehicle id="on_red" type="exact" depart="20" departSpeed="max"><route edges="W_C C_E"/></vehicle>
</routes>
"""


def _tripinfo(path: Path) -> dict[str, float]:
    return {t.get("id"): float(t.get("timeLoss")) for t in ET.parse(path).getroot().iter("tripinfo")}


def test_one_vehicle_at_green_two_at_red(one_junction: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copy(one_junction, tmp_path / one_junction.name)
    cfg = write_sumocfg(tmp_path, tmp_path / one_junction.name, ROUTES, end=150)
    # zones wide enough to hold the whole 300 m legs: every vehicle-second is attributed to C
    sc = from_sumocfg(cfg).replace(zones=ZoneSpec(upstream_m=400, downstream_m=400))
    trips = tmp_path / "trips.xml"
    res = run(sc, "static", seed=1, sumo_args=["--tripinfo-output", str(trips)])

    row = res.junctions.set_index("junction_id").loc["C"]
    assert row["vehicles"] == 3
    assert row["stops"] == 2  # on_red and ns_red, not on_green
    assert row["queue_max_veh"] == 1
    loss = _tripinfo(trips)
    assert loss["on_green"] < 1.0
    assert 20 < loss["on_red"] < 35 and 8 < loss["ns_red"] < 20
    # our delay is SUMO's timeLoss, attributed step by step; only the arrival step is not observable
    assert row["delay_s"] == pytest.approx(sum(loss.values()), rel=0.01)
    # idling is visible: the two stopped vehicles idled for (almost) all of their waiting time
    assert 25 < row["halted_veh_s"] < 40
    assert 0 < row["co2_idle_kg"] < row["co2_kg"]
    # the two waits are idling: their CO2 is the emission class's idle rate for the halted time
    idle_rate = row["co2_idle_kg"] / row["halted_veh_s"]  # kg/s, one class, v = 0, a = 0
    assert 0.4e-3 < idle_rate < 2e-3  # a petrol Euro 6 car idles at roughly 0.5-1.5 g/s of CO2
    assert row[["co2_idle_kg", "co2_accel_kg", "co2_cruise_kg", "co2_decel_kg"]].sum() == pytest.approx(row["co2_kg"])
    assert row["co2_accel_kg"] > 0 and row["co2_decel_kg"] >= 0
    unattributed = res.junctions.set_index("junction_id").loc["(unattributed)"]
    assert unattributed["co2_kg"] == pytest.approx(0.0, abs=1e-9)
