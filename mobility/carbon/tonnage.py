"""Annual tonnes of CO2 per junction, and tonnes saved by a controller, with confidence intervals.

A *tonnage spec* (TOML; ``scenarios/corridor-year.toml`` is a commented example) lists the periods
of a year — e.g. weekday AM peak, inter-peak, PM peak, evening, night, and weekend periods — each
with the scenario that represents it (a bundled name or a path, optionally with a demand scale)
and the hours per year it stands for; the controllers, the baseline, the seeds, optionally a fleet
and a grid factor that replace the scenarios' own, and the car-year factor.

Definitions (also in ``docs/methodology.md``):

* **Window**: each period's scenario is simulated as it is defined; its measurement window is
  ``end_s − begin_s − warmup_s`` seconds (``window_h`` hours). Every (period, controller, seed) is
  one run (:func:`mobility.experiments.sweep.compare`); within a period the same seed gives every
  controller the same arrivals and vehicle types.
* **Annual tonnes** of a junction, controller and seed ``s`` (scope 1, scope 2 and total alike)::

      T(c, s) = Σ_periods  kg_p(c, s) / window_h_p × hours_per_year_p / 1000      [t CO2/yr]

  i.e. the window's mean hourly emission stands for every hour of that period in a year.
* **Per controller**: mean of ``T(c, s)`` over seeds with a Student-t 95 % interval
  (``t(0.975, n−1) · sd / √n``, ``n`` seeds).
* **Saved versus the baseline** ``b``: for each seed, ``d(s) = T(b, s) − T(c, s)``: the sum over
  periods of that seed's paired per-period differences (annualised). Reported: mean of ``d`` and its
  Student-t 95 % interval over the ``n`` seeds (``n − 1`` degrees of freedom). The periods of one
  seed are independent simulations, so ``d(s)`` are ``n`` independent draws of the annual saving.
  ``saved_pct = 100 · mean(d) / mean(T(b, ·))`` (its interval scales the same way).
* **Car-year equivalents** = t CO2/yr saved ÷ ``car_year_t_co2`` (default 2.97 t CO2 per car-year,
  the figure implied by a vendor's claim cited in issue #4: 41,600 t/yr ≈ 14,000 cars in Baoding;
  it is the vendor's implied number, not an independent estimate of a car's annual emissions).
* A seed with any failed run (any period, any controller) is dropped from every controller, so
  the pairs stay complete; the printout names dropped seeds. Runs flagged as gridlocked
  (teleports, insertion backlog: :func:`mobility.experiments.stats.gridlock_reason`) are kept and counted in
  ``gridlocked_runs``: their CO2 misses what teleported vehicles would have emitted.

Tables: ``tonnage`` (one row per junction and controller, plus ``(all junctions)``,
``(unattributed)`` and ``(network)``), ``tonnage_periods`` (per period: the window means and each
period's share of the annual figure), and ``tonnage_runs`` (provenance of every run). Each period's
raw results are kept under ``DIR/periods/<name>/`` (resumable run store; ``mobility reevaluate``
can re-evaluate them for another fleet).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .emissions import GridFactor
from ..errors import ControllerError, MobilityError, ScenarioError
from ..fields import is_integer
from ..metrics import UNATTRIBUTED
from ..files import write_tables
from .reevaluate import Fleet, _preset, _Table, parse_fleet_table, parse_grid
from ..scenario import Scenario, VehicleType

#: hours in a leap year: the most a year's periods can add up to
MAX_HOURS_PER_YEAR = 8784.0
#: t CO2 per car-year implied by the Baoding figure in issue #4 (41,600 t/yr ≈ 14,000 cars)
CAR_YEAR_T_CO2 = 41_600 / 14_000
CAR_YEAR_SOURCE = ("vendor's implied figure: Baoding signal optimisation, 300 junctions, 41,600 t CO2/yr "
                   "saved ≈ 14,000 cars (issue #4) → 2.97 t CO2 per car-year; not an independent estimate")
ALL_JUNCTIONS = "(all junctions)"
NETWORK = "(network)"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PeriodSpec:
    """One period of the year: the scenario that represents it and the hours per year it stands for."""

    name: str
    scenario: Scenario  # as simulated (demand scale, fleet and grid factor applied)
    hours_per_year: float
    demand_scale: float = 1.0
    day_type: str = ""
    description: str = ""

    @property
    def window_h(self) -> float:
        """Measurement window of the period's scenario, hours."""
        return (self.scenario.fixed_end_s("a tonnage period") - self.scenario.measure_begin_s) / 3600.0


@dataclass(frozen=True)
class TonnageSpec:
    """A validated tonnage spec (see the module docstring)."""

    name: str
    source: Path
    periods: tuple[PeriodSpec, ...]
    controllers: tuple[str, ...]
    baseline: str
    seeds: tuple[int, ...]
    car_year_t_co2: float = CAR_YEAR_T_CO2
    car_year_source: str = CAR_YEAR_SOURCE
    grid: GridFactor | None = None
    fleet: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": str(self.source), "description": self.description,
            "controllers": list(self.controllers), "baseline": self.baseline, "seeds": list(self.seeds),
            "car_year_t_co2": self.car_year_t_co2, "car_year_source": self.car_year_source,
            "grid": dataclasses.asdict(self.grid) if self.grid else None, "fleet": self.fleet,
            "periods": [{"name": p.name, "scenario": p.scenario.name, "scenario_source": str(p.scenario.source),
                         "demand_scale": p.demand_scale, "hours_per_year": p.hours_per_year,
                         "window_h": p.window_h, "day_type": p.day_type, "description": p.description}
                        for p in self.periods],
        }


# ------------------------------------------------------------------------------------------------
# loading


def apply_fleet(sc: Scenario, fleet: Fleet, where: str) -> Scenario:
    """``sc`` with ``fleet``'s vehicle types. A fleet with group shares (a preset) replaces the
    whole mix; a fleet of classes within groups re-splits those groups of ``sc`` and keeps their
    shares, vClass and vType parameters. The scenario's ``fleet`` field records the preset (as a
    scenario with ``[fleet]`` does) or the complete vehicle-type list, so a run can be re-evaluated
    later (``mobility reevaluate``)."""
    if fleet.group_shares:
        vts = tuple(VehicleType(c.id, fleet.group_shares[c.group] * c.share, fleet.kinematics[c.group][0],
                                c.emission_class, tuple(fleet.kinematics[c.group][1]), c.group)
                    for c in fleet.classes)
    else:
        by_group: dict[str, list[VehicleType]] = {}
        for v in sc.vehicle_types:
            by_group.setdefault(v.kinematic_group, []).append(v)
        for g in fleet.groups():
            if g not in by_group:
                raise ScenarioError(f"{where}: field 'fleet.classes[*].group': '{g}' is not a kinematic group of "
                                    f"scenario {sc.name} (groups: {', '.join(by_group)})")
        out: list[VehicleType] = []
        for g, types in by_group.items():
            if g not in set(fleet.groups()):
                out.extend(types)
                continue
            total = sum(v.share for v in types)
            for c in fleet.within(g):
                vid = c.id if c.id not in {v.id for v in sc.vehicle_types} - {v.id for v in types} else f"{g}_{c.id}"
                out.append(VehicleType(vid, total * c.share, types[0].vclass, c.emission_class, types[0].params, g))
        vts = tuple(out)
    record = fleet.preset_json or json.dumps(
        {"name": fleet.name, "vehicle_types": [{"id": v.id, "share": v.share, "group": v.kinematic_group,
                                                "vclass": v.vclass, "emission_class": v.emission_class,
                                                "params": [list(p) for p in v.params]} for v in vts]},
        ensure_ascii=False)
    return sc.replace(vehicle_types=vts, fleet=record)


def _seeds(value: Any, t: _Table, key: str, first: int = 1) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise t.err(key, f"expected a count N or a list of integers, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 10_000:
            raise t.err(key, f"expected a count of 1 to 10000 seeds, got {value}")
        if first + value - 1 >= 2**31:
            raise t.err(key, f"a count of {value} from seed {first} goes beyond 2**31 - 1; expected integers "
                             "0 <= seed < 2**31")
        return tuple(range(first, first + value))
    if isinstance(value, list) and value and all(is_integer(x) for x in value):
        bad = [x for x in value if not 0 <= x < 2**31]
        if bad:
            raise t.err(key, f"expected integers 0 <= seed < 2**31, got {bad[0]}")
        if len(set(value)) != len(value):
            raise t.err(key, "expected distinct seeds")
        return tuple(value)
    raise t.err(key, f"expected a count N or a non-empty list of integers, got {value!r}")


def load_spec(path: str | Path, *, seeds: int | Sequence[int] | None = None) -> TonnageSpec:
    """Load and validate a tonnage spec; ``seeds`` overrides the spec's. Everything is checked
    before anything runs: periods and their hours, scenarios, fleet, grid factor, controllers and
    baseline. Raises a :class:`~mobility.errors.MobilityError` naming the file and field."""
    from ..controllers import make
    from ..inputs.counts import prepare_demand
    from ..fields import read_toml
    from ..scenario import BUNDLED_DIR, load_scenario

    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: no such tonnage spec")
    data = read_toml(path)
    where = str(path.resolve())
    t = _Table(where, data)
    name = t.get("name", str, path.stem, what="a string")
    description = t.get("description", str, "", what="a string")
    controllers = t.get("controllers", list, what="a list of controller names or specs")
    baseline = t.get("baseline", str, None, what="one of the controllers")
    seeds_raw = t.get("seeds", (int, list), 3, what="a count N or a list of integers")
    car_year = t.number("car_year_t_co2", CAR_YEAR_T_CO2, minimum=0.0, strict=True, what="t CO2 per car-year")
    car_src = t.get("car_year_source", str, CAR_YEAR_SOURCE if "car_year_t_co2" not in data else ...,
                    what="where the car-year factor comes from")
    grid_raw = t.get("emissions", dict, None, what="a table with grid_kg_co2_per_kwh, grid_factor_source, grid_factor_year")
    fleet_raw = t.get("fleet", dict, None, what="a table: preset = NAME and its parameters, or [[fleet.classes]]")
    periods_raw = t.tables("periods", what="a list of [[periods]] tables")
    profile_raw = t.get("profile", dict, None, what="a table: scenario, profile, weekdays, weekend_days, tidal")
    t.finish()
    if bool(periods_raw) == (profile_raw is not None):
        raise t.err("periods", "expected either [[periods]] (explicit periods) or [profile] (a time-of-day "
                               "profile applied to one scenario), not both or neither")

    if not controllers or not all(isinstance(c, str) for c in controllers):
        raise t.err("controllers", f"expected a non-empty list of controller names, got {controllers!r}")
    for i, c in enumerate(controllers):
        try:
            make(c)
        except ControllerError as e:
            raise t.err(f"controllers[{i}]", str(e)) from None
    if len(set(controllers)) != len(controllers):
        raise t.err("controllers", "expected distinct controllers")
    baseline = baseline if baseline is not None else controllers[0]
    if baseline not in controllers:
        raise t.err("baseline", f"expected one of the controllers ({', '.join(controllers)}), got {baseline!r}")
    seed_list = _seeds(seeds_raw, t, "seeds")
    if seeds is not None:
        seed_list = _seeds(seeds if isinstance(seeds, int) else list(seeds), _Table("--seeds", {}), "seeds")

    grid = parse_grid(_Table(where, grid_raw, "emissions.")) if grid_raw is not None else None
    fleet: Fleet | None = None
    if fleet_raw is not None:
        if "preset" in fleet_raw and "classes" not in fleet_raw:
            ft = _Table(where, fleet_raw, "fleet.")
            preset = ft.get("preset", str, what="a fleet preset name")
            fleet = _preset(preset, {k: v for k, v in fleet_raw.items() if k != "preset"}, where, "fleet.")
        elif "classes" in fleet_raw and "preset" not in fleet_raw:
            extra = sorted(set(fleet_raw) - {"classes"})
            if extra:
                raise ScenarioError(f"{where}: field 'fleet.{extra[0]}': unknown field (expected preset or classes)")
            fleet = parse_fleet_table({"classes": fleet_raw["classes"]}, where, "fleet.")
        else:
            raise ScenarioError(f"{where}: field 'fleet': expected either preset = NAME (with its parameters) "
                                "or [[fleet.classes]], not both or neither")

    def finish_scenario(sc: Scenario) -> Scenario:
        if fleet is not None:
            sc = apply_fleet(sc, fleet, where)
        if grid is not None:
            sc = sc.replace(grid=grid)
        return sc

    def scenario_ref(pt: _Table, sref: str) -> str:
        rel = path.parent / sref
        if rel.exists():
            return str(rel)
        if not (BUNDLED_DIR / f"{sref}.toml").exists():
            raise pt.err("scenario", f"{sref!r}: no such file (relative to {path.parent}) and no bundled scenario")
        return sref

    periods: list[PeriodSpec] = []
    if profile_raw is not None:
        periods = _profile_periods(where, path, profile_raw, scenario_ref, finish_scenario)
    scenarios: dict[str, Scenario] = {}
    for pt in periods_raw:
        pname = pt.get("name", str, what="a period name")
        sref = pt.get("scenario", str, what="a bundled scenario name or a path (relative to the spec)")
        scale = pt.number("demand_scale", 1.0, minimum=0.0, strict=True, what="a demand scale factor")
        hours = pt.number("hours_per_year", minimum=0.0, strict=True, what="hours per year")
        day_type = pt.get("day_type", str, "", what="a label (weekday, weekend, …)")
        pdesc = pt.get("description", str, "", what="a string")
        pt.finish()
        if any(q.name == pname for q in periods):
            raise pt.err("name", f"period names must be unique; '{pname}' is used twice")
        target = scenario_ref(pt, sref)
        if target not in scenarios:
            scenarios[target] = prepare_demand(load_scenario(target))
        sc = finish_scenario(scenarios[target].scaled(scale))
        periods.append(PeriodSpec(pname, sc, hours, scale, day_type, pdesc))
    folders: dict[str, str] = {}
    for i, p in enumerate(periods):
        other = folders.setdefault(_safe(p.name), p.name)
        if other != p.name:
            raise t.err(f"periods[{i}].name", f"period names '{other}' and '{p.name}' would share the folder "
                                              f"periods/{_safe(p.name)}; expected names that differ in letters or digits")
    from ..experiments.run import preflight

    for i, p in enumerate(periods):
        try:
            preflight(p.scenario, seeds=seed_list)
        except MobilityError as e:
            raise t.err(f"periods[{i}].scenario", str(e)) from None
    total_h = sum(p.hours_per_year for p in periods)
    if total_h > MAX_HOURS_PER_YEAR + 1e-9:
        raise t.err("periods[*].hours_per_year",
                    f"periods add up to {total_h:g} h, more than a year ({MAX_HOURS_PER_YEAR:g} h in a leap year)")
    return TonnageSpec(name, path.resolve(), tuple(periods), tuple(controllers), baseline, seed_list, car_year,
                       car_src, grid, fleet.to_json() if fleet else "", description)


def _profile_periods(where: str, path: Path, raw: dict[str, Any], scenario_ref: Callable[[_Table, str], str],
                     finish: Callable[[Scenario], Scenario]) -> list[PeriodSpec]:
    """``[profile]``: the periods of a time-of-day profile (:mod:`mobility.inputs.profiles`) applied to one
    scenario, with their hours per year (``weekdays`` × weekday hours + ``weekend_days`` × weekend
    hours)."""
    from ..inputs import profiles
    from ..inputs.counts import prepare_demand
    from ..scenario import load_scenario

    t = _Table(where, raw, "profile.")
    sref = t.get("scenario", str, what="the base scenario (its demand is the profile's base period)")
    pref = t.get("profile", str, "default", what="'default' (the bundled profile) or a profile TOML path")
    weekdays = t.number("weekdays", float(profiles.WEEKDAYS_PER_YEAR), minimum=0.0, what="working days per year")
    weekend = t.number("weekend_days", float(profiles.WEEKEND_DAYS_PER_YEAR), minimum=0.0,
                       what="weekend and holiday days per year")
    tidal_raw = t.get("tidal", dict, None, what="[profile.tidal.inbound] / [profile.tidal.outbound] tables")
    t.finish()
    if weekdays + weekend > 366:
        raise t.err("weekend_days", f"weekdays + weekend_days = {weekdays + weekend:g}, more than 366 days")
    if pref == "default":
        profile = profiles.default_profile()
    else:
        ppath = path.parent / pref
        if not ppath.exists():
            raise t.err("profile", f"{pref!r}: no such profile file (relative to {path.parent}); or 'default'")
        profile = profiles.load_profile(ppath)
    tidal = None
    if tidal_raw is not None:
        tt = _Table(where, tidal_raw, "profile.tidal.")
        sets = {}
        for d in ("inbound", "outbound"):
            st = _Table(where, tt.get(d, dict, {}, what="a table with origins and/or destinations"), f"profile.tidal.{d}.")
            sets[d] = profiles.FlowSet(frozenset(st.get("origins", list, [], what="a list of edge ids")),
                                       frozenset(st.get("destinations", list, [], what="a list of edge ids")))
            st.finish()
        tt.finish()
        tidal = profiles.Tidal(sets["inbound"], sets["outbound"])
    base = prepare_demand(load_scenario(scenario_ref(t, sref)))
    per_scenario = profiles.apply_profile(base, profile, tidal)
    hours = profiles.hours_per_year(profile, weekdays, weekend)
    base_mult = profile.period(profile.base_period).multiplier
    out = []
    for pp in profile.periods:
        if hours[pp.name] <= 0:
            continue
        label = f"{pp.weekday_h:g} h × {weekdays:g} weekdays + {pp.weekend_h:g} h × {weekend:g} weekend days"
        out.append(PeriodSpec(pp.name, finish(per_scenario[pp.name]), hours[pp.name], pp.multiplier / base_mult,
                              label, pp.description + (f" (tidal: {pp.tidal} peak)" if pp.tidal else "")))
    return out


# ------------------------------------------------------------------------------------------------
# running and annualising


@dataclass
class Tonnage:
    """Results of a tonnage spec: ``tonnage`` (per junction and controller), ``periods`` (per
    period), ``runs`` (provenance), ``dropped_seeds`` and the spec."""

    spec: TonnageSpec
    tonnage: pd.DataFrame
    periods: pd.DataFrame
    runs: pd.DataFrame
    dropped_seeds: list[int] = field(default_factory=list)

    def write(self, out: str | Path) -> list[Path]:
        """``tonnage``, ``tonnage_periods``, ``tonnage_runs`` as CSV + Parquet and the resolved
        spec as ``tonnage_spec.json``, written into ``out`` as one unit (:func:`write_tables`)."""
        spec = json.dumps({**self.spec.to_dict(), "dropped_seeds": self.dropped_seeds}, indent=2, ensure_ascii=False)
        return write_tables(out, {"tonnage": self.tonnage, "tonnage_periods": self.periods, "tonnage_runs": self.runs},
                            extra={"tonnage_spec.json": spec})


def _t_interval(x: np.ndarray) -> tuple[float, float, float]:
    from ..experiments.stats import t_interval

    m, lo, hi, _ = t_interval(x, CONFIDENCE)
    return m, lo, hi


SCOPES = (("co2_kg", "scope1"), ("co2_scope2_kg", "scope2"), ("co2_total_kg", "total"))


def _scoped(j: pd.DataFrame) -> pd.DataFrame:
    """Scope columns, defensively: results without scope 2 count it as 0."""
    j = j.copy()
    if "co2_scope2_kg" not in j.columns:
        j["co2_scope2_kg"] = 0.0
    if "co2_total_kg" not in j.columns:
        j["co2_total_kg"] = j["co2_kg"] + j["co2_scope2_kg"]
    return j


def annualise(spec: TonnageSpec, period_results: dict[str, Any]) -> Tonnage:
    """Annual tonnes from each period's :class:`~mobility.experiments.run.Results` (keyed by period name)."""
    label = "variant"
    runs_all, rows = [], []
    for p in spec.periods:
        res = period_results[p.name]
        r = res.runs.copy()
        if label not in r.columns:
            r[label] = r["controller"]
        r.insert(0, "period", p.name)
        runs_all.append(r)
        j = _scoped(res.junctions)
        if label not in j.columns:
            j[label] = j["controller"]
        j = j[j["run_id"].isin(set(r.loc[r["status"] == "ok", "run_id"]))]
        j = j.assign(period=p.name)
        rows.append(j)
    runs = pd.concat(runs_all, ignore_index=True)
    failed = runs[runs["status"] != "ok"]
    dropped = sorted({int(s) for s in failed["seed"]})
    seeds = [s for s in spec.seeds if s not in dropped]
    j = pd.concat(rows, ignore_index=True)
    j = j[j["seed"].isin(seeds)]
    if j.empty:  # every seed has a failed run: nothing to annualise
        return Tonnage(spec, pd.DataFrame(), pd.DataFrame(), runs, dropped)
    junction_order = list(dict.fromkeys(x for x in j["junction_id"] if x != UNATTRIBUTED))
    cols = [c for c, _ in SCOPES]

    # kg in window per (period, variant, seed, junction) incl. aggregate rows
    base = j[["period", label, "seed", "junction_id", *cols]]
    named = base[base["junction_id"] != UNATTRIBUTED]
    agg_all = named.groupby(["period", label, "seed"], sort=False)[cols].sum().reset_index().assign(junction_id=ALL_JUNCTIONS)
    agg_net = base.groupby(["period", label, "seed"], sort=False)[cols].sum().reset_index().assign(junction_id=NETWORK)
    kg = pd.concat([base, agg_all, agg_net], ignore_index=True)
    factor = {p.name: p.hours_per_year / p.window_h / 1000.0 for p in spec.periods}
    for c in cols:
        kg[f"t_{c}"] = kg[c] * kg["period"].map(factor)

    # tonnage_periods: per period, junction and variant, mean over seeds
    per = kg.groupby(["period", "junction_id", label], sort=False).agg(
        n_seeds=("seed", "nunique"), **{f"{c}_window_mean": (c, "mean") for c in cols},
        **{f"t_co2_{scope}_per_yr": (f"t_{c}", "mean") for c, scope in SCOPES}).reset_index()
    year_total = per.groupby(["junction_id", label], sort=False)["t_co2_total_per_yr"].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        per["share_of_year_pct"] = 100.0 * per["t_co2_total_per_yr"] / year_total
    pinfo = {p.name: p for p in spec.periods}
    per.insert(1, "hours_per_year", per["period"].map(lambda n: pinfo[n].hours_per_year))
    per.insert(2, "window_h", per["period"].map(lambda n: pinfo[n].window_h))
    per.insert(3, "demand_scale", per["period"].map(lambda n: pinfo[n].demand_scale))
    per.insert(4, "day_type", per["period"].map(lambda n: pinfo[n].day_type))
    per = per.rename(columns={label: "controller"})

    # annual per (variant, seed, junction): sum over periods (only seeds with every period present)
    annual = kg.groupby([label, "seed", "junction_id"], sort=False).agg(
        n_periods=("period", "nunique"), **{f"t_{c}": (f"t_{c}", "sum") for c in cols}).reset_index()
    annual = annual[annual["n_periods"] == len(spec.periods)]
    gridlocked = runs[(runs["status"] == "ok") & runs.get("gridlock", pd.Series(False, index=runs.index)).fillna(False).astype(bool)]
    glk = gridlocked[gridlocked["seed"].isin(seeds)].groupby(label).size() if label in gridlocked.columns else pd.Series(dtype=int)

    out_rows = []
    jids = [*junction_order, ALL_JUNCTIONS, UNATTRIBUTED, NETWORK]
    b = annual[annual[label] == spec.baseline].set_index(["junction_id", "seed"])
    variants = list(dict.fromkeys([spec.baseline, *annual[label]]))
    for jid in jids:
        for v in variants:
            a = annual[(annual[label] == v) & (annual["junction_id"] == jid)].set_index("seed")
            if a.empty:
                continue
            row: dict[str, Any] = {"junction_id": jid, "controller": v, "baseline": spec.baseline,
                                   "is_baseline": v == spec.baseline, "n_seeds": len(a)}
            for c, scope in SCOPES:
                m, lo, hi = _t_interval(a[f"t_{c}"].to_numpy())
                row[f"t_co2_{scope}_per_yr"] = m
                if scope == "total":
                    row["t_co2_total_per_yr_ci95_low"], row["t_co2_total_per_yr_ci95_high"] = lo, hi
            try:
                bj = b.loc[jid]
            except KeyError:
                bj = None
            common = a.index.intersection(bj.index) if bj is not None else pd.Index([])
            for c, scope in SCOPES:
                d = (bj.loc[common, f"t_{c}"] - a.loc[common, f"t_{c}"]).to_numpy() if len(common) else np.array([])
                m, lo, hi = _t_interval(d)
                suffix = "" if scope == "total" else f"_{scope}"
                row[f"saved_t_co2{suffix}_per_yr"] = m if v != spec.baseline else 0.0
                if scope == "total":
                    bmean = float(bj.loc[common, f"t_{c}"].mean()) if len(common) else math.nan
                    scale = 100.0 / bmean if bmean and math.isfinite(bmean) else math.nan
                    if v == spec.baseline:
                        m = lo = hi = 0.0
                    row["saved_t_co2_per_yr_ci95_low"], row["saved_t_co2_per_yr_ci95_high"] = lo, hi
                    row["saved_pct"] = m * scale
                    row["saved_pct_ci95_low"], row["saved_pct_ci95_high"] = lo * scale, hi * scale
                    row["car_years_saved"] = m / spec.car_year_t_co2
                    row["car_years_saved_ci95_low"] = lo / spec.car_year_t_co2
                    row["car_years_saved_ci95_high"] = hi / spec.car_year_t_co2
                    row["n_pairs"] = len(d)
            row["gridlocked_runs"] = int(glk.get(v, 0))
            out_rows.append(row)
    tonnage = pd.DataFrame(out_rows)
    tonnage["car_year_t_co2"] = spec.car_year_t_co2
    return Tonnage(spec, tonnage, per, runs, dropped)


def run_tonnage(spec: TonnageSpec, *, out: str | Path | None = None, jobs: int | None = None,
                progress: bool = False) -> Tonnage:
    """Run every period × controller × seed (:func:`mobility.experiments.sweep.compare`, period by
    period) and annualise. With ``out``, each period's runs are kept in ``out/periods/<name>/``
    (a resumable run store) and the tonnage tables are written to ``out``."""
    from ..experiments.sweep import compare

    results: dict[str, Any] = {}
    for p in spec.periods:
        pout = Path(out) / "periods" / _safe(p.name) if out is not None else None
        if progress:
            print(f"period {p.name}: {p.scenario.name} × {p.demand_scale:g}, {len(spec.controllers)} controllers × "
                  f"{len(spec.seeds)} seeds", flush=True)
        results[p.name] = compare(p.scenario, list(spec.controllers), list(spec.seeds), out=pout, jobs=jobs,
                                  progress=progress)
    t = annualise(spec, results)
    if out is not None:
        t.write(out)
    return t


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def format_tonnage(t: Tonnage) -> str:
    """The per-junction table: annual t CO2 (scope 1 / 2 / total) per controller, and the saving
    against the baseline with its 95 % CI, % and car-year equivalents."""
    s = t.spec
    df = t.tonnage
    hours = sum(p.hours_per_year for p in s.periods)
    lines = [f"Annual CO2 per junction, t CO2/yr ({len(s.periods)} periods covering {hours:,.0f} h/yr; "
             f"mean over {df['n_seeds'].max() if not df.empty else 0} seeds; saved = baseline '{s.baseline}' − controller, "
             f"95 % CI paired by seed; car-years at {s.car_year_t_co2:.2f} t each):"]
    w = max(16, *(len(str(x)) for x in df["junction_id"])) + 2 if not df.empty else 18
    cw = max(12, *(len(str(x)) for x in df["controller"])) + 2 if not df.empty else 14
    hdr = (f"{'junction':<{w}}{'controller':<{cw}}{'scope 1':>9}{'scope 2':>9}{'total':>9}"
           f"{'saved t/yr [95% CI]':>28}{'saved %':>9}{'car-years':>11}")
    lines += [hdr, "-" * len(hdr)]
    if df.empty:
        lines.append("(no complete seed: every seed has a failed run)")
    for jid, g in (df.groupby("junction_id", sort=False) if not df.empty else []):
        first = True
        for _, r in g.iterrows():
            if r["is_baseline"]:
                saved = "(baseline)"
                pct = cars = ""
            else:
                ci = (f" [{r['saved_t_co2_per_yr_ci95_low']:+.1f}, {r['saved_t_co2_per_yr_ci95_high']:+.1f}]"
                      if math.isfinite(r["saved_t_co2_per_yr_ci95_low"]) else " [n/a]")
                saved = f"{r['saved_t_co2_per_yr']:+.1f}{ci}"
                pct = f"{r['saved_pct']:+.1f}%"
                cars = f"{r['car_years_saved']:+.0f}"
            lines.append(f"{(jid if first else ''):<{w}}{r['controller']:<{cw}}{r['t_co2_scope1_per_yr']:>9.1f}"
                         f"{r['t_co2_scope2_per_yr']:>9.1f}{r['t_co2_total_per_yr']:>9.1f}{saved:>28}{pct:>9}{cars:>11}")
            first = False
    if t.dropped_seeds:
        lines.append(f"\nseeds dropped (a run failed): {', '.join(map(str, t.dropped_seeds))}")
    glk = df.groupby("controller")["gridlocked_runs"].max() if not df.empty else pd.Series(dtype=int)
    if glk.sum():
        lines.append("gridlocked runs kept (teleports/insertion backlog; CO2 of removed vehicles missing): "
                     + ", ".join(f"{c}: {n}" for c, n in glk.items() if n))
    failed = t.runs[t.runs["status"] != "ok"]
    for _, r in failed.iterrows():
        lines.append(f"FAILED {r['period']} {r['controller']} seed {r['seed']}: {r['error']}")
    return "\n".join(lines)
