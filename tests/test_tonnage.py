"""Annual tonnage per junction: the annualisation formula, CIs, spec validation, a real run."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mobility.inputs import profiles
from mobility.cli import main
from mobility.metrics import UNATTRIBUTED
from mobility.scenario import ROOT, Scenario
from mobility.carbon.tonnage import (ALL_JUNCTIONS, CAR_YEAR_T_CO2, NETWORK, PeriodSpec, TonnageSpec, annualise,
                              load_spec)

from .test_reevaluate import corridor_variant

NET = ROOT / "networks" / "corridor" / "corridor.net.xml"


# ------------------------------------------------------------------------------------------ unit


def _spec(periods: list[tuple[str, float, float]], seeds: tuple[int, ...] = (1, 2, 3)) -> TonnageSpec:
    """periods: (name, window seconds, hours per year)."""
    ps = tuple(PeriodSpec(n, Scenario(n, Path(n), NET, 0.0, 300.0 + w, 300.0), h) for n, w, h in periods)
    return TonnageSpec("t", Path("t.toml"), ps, ("base", "new"), "base", seeds)


def _results(kg: dict[tuple[str, int, str], tuple[float, float]], failed: tuple[tuple[str, int], ...] = ()):
    """Fake period results: kg[(controller, seed, junction)] = (scope 1, scope 2) in the window."""
    rows, runs = [], {}
    for (c, s, j), (s1, s2) in kg.items():
        rid = f"{c}-{s}"
        runs[rid] = {"run_id": rid, "controller": c, "variant": c, "seed": s,
                     "status": "failed" if (c, s) in failed else "ok", "error": "", "gridlock": False}
        rows.append({"run_id": rid, "controller": c, "variant": c, "seed": s, "junction_id": j,
                     "co2_kg": s1, "co2_scope2_kg": s2, "co2_total_kg": s1 + s2})
    return types.SimpleNamespace(junctions=pd.DataFrame(rows), runs=pd.DataFrame(list(runs.values())))


def test_annual_tonnes_and_paired_ci_follow_the_documented_formula() -> None:
    spec = _spec([("peak", 3600.0, 500.0), ("night", 1800.0, 2000.0)])
    rng = np.random.default_rng(3)
    kg = {}
    for p in ("peak", "night"):
        kg[p] = {(c, s, j): (float(rng.uniform(50, 100)), float(rng.uniform(0, 10)))
                 for c in ("base", "new") for s in (1, 2, 3) for j in ("J1", "J2", UNATTRIBUTED)}
    t = annualise(spec, {p: _results(kg[p]) for p in kg}).tonnage.set_index(["junction_id", "controller"])

    def annual(c: str, s: int, j: str, scope: int) -> float:  # Σ kg / window_h × hours / 1000
        return sum((kg[p][c, s, j][0] if scope == 1 else kg[p][c, s, j][1] if scope == 2 else sum(kg[p][c, s, j]))
                   / w * h / 1000 for p, w, h in (("peak", 1.0, 500.0), ("night", 0.5, 2000.0)))

    for j in ("J1", "J2"):
        base = np.array([annual("base", s, j, 0) for s in (1, 2, 3)])
        new = np.array([annual("new", s, j, 0) for s in (1, 2, 3)])
        d = base - new
        half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
        r = t.loc[(j, "new")]
        assert r["t_co2_total_per_yr"] == pytest.approx(new.mean())
        assert r["t_co2_scope1_per_yr"] == pytest.approx(np.mean([annual("new", s, j, 1) for s in (1, 2, 3)]))
        assert r["t_co2_scope2_per_yr"] == pytest.approx(np.mean([annual("new", s, j, 2) for s in (1, 2, 3)]))
        assert r["saved_t_co2_per_yr"] == pytest.approx(d.mean())
        assert r["saved_t_co2_per_yr_ci95_low"] == pytest.approx(d.mean() - half)
        assert r["saved_t_co2_per_yr_ci95_high"] == pytest.approx(d.mean() + half)
        assert r["saved_pct"] == pytest.approx(100 * d.mean() / base.mean())
        assert r["car_years_saved"] == pytest.approx(d.mean() / CAR_YEAR_T_CO2)
        assert t.loc[(j, "base"), "saved_t_co2_per_yr"] == 0 and t.loc[(j, "base"), "is_baseline"]
    for c in ("base", "new"):  # aggregates add up, scope by scope
        for col in ("t_co2_scope1_per_yr", "t_co2_scope2_per_yr", "t_co2_total_per_yr"):
            assert t.loc[(ALL_JUNCTIONS, c), col] == pytest.approx(t.loc[("J1", c), col] + t.loc[("J2", c), col])
            assert t.loc[(NETWORK, c), col] == pytest.approx(t.loc[(ALL_JUNCTIONS, c), col] + t.loc[(UNATTRIBUTED, c), col])
    assert CAR_YEAR_T_CO2 == pytest.approx(41_600 / 14_000) and round(CAR_YEAR_T_CO2, 2) == 2.97


def test_a_failed_run_drops_its_seed_for_every_controller() -> None:
    spec = _spec([("peak", 3600.0, 500.0)])
    kg = {(c, s, "J1"): (100.0 + s + (0 if c == "base" else -10), 0.0) for c in ("base", "new") for s in (1, 2, 3)}
    res = annualise(spec, {"peak": _results(kg, failed=(("new", 2),))})
    assert res.dropped_seeds == [2]
    t = res.tonnage.set_index(["junction_id", "controller"])
    assert t.loc[("J1", "base"), "n_seeds"] == 2 and t.loc[("J1", "new"), "n_pairs"] == 2
    assert t.loc[("J1", "new"), "saved_t_co2_per_yr"] == pytest.approx(10 * 500 / 1000)
    assert t.loc[("J1", "new"), "saved_t_co2_per_yr_ci95_low"] == pytest.approx(5.0)  # no spread: zero width


def test_bundled_year_spec_uses_the_profile() -> None:
    spec = load_spec(ROOT / "scenarios" / "corridor-year.toml")
    hours = profiles.hours_per_year(profiles.default_profile(), 250, 115)
    assert [p.name for p in spec.periods] == list(hours)
    assert {p.name: p.hours_per_year for p in spec.periods} == hours
    assert sum(hours.values()) == pytest.approx(8760)
    assert spec.baseline == "static" and spec.seeds == (1, 2, 3)
    am, pm = (next(p.scenario for p in spec.periods if p.name == n) for n in ("am_peak", "pm_peak"))
    east = [i for i, f in enumerate(am.flows) if f.destination == "J6_E"]
    west = [i for i, f in enumerate(am.flows) if f.destination == "J1_W"]
    # tidal switch: the PM peak sends the peak towards J1_W
    assert pm.flows[east[0]].vph[1] == pytest.approx(am.flows[east[0]].vph[1] * 0.4 / 0.6)
    assert pm.flows[west[0]].vph[1] == pytest.approx(am.flows[west[0]].vph[1] * 0.6 / 0.4)
    assert any(v.emission_class == "HBEFA4/PC_BEV" for v in am.vehicle_types)  # the spec's fleet


BASE = 'controllers = ["static", "max-pressure"]\nseeds = 2\n'
PERIOD = '[[periods]]\nname = "{name}"\nscenario = "corridor"\nhours_per_year = {h}\n'


@pytest.mark.parametrize("body, field", [
    (BASE + PERIOD.format(name="a", h=5000) + PERIOD.format(name="b", h=3785), "periods[*].hours_per_year"),
    (BASE + PERIOD.format(name="a", h=100) + '[fleet]\n[[fleet.classes]]\ngroup = "car"\n'
     'emission_class = "HBEFA4/PC_nonsense"\nshare = 1.0\n', "fleet.classes[0].emission_class"),
    (BASE + PERIOD.format(name="a", h=100) + '[fleet]\n[[fleet.classes]]\ngroup = "car"\n'
     'emission_class = "HBEFA4/PC_BEV"\nshare = 0.7\n', "fleet.classes[*].share"),
    (BASE + PERIOD.format(name="a", h=100) + '[emissions]\ngrid_kg_co2_per_kwh = -0.5\n'
     'grid_factor_source = "x"\ngrid_factor_year = 2024\n', "emissions.grid_kg_co2_per_kwh"),
    ('controllers = ["static", "warp-drive"]\n' + PERIOD.format(name="a", h=100), "controllers[1]"),
    (BASE + 'baseline = "webster"\n' + PERIOD.format(name="a", h=100), "baseline"),
    (BASE + PERIOD.format(name="a", h=-3), "periods[0].hours_per_year"),
    (BASE + PERIOD.format(name="a", h=100) + PERIOD.format(name="a", h=100), "periods[1].name"),
    (BASE + PERIOD.format(name="a", h=100).replace('"corridor"', '"nowhere"'), "periods[0].scenario"),
    (BASE, "periods"),
])
def test_bad_specs_exit_2_with_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         body: str, field: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["tonnage", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"field '{field}'" in err, err
    assert not out.exists()  # nothing written


# ------------------------------------------------------------------------------------- real SUMO


@pytest.mark.sumo
def test_tonnage_run_writes_annual_tables_that_match_the_period_runs(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    corridor_variant(tmp_path / "short.toml", end_s=300, warmup_s=60)
    (tmp_path / "year.toml").write_text(
        'name = "mini-year"\ncontrollers = ["static", "max-pressure"]\nseeds = 2\n'
        '[[periods]]\nname = "peak"\nscenario = "short.toml"\nhours_per_year = 1000\n'
        '[[periods]]\nname = "night"\nscenario = "short.toml"\ndemand_scale = 0.3\nhours_per_year = 3000\n',
        encoding="utf-8")
    out = tmp_path / "out"
    assert main(["tonnage", str(tmp_path / "year.toml"), "--out", str(out), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "saved t/yr [95% CI]" in printed and "max-pressure" in printed
    t = pd.read_parquet(out / "tonnage.parquet")
    assert pd.read_csv(out / "tonnage.csv").shape == t.shape
    assert (out / "tonnage_spec.json").exists() and (out / "tonnage_periods.parquet").exists()
    # recompute J3's annual tonnes from the raw period tables
    window_h = (300 - 60) / 3600
    annual: dict[tuple[str, int], float] = {}
    for period, hours in (("peak", 1000), ("night", 3000)):
        j = pd.read_parquet(out / "periods" / period / "junctions.parquet")
        for _, r in j[j["junction_id"] == "J3"].iterrows():
            annual[r["controller"], r["seed"]] = annual.get((r["controller"], r["seed"]), 0.0) + \
                r["co2_total_kg"] / window_h * hours / 1000
    tt = t.set_index(["junction_id", "controller"])
    for c in ("static", "max-pressure"):
        assert tt.loc[("J3", c), "t_co2_total_per_yr"] == pytest.approx(np.mean([annual[c, s] for s in (1, 2)]))
    saved = [annual["static", s] - annual["max-pressure", s] for s in (1, 2)]
    assert tt.loc[("J3", "max-pressure"), "saved_t_co2_per_yr"] == pytest.approx(np.mean(saved))
    for c in ("static", "max-pressure"):
        for col in ("t_co2_scope1_per_yr", "t_co2_scope2_per_yr", "t_co2_total_per_yr"):
            assert tt.loc[(NETWORK, c), col] == pytest.approx(tt.loc[(ALL_JUNCTIONS, c), col] + tt.loc[(UNATTRIBUTED, c), col])
    # the run store makes a second call reuse the runs: identical numbers
    assert main(["tonnage", str(tmp_path / "year.toml"), "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "tonnage.parquet"), t)


def test_methodology_lists_the_standards_mapping_and_grid_factor_in_code() -> None:
    """docs/methodology.md copies values from code: fail when they drift apart."""
    from mobility.carbon.emissions import CHINA_STANDARDS, DEFAULT_GRID_KG_CO2_PER_KWH, DEFAULT_GRID_YEAR
    from mobility.metrics import HALT_SPEED, MODE_ACCEL

    doc = (Path(__file__).resolve().parents[1] / "docs" / "methodology.md").read_text(encoding="utf-8")
    for (category, fuel, standard), eclass in CHINA_STANDARDS.items():
        assert eclass in doc, (category, fuel, standard)
    assert f"{DEFAULT_GRID_KG_CO2_PER_KWH:g} kg CO2/kWh" in doc and str(DEFAULT_GRID_YEAR) in doc
    assert f"speed < {HALT_SPEED:g} m/s" in doc and f"> {MODE_ACCEL:g} m/s²" in doc
    hours = profiles.hours_per_year(profiles.default_profile())
    for name, h in hours.items():
        assert f"| {name} |" in doc and f"{h:,.0f}" in doc, name
