"""Emission lookup tables and fleet what-ifs (`mobility reevaluate`) against real SUMO."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobility import run
from mobility.cli import main
from mobility.carbon.emission_tables import Grid, cell_rates, class_error, emission_table, run_tool
from mobility.errors import MobilityError, ScenarioError
from mobility.metrics import KIN_ACCEL_BIN, KIN_ACCEL_MIN, KIN_SPEED_BIN
from mobility.carbon.reevaluate import (ClassShare, Fleet, class_split, fleet_of_scenario, load_fleet, reevaluate)
from mobility.scenario import ROOT, from_toml
from mobility.sim import sumo_binary
from mobility.carbon.tonnage import apply_fleet

from .conftest import write_sumocfg

NET = ROOT / "networks" / "corridor" / "corridor.net.xml"


def corridor_variant(out: Path, *, end_s: float, warmup_s: float, extra: str = "") -> Path:
    """The bundled corridor scenario with another time window and, in ``extra``, e.g. a [fleet]
    table replacing its vehicle types (written to ``out``)."""
    text = (ROOT / "scenarios" / "corridor.toml").read_text(encoding="utf-8")
    if extra:
        text = re.sub(r"\[\[vehicle_types\]\]\n(?:(?!\[).*\n)*", "", text)
    text = text.replace('network = "../networks/corridor/corridor.net.xml"', f'network = "{NET}"')
    text = re.sub(r"^end_s = .*$", f"end_s = {end_s:g}", text, count=1, flags=re.M)
    text = re.sub(r"^warmup_s = .*$", f"warmup_s = {warmup_s:g}", text, count=1, flags=re.M)
    text = text.replace("[zones]", f"{extra}\n[zones]", 1)
    out.write_text(text, encoding="utf-8")
    return out


# ------------------------------------------------------------------------------------------ unit


def _fleet(name: str, group_shares: dict[str, float], classes: list[tuple[str, str, str, float]]) -> Fleet:
    return Fleet(name, tuple(ClassShare(*c) for c in classes), group_shares, None,
                 {g: ("passenger", ()) for g in group_shares})


def test_class_split_follows_sumos_draw_intervals() -> None:
    # run: car = petrol [0, .7) then bev [.7, 1); what-if: petrol [0, .4), bev [.4, 1)
    a = _fleet("a", {"car": 0.9, "bus": 0.1}, [("p", "car", "X/petrol", 0.7), ("e", "car", "X/bev", 0.3),
                                               ("b", "bus", "X/bus", 1.0)])
    b = Fleet("b", (ClassShare("p2", "car", "X/petrol", 0.4), ClassShare("e2", "car", "X/bev", 0.6)))
    s = class_split(a, b)
    assert [(c.id, f) for c, f in s["p"]] == [("p2", pytest.approx(4 / 7)), ("e2", pytest.approx(3 / 7))]
    assert [(c.id, f) for c, f in s["e"]] == [("e2", pytest.approx(1.0))]
    assert [(c.id, f) for c, f in s["b"]] == [("b", 1.0)]  # group not in the what-if: unchanged
    # fractions × run shares reproduce the what-if's shares within the group
    bev = sum(f * c_share for t, c_share in (("p", 0.7), ("e", 0.3)) for c, f in s[t] if c.id == "e2")
    assert bev == pytest.approx(0.6)


def test_class_split_refuses_a_different_traffic_mix() -> None:
    a = _fleet("a", {"car": 0.9, "bus": 0.1}, [("p", "car", "X/p", 1.0), ("b", "bus", "X/b", 1.0)])
    other = _fleet("b", {"car": 0.8, "bus": 0.2}, [("p", "car", "X/p", 1.0), ("b", "bus", "X/b", 1.0)])
    with pytest.raises(MobilityError, match="group 'car'.*within each group"):
        class_split(a, other)
    with pytest.raises(MobilityError, match="'truck' is not a kinematic group"):
        class_split(a, Fleet("t", (ClassShare("t", "truck", "X/t", 1.0),)))


def test_load_fleet_forms(tmp_path: Path) -> None:
    f = load_fleet("china-city(nev_share=0.6)")
    assert f.name == "china-city(nev_share=0.6)"
    assert sum(f.group_shares.values()) == pytest.approx(1.0)
    for g in f.groups():
        assert sum(c.share for c in f.within(g)) == pytest.approx(1.0)
    p = tmp_path / "f.toml"
    p.write_text('name = "bev-cars"\n[[classes]]\ngroup = "car"\nemission_class = "HBEFA4/PC_BEV"\nshare = 1.0\n'
                 '[emissions]\ngrid_kg_co2_per_kwh = 0.3\ngrid_factor_source = "test"\ngrid_factor_year = 2030\n')
    f = load_fleet(p)
    assert f.name == "bev-cars" and f.group_shares == {} and f.grid.kg_co2_per_kwh == 0.3
    corridor = from_toml(ROOT / "scenarios" / "corridor.toml")
    assert load_fleet(ROOT / "scenarios" / "corridor.toml").groups() == list(
        dict.fromkeys(v.kinematic_group for v in corridor.vehicle_types))


@pytest.mark.parametrize("body, field", [
    ('[[classes]]\ngroup = "car"\nemission_class = "HBEFA4/PC_nonsense"\nshare = 1.0', "classes[0].emission_class"),
    ('[[classes]]\ngroup = "car"\nemission_class = "HBEFA4/PC_BEV"\nshare = 0.5\n'
     '[[classes]]\ngroup = "car"\nemission_class = "HBEFA4/PC_petrol_Euro-6d"\nshare = 0.4', "classes[*].share"),
    ('[fleet]\npreset = "china-city"\nnev_share = 1.5', "fleet.nev_share"),
    ('[fleet]\npreset = "mars"', "fleet.preset"),
    ('[[classes]]\ngroup = "car"\nemission_class = "HBEFA4/PC_BEV"\nshare = 1.0\n'
     '[emissions]\ngrid_kg_co2_per_kwh = -0.2\ngrid_factor_source = "x"\ngrid_factor_year = 2020',
     "emissions.grid_kg_co2_per_kwh"),
])
def test_bad_fleet_files_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(body + "\n")
    with pytest.raises(ScenarioError) as e:
        load_fleet(p)
    assert f"field '{field}'" in str(e.value) and "\n" not in str(e.value)


def test_phemlight_classes_are_found_in_the_wheel() -> None:
    # SUMO's own tool default (./PHEMlight/) would reject PHEMlight 5 classes; we point it to the wheel's data
    assert class_error("PHEMlight5/PC_EU4_G") is None
    assert class_error("HBEFA4/PC_unobtainium") is not None


def test_table_reproduces_sumos_model_and_is_cached_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILITY_CACHE_DIR", str(tmp_path / "cache"))
    grid = Grid(speed_step=0.1, speed_max=20.0, accel_step=0.01, accel_min=-4.0, accel_max=3.0)
    classes = ["HBEFA4/PC_petrol_Euro-6d", "HBEFA4/PC_BEV", "PHEMlight5/PC_EU4_D_MW", "Energy/unknown"]
    rng = np.random.default_rng(7)
    v = rng.uniform(0, 20, 3000)
    a = rng.uniform(-4, 3, 3000)
    for eclass in classes:
        table = emission_table(eclass, "passenger", (), grid)
        exact = run_tool(eclass, "passenger", (), v, a)
        got = table.evaluate(v, a)
        for q, x in exact.items():
            err = np.abs(got[q] - x)
            scale = max(np.abs(x).max(), 1e-9)
            # everywhere but next to HBEFA's fuel cut-off (a jump across one 0.01 m/s² cell)
            assert np.quantile(err, 0.99) <= 2e-3 * scale, (eclass, q)
            assert abs(got[q].astype(float).sum() - x.sum()) <= 2e-3 * max(np.abs(x).sum(), 1e-9), (eclass, q)
        # grid nodes are SUMO's values (6 significant digits in the tool's output)
        nodes_v, nodes_a = np.array([0.0, 5.0, 13.9]), np.array([0.0, 1.0, -0.5])
        node = table.evaluate(nodes_v, nodes_a)
        ref = run_tool(eclass, "passenger", (), nodes_v, nodes_a)
        for q in ref:
            assert np.allclose(node[q], ref[q], rtol=1e-5, atol=1e-6), (eclass, q)
    files = sorted((tmp_path / "cache" / "emission-tables").rglob("*"))
    assert len([f for f in files if f.suffix == ".npz"]) == len(classes)
    assert not [f for f in files if f.name.endswith(".tmp")]  # nothing half-written left behind
    # a second process (empty memory cache) loads the tables from disk instead of rebuilding them
    from mobility.carbon import emission_tables as et

    et._cached_table.cache_clear()
    monkeypatch.setattr(et, "build_table", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert emission_table(classes[0], "passenger", (), grid).quantities == ("co2_mg_s", "fuel_mg_s")
    assert emission_table(classes[1], "passenger", (), grid).quantities == ("electricity_wh_s",)


# ------------------------------------------------------------------------------------- real SUMO

ROUTES = """
<routes>
  <vType id="petrol" vClass="passenger" emissionClass="HBEFA4/PC_petrol_Euro-6d"/>
  <vType id="bev" vClass="passenger" emissionClass="HBEFA4/PC_BEV"/>
  <vType id="bus" vClass="bus" emissionClass="HBEFA4/UBus_Std_gt15-18t_Euro-VI_D-E"/>
  <vTypeDistribution id="mix" vTypes="petrol bev bus" probabilities="0.6 0.3 0.1"/>
  <flow id="we" type="mix" begin="0" end="500" period="exp(0.12)" from="W_C" to="C_E" departSpeed="max"/>
  <flow id="ns" type="mix" begin="0" end="500" period="exp(0.08)" from="N_C" to="C_S" departSpeed="max"/>
</routes>
"""
CLASSES = {"petrol": ("HBEFA4/PC_petrol_Euro-6d", "passenger", "co2_mg_s", "CO2"),
           "bev": ("HBEFA4/PC_BEV", "passenger", "electricity_wh_s", "electricity"),
           "bus": ("HBEFA4/UBus_Std_gt15-18t_Euro-VI_D-E", "bus", "co2_mg_s", "CO2")}


@pytest.fixture(scope="module")
def emission_output(one_junction: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Per vehicle-step speed, acceleration and SUMO's own CO2 / electricity from a `sumo` run."""
    d = tmp_path_factory.mktemp("emout")
    shutil.copy(one_junction, d / one_junction.name)
    cfg = write_sumocfg(d, d / one_junction.name, ROUTES, end=600)
    out = d / "emissions.xml"
    subprocess.run([sumo_binary(), "-c", str(cfg), "--emission-output", str(out), "--precision", "8",
                    "--seed", "3", "--no-step-log", "true", "--duration-log.disable", "true"],
                   check=True, capture_output=True)
    rows = [(float(ts.get("time")), v.get("id"), v.get("type"), float(v.get("speed")), float(v.get("CO2")),
             float(v.get("electricity"))) for ts in ET.parse(out).getroot().iter("timestep") for v in ts.iter("vehicle")]
    df = pd.DataFrame(rows, columns=["t", "id", "type", "speed", "CO2", "electricity"]).sort_values(["id", "t"])
    df["accel"] = df.groupby("id")["speed"].diff()  # step length 1 s; NaN on a vehicle's first step
    return df.dropna(subset=["accel"]).reset_index(drop=True)


@pytest.mark.sumo
def test_table_reproduces_sumos_per_step_emissions(emission_output: pd.DataFrame) -> None:
    df = emission_output
    assert set(df["type"]) == set(CLASSES) and len(df) > 3000
    for vtype, (eclass, vclass, q, col) in CLASSES.items():
        g = df[df["type"] == vtype]
        got = emission_table(eclass, vclass).evaluate(g["speed"].to_numpy(), g["accel"].to_numpy())[q].astype(float)
        ref = g[col].to_numpy()
        err = np.abs(got - ref)
        assert np.quantile(err, 0.98) <= 1e-3 * np.abs(ref).max(), vtype  # per step, except at the fuel cut-off
        assert got.sum() == pytest.approx(ref.sum(), rel=2e-3), vtype  # over the run


@pytest.mark.sumo
def test_cell_means_reproduce_sumos_totals(emission_output: pd.DataFrame) -> None:
    """Only the kinematics cells' counts and means are kept; that still gives SUMO's totals."""
    df = emission_output
    for vtype, (eclass, vclass, q, col) in CLASSES.items():
        g = df[df["type"] == vtype].assign(
            vb=lambda x: np.floor(x["speed"] / KIN_SPEED_BIN),
            ab=lambda x: np.floor((x["accel"] - KIN_ACCEL_MIN) / KIN_ACCEL_BIN))
        cells = g.groupby(["vb", "ab"]).agg(n=("speed", "size"), v=("speed", "mean"), a=("accel", "mean")).reset_index()
        lo = KIN_ACCEL_MIN + cells["ab"].to_numpy() * KIN_ACCEL_BIN
        table = emission_table(eclass, vclass)
        args = (table, cells["v"].to_numpy(), cells["a"].to_numpy(), lo, lo + KIN_ACCEL_BIN)
        r = cell_rates(*args)
        assert (r[q] * cells["n"]).sum() == pytest.approx(g[col].sum(), rel=5e-3), vtype
        # the shortcut for cells where the model is linear in acceleration changes nothing that matters
        linear = table.linear_within(cells["vb"].to_numpy(), cells["ab"].to_numpy(), KIN_SPEED_BIN, KIN_ACCEL_BIN,
                                     KIN_ACCEL_MIN)
        assert linear.mean() > 0.5, vtype
        fast = cell_rates(*args, linear=linear)
        scale = np.abs(table.values).max()
        assert np.abs(fast[q] - r[q]).max() <= 4e-5 * scale, vtype


@pytest.fixture(scope="module")
def fleet_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The corridor (20 min, 5 min warm-up) simulated with the china-city fleet at 30 % NEV (A),
    60 % NEV (B) and with every car battery-electric (C), all with seed 4."""
    d = tmp_path_factory.mktemp("whatif")
    sa = from_toml(corridor_variant(d / "a.toml", end_s=1500, warmup_s=300,
                                    extra='[fleet]\npreset = "china-city"\nnev_share = 0.3\n'))
    sb = from_toml(corridor_variant(d / "b.toml", end_s=1500, warmup_s=300,
                                    extra='[fleet]\npreset = "china-city"\nnev_share = 0.6\n'))
    bev_cars = Fleet("bev-cars", (ClassShare("car_bev_all", "car", "HBEFA4/PC_BEV", 1.0),))
    sc = apply_fleet(sa, bev_cars, "test")
    res_a = run(sa, "static", seed=4, out=d / "A")
    return {"dir": d, "A": res_a, "B": run(sb, "static", seed=4), "C": run(sc, "static", seed=4),
            "bev_cars": bev_cars, "scenario_a": sa}


def _by_junction(df: pd.DataFrame, col: str) -> pd.Series:
    return df.set_index("junction_id")[col]


@pytest.mark.sumo
def test_reevaluation_agrees_with_resimulation_within_3_percent(fleet_runs: dict) -> None:
    A, B, C = fleet_runs["A"], fleet_runs["B"], fleet_runs["C"]
    d = fleet_runs["dir"]
    # same traffic: a fleet change inside kinematic groups leaves every vehicle's motion unchanged
    assert _by_junction(A.junctions, "delay_s").equals(_by_junction(B.junctions, "delay_s"))
    assert _by_junction(A.junctions, "delay_s").equals(_by_junction(C.junctions, "delay_s"))
    for label, fleet, resim in (("nev 0.6", "china-city(nev_share=0.6)", B), ("all cars BEV", fleet_runs["bev_cars"], C)):
        w = reevaluate(d / "A", fleet)
        j = w.junctions.set_index("junction_id")
        sim = _by_junction(resim.junctions, "co2_total_kg")
        named = [x for x in sim.index if x != "(unattributed)"]
        err = (j.loc[named, "co2_total_kg"] / sim[named] - 1).abs()
        assert err.max() < 0.03, (label, err.to_dict())
        assert (j["co2_total_kg"] - (j["co2_kg"] + j["co2_scope2_kg"])).abs().max() < 1e-9
        # the fleet change is large compared with the agreement: the check has teeth
        before = _by_junction(A.junctions, "co2_total_kg")[named]
        assert ((sim[named] / before - 1).abs() > 0.05).all(), label
    # the lookup on the fleet that was simulated reproduces the run (per junction within 1 %)
    assert (j.loc[named, "lookup_error_pct"].abs() < 1.0).all()


@pytest.mark.sumo
def test_grid_factor_what_if_scales_scope_2_only(fleet_runs: dict) -> None:
    d = fleet_runs["dir"]
    same = fleet_of_scenario(fleet_runs["scenario_a"])
    w1 = reevaluate(d / "A", same, grid_kg_co2_per_kwh=0.0)
    w2 = reevaluate(d / "A", same, grid_kg_co2_per_kwh=1.2)
    j1, j2 = w1.junctions.set_index("junction_id"), w2.junctions.set_index("junction_id")
    assert (j1["co2_scope2_kg"] == 0).all()
    assert np.allclose(j2["co2_scope2_kg"], j2["energy_kwh"] * 1.2)
    assert np.allclose(j1["co2_kg"], j2["co2_kg"]) and (j2["energy_kwh"] > 0).all()
    # scope 1 of the simulated fleet by lookup is SUMO's within 1 % per junction (the unattributed
    # remainder, where vehicles enter and their first step's acceleration is unknown, within 3 %)
    rec = _by_junction(fleet_runs["A"].junctions, "co2_kg")
    err = (j1["co2_kg"] / rec[j1.index] - 1).abs()
    assert (err.drop("(unattributed)") < 0.01).all() and err["(unattributed)"] < 0.03


@pytest.mark.sumo
def test_cli_reevaluate_writes_tables_and_rejects_bad_input(fleet_runs: dict, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    d = fleet_runs["dir"]
    out = tmp_path / "w"
    assert main(["reevaluate", str(d / "A"), "--fleet", "china-city(nev_share=0.9)", "--out", str(out)]) == 0
    j = pd.read_parquet(out / "junctions.parquet")
    assert {"co2_kg", "co2_scope2_kg", "co2_total_kg", "energy_kwh", "sim_co2_total_kg", "change_pct"} <= set(j.columns)
    assert (j["change_pct"] < 0).all()  # more NEVs, less CO2 at this grid factor
    assert (out / "junctions.csv").exists() and (out / "runs.parquet").exists()
    capsys.readouterr()
    for args, msg in ((["--fleet", "china-city(nev_share=0.6)", "--grid-factor", "-1"], "--grid-factor"),
                      (["--fleet", "mars"], "--fleet 'mars'"),
                      (["--fleet", "china-city(nev_share=2)"], "nev_share")):
        bad = tmp_path / "bad"
        assert main(["reevaluate", str(d / "A"), *args, "--out", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1
        assert not bad.exists()
    assert main(["reevaluate", str(tmp_path / "nope"), "--fleet", "china-city"]) == 2
