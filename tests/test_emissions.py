"""Fleets, scopes and kinematics: conservation against SUMO's own outputs (real SUMO)."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mobility import run
from mobility.carbon.emissions import CHINA_STANDARDS, china_city_fleet, emission_class_error, is_electric
from mobility.errors import ScenarioError
from mobility.metrics import UNATTRIBUTED
from mobility.scenario import ROOT, ZoneSpec, from_sumocfg, from_toml
from mobility.sim import sumo_binary

from .conftest import write_sumocfg

NET = ROOT / "networks" / "corridor" / "corridor.net.xml"


def _spec(tmp: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp / name
    p.write_text(f'name = "fleet-test"\nnetwork = "{NET}"\nend_s = 1200\n{body}\n'
                 '[[flows]]\nfrom = "W_J1"\nto = "J6_E"\nvph = 700\n'
                 '[[flows]]\nfrom = "E_J6"\nto = "J1_W"\nvph = 500\n'
                 '[[flows]]\nfrom = "N3_J3"\nto = "J3_S3"\nvph = 200\n', encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------------- unit


def test_china_city_fleet_shares_and_nev_parameter() -> None:
    for nev in (0.0, 0.3, 1.0):
        fleet = china_city_fleet(nev)
        assert sum(c.share for c in fleet) == pytest.approx(1.0)
        cars = [c for c in fleet if c.group in ("car", "taxi")]
        nev_cars = sum(c.share for c in cars if "BEV" in c.emission_class or "PHEV" in c.emission_class)
        assert nev_cars == pytest.approx(nev * sum(c.share for c in cars))
        # kinematic groups keep their shares whatever the NEV share
        groups = {g: sum(c.share for c in fleet if c.group == g) for g in ("car", "taxi", "van", "bus", "truck")}
        assert groups == pytest.approx({"car": 0.80, "taxi": 0.08, "van": 0.06, "bus": 0.03, "truck": 0.03})
    with pytest.raises(ValueError, match="nev_share"):
        china_city_fleet(1.5)


def test_every_mapped_class_is_known_to_sumo() -> None:
    for key, eclass in CHINA_STANDARDS.items():
        assert emission_class_error(eclass) is None, key
    assert emission_class_error("HBEFA4/PC_unobtainium") is not None
    assert is_electric("HBEFA4/PC_BEV") and is_electric("HBEFA4/PC_PHEV_petrol_Euro-6d_(El)")
    assert not is_electric("HBEFA4/PC_PHEV_petrol_Euro-6d_(P)") and not is_electric("HBEFA4/PC_petrol_Euro-6d")


@pytest.mark.parametrize("body, field", [
    ('[[vehicle_types]]\nid = "a"\nshare = 1.0\nemission_class = "HBEFA4/PC_nonsense"', "vehicle_types[0].emission_class"),
    ('[[vehicle_types]]\nid = "a"\nshare = 0.5\n[[vehicle_types]]\nid = "b"\nshare = 0.4', "vehicle_types[*].share"),
    ('[emissions]\ngrid_kg_co2_per_kwh = -0.1', "emissions.grid_kg_co2_per_kwh"),
    ('[emissions]\ngrid_kg_co2_per_kwh = 0.6', "emissions.grid_factor_source"),
    ('[fleet]\npreset = "mars"', "fleet.preset"),
    ('periods = [1, 2]', "periods[0]"),  # an array of tables expected
    ('vehicle_types = ["car"]', "vehicle_types[0]"),
    ('[fleet]\npreset = "china-city"\nnev_share = 2', "fleet.nev_share"),
    ('[[vehicle_types]]\nid = "a"\nshare = 0.5\ngroup = "g"\n[[vehicle_types]]\nid = "b"\nshare = 0.5\n'
     'group = "g"\nvclass = "bus"', "vehicle_types[*].group"),
])
def test_bad_fleet_specs_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    with pytest.raises(ScenarioError) as e:
        from_toml(_spec(tmp_path, body))
    msg = str(e.value)
    assert f"field '{field}'" in msg and "\n" not in msg


def test_fleet_preset_types_are_grouped_and_recorded(tmp_path: Path) -> None:
    sc = from_toml(_spec(tmp_path, '[fleet]\npreset = "china-city"\nnev_share = 0.4\n'
                                   '[emissions]\ngrid_kg_co2_per_kwh = 0.58\ngrid_factor_source = "X grid"\n'
                                   'grid_factor_year = 2023'))
    groups = [v.kinematic_group for v in sc.vehicle_types]
    assert groups == sorted(groups, key=groups.index)  # contiguous
    assert sc.grid.kg_co2_per_kwh == 0.58 and sc.grid.source == "X grid" and sc.grid.year == 2023
    assert '"nev_share": 0.4' in sc.fleet
    # a different fleet or grid factor is a different scenario (different run ids)
    other = from_toml(_spec(tmp_path, '[fleet]\npreset = "china-city"\nnev_share = 0.5', "o.toml"))
    assert sc.content_hash() != other.content_hash()


# ------------------------------------------------------------------------------------- real SUMO


def _sumo_totals(trips: Path) -> dict[str, float]:
    em = list(ET.parse(trips).getroot().iter("emissions"))
    return {k: sum(float(e.get(k)) for e in em) for k in ("CO2_abs", "electricity_abs")}


@pytest.mark.sumo
def test_scopes_conserved_against_sumo_with_mixed_fleet(tmp_path: Path) -> None:
    sc = from_toml(_spec(tmp_path, '[fleet]\npreset = "china-city"\nnev_share = 0.5\n'
                                   '[emissions]\ngrid_kg_co2_per_kwh = 0.6\ngrid_factor_source = "test"\n'
                                   'grid_factor_year = 2024'))
    trips = tmp_path / "trips.xml"
    res = run(sc, "static", seed=3, sumo_args=["--device.emissions.probability", "1", "--tripinfo-output", str(trips),
                                                "--tripinfo-output.write-unfinished", "true"])
    j, n = res.junctions, res.network.iloc[0]
    for col in ("co2_kg", "energy_kwh", "co2_scope2_kg", "co2_total_kg"):
        assert j[col].sum() == pytest.approx(n[col], rel=1e-9), col  # junctions + unattributed = network
    sumo = _sumo_totals(trips)
    assert n["co2_kg"] == pytest.approx(sumo["CO2_abs"] / 1e6, rel=0.005)  # scope 1 = SUMO's CO2
    assert n["energy_kwh"] == pytest.approx(sumo["electricity_abs"] / 1e3, rel=0.005)  # SUMO's electricity (Wh)
    assert n["energy_kwh"] > 1.0
    assert np.allclose(j["co2_scope2_kg"], j["energy_kwh"] * 0.6)
    assert np.allclose(j["co2_total_kg"], j["co2_kg"] + j["co2_scope2_kg"])
    # kinematics cover exactly the counted vehicle-steps: per junction = its vehicle-seconds
    k = res.kinematics
    steps = k.groupby("junction_id")["veh_steps"].sum()
    js = j.set_index("junction_id")
    for jid in ("J1", "J2", "J3", "J4", "J5", "J6"):
        assert steps[jid] == pytest.approx(js.loc[jid, "veh_s"])
    assert steps[UNATTRIBUTED] >= js.loc[UNATTRIBUTED, "veh_s"]  # + the estimated arrival steps
    assert set(k["vtype"]) <= {v.id for v in sc.vehicle_types}
    assert ((k["speed_mps_mean"] >= k["speed_bin"] * 0.5 - 1e-9) & (k["speed_mps_mean"] < (k["speed_bin"] + 1) * 0.5)).all()


@pytest.mark.sumo
def test_all_electric_fleet_has_no_tailpipe_co2(tmp_path: Path) -> None:
    sc = from_toml(_spec(tmp_path, '[[vehicle_types]]\nid = "bev"\nshare = 1.0\nemission_class = "HBEFA4/PC_BEV"\n'
                                   '[emissions]\ngrid_kg_co2_per_kwh = 0.5\ngrid_factor_source = "test"\n'
                                   'grid_factor_year = 2024'))
    n = run(sc.replace(end_s=600), "static", seed=1).network.iloc[0]
    assert n["co2_kg"] == 0.0 and n["fuel_kg"] == 0.0
    assert n["energy_kwh"] > 0.5
    assert n["co2_scope2_kg"] == pytest.approx(n["energy_kwh"] * 0.5, rel=1e-12)
    assert n["co2_total_kg"] == pytest.approx(n["co2_scope2_kg"], rel=1e-12)


ROUTE_RED = """
<routes>
  <vType id="exact" sigma="0" speedFactor="1" speedDev="0" emissionClass="HBEFA4/PC_petrol_Euro-6d"/>
  <!-- N->S is red until 33 s: arrives at ~21 s and idles until the green -->
  <vehicle id="ns_red" type="exact" depart="0" departSpeed="max"><route edges="N_C C_S"/></vehicle>
</routes>
"""


def _idle_rate_mg_per_s(eclass: str, tmp: Path) -> float:
    """SUMO's own emission model at v = 0, a = 0 (emissionsDrivingCycle), mg/s of CO2."""
    cycle = tmp / "idle.csv"
    cycle.write_text("0;0;0\n1;0;0\n")
    out = tmp / "idle.out.csv"
    subprocess.run([str(Path(sumo_binary()).parent / "emissionsDrivingCycle"), "-e", eclass, "-t", str(cycle),
                    "-o", str(out)], check=True, capture_output=True)
    # columns: time;speed;acceleration;slope;CO;CO2;HC;PMx;NOx;fuel;electricity
    return float(out.read_text().splitlines()[0].split(";")[5])


@pytest.mark.sumo
def test_vehicle_idling_at_red_emits_its_class_idle_rate(one_junction: Path, tmp_path: Path) -> None:
    shutil.copy(one_junction, tmp_path / one_junction.name)
    cfg = write_sumocfg(tmp_path, tmp_path / one_junction.name, ROUTE_RED, end=120)
    sc = from_sumocfg(cfg).replace(zones=ZoneSpec(upstream_m=400, downstream_m=400))
    row = run(sc, "static", seed=1).junctions.set_index("junction_id").loc["C"]
    rate = _idle_rate_mg_per_s("HBEFA4/PC_petrol_Euro-6d", tmp_path)
    assert rate > 100  # a petrol car idles at several hundred mg/s
    assert 8 <= row["halted_veh_s"] <= 14  # arrives ~21 s, green at 33 s
    assert row["stops"] == 1
    # everything it emitted while halted is the class's idle rate × the idling time, and sits in "idle".
    # The step in which it comes to rest counts as halted (v < 0.1 m/s) but is still braking (a < 0,
    # no fuel in HBEFA's fuel cut-off), so it idles at v = 0, a = 0 for halted time − 1 step.
    assert row["co2_idle_kg"] == pytest.approx(rate * (row["halted_veh_s"] - 1.0) / 1e6, rel=1e-6)
    others = row[["co2_accel_kg", "co2_cruise_kg", "co2_decel_kg"]].sum()
    assert row["co2_idle_kg"] + others == pytest.approx(row["co2_kg"])
