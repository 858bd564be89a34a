"""Fleet what-ifs without re-simulating: per-junction CO2 of recorded runs for another fleet.

Every run records its *kinematics* (:class:`mobility.metrics.Kinematics`): vehicle-steps per
junction, vehicle type, speed cell (0.5 m/s) and acceleration cell (0.25 m/s²), with each cell's
mean speed and acceleration. Emissions are a function of (emission class, speed, acceleration), so a
different fleet's CO2 follows from those cells and SUMO's emission model of each class, tabulated
once per class by :mod:`mobility.carbon.emission_tables`.

**What a fleet is.** A run's vehicles belong to *kinematic groups* (``car``, ``bus``…: all types of a
group drive identically, see :class:`mobility.scenario.VehicleType`). A fleet what-if changes the
emission classes *within* groups and keeps each group's share of the traffic, so the traffic itself
(every vehicle's speed and acceleration) is unchanged. Accepted fleets (:func:`load_fleet`):

* a preset, ``china-city`` or ``china-city(nev_share=0.6)`` (:data:`mobility.carbon.emissions.PRESETS`);
  its group shares must equal the run's;
* a scenario TOML: its vehicle types (and grid factor); group shares must equal the run's;
* a fleet TOML (see ``docs/methodology.md``)::

      name = "nev-60"
      [fleet]                      # a preset with parameters ...
      preset = "china-city"
      nev_share = 0.6
      # ... or classes within groups (shares within each group sum to 1; groups not listed keep
      # the run's classes)
      [[classes]]
      group = "car"
      emission_class = "HBEFA4/PC_petrol_Euro-6d"
      share = 0.4
      [[classes]]
      group = "car"
      emission_class = "HBEFA4/PC_BEV"
      share = 0.6
      [emissions]                  # optional grid factor (else the run's)
      grid_kg_co2_per_kwh = 0.58
      grid_factor_source = "..."
      grid_factor_year = 2023

**Which recorded vehicle becomes which class.** SUMO draws each vehicle's type from the scenario's
vType distribution with one uniform random number, walking the cumulative shares in the order the
types are written. Inside a group, a type of the run therefore covers an interval of that number,
and so does each class of the new fleet (in the fleet's order). A recorded vehicle-step of type
``t`` is split over the new classes in proportion to the overlap of their intervals with ``t``'s
(:func:`class_split`). A re-simulation with the new fleet and the same seed assigns classes by
exactly those intervals, so the what-if is its expectation given the recorded types; what remains
is which vehicles inside an overlap were drawn (sampling noise, measured in
``docs/methodology.md``).

**Per cell**: rates come from :func:`mobility.carbon.emission_tables.cell_rates` (acceleration spread
uniformly inside the cell around its mean where the model is not linear in acceleration across the
cell; the rate at the cell's mean elsewhere, which is then the same); CO2 (mg) = veh_steps × rate × step length; electricity
only for electric classes (:func:`mobility.carbon.emissions.is_electric`), × the grid factor for scope 2.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from .emission_tables import GRID, CELL_NODES, cell_rates, clamped, class_error, emission_table
from .emissions import GridFactor, PRESETS, is_electric, preset_fleet
from ..errors import MobilityError, ScenarioError
from ..fields import is_number
from ..files import write_tables
from ..fields import Fields, read_toml
from ..metrics import KIN_ACCEL_BIN, KIN_ACCEL_MIN, KIN_SPEED_BIN, UNATTRIBUTED

#: shares of a group's classes must sum to 1 within this tolerance
SHARE_TOL = 1e-6
#: a what-if's group shares must equal the run's within this tolerance (absolute)
GROUP_TOL = 1e-6

#: run columns carried into the output tables (those present)
KEYS = ["run_id", "scenario", "demand_scale", "controller", "variant", "seed"]


# ------------------------------------------------------------------------------------------------
# fleets


@dataclass(frozen=True)
class ClassShare:
    """One emission class inside a kinematic group: ``share`` of the group's vehicles (0–1)."""

    id: str
    group: str
    emission_class: str
    share: float


@dataclass(frozen=True)
class Fleet:
    """Emission classes within kinematic groups, in draw order.

    ``group_shares``: each group's share of all vehicles when the fleet defines it (presets and
    scenarios), else empty (a fleet file's ``[[classes]]`` re-split groups only).
    ``kinematics``: per group, its SUMO vClass and vType parameters, when known (the run's fleet)."""

    name: str
    classes: tuple[ClassShare, ...]
    group_shares: Mapping[str, float] = field(default_factory=dict)
    grid: GridFactor | None = None
    kinematics: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    #: for presets: ``{"preset": NAME, **params}`` as JSON (what a scenario records as its ``fleet``)
    preset_json: str = ""

    def groups(self) -> list[str]:
        return list(dict.fromkeys(c.group for c in self.classes))

    def within(self, group: str) -> list[ClassShare]:
        return [c for c in self.classes if c.group == group]

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "classes": [[c.id, c.group, c.emission_class, c.share] for c in self.classes],
                           "group_shares": dict(self.group_shares)}, ensure_ascii=False)


class _Table(Fields):
    """Typed access to a fleet/tonnage TOML table naming the file and field in every error."""

    hint = "docs/methodology.md"


def parse_grid(t: _Table) -> GridFactor:
    """``[emissions]``: grid factor (kg CO2/kWh, >= 0) with its source and year (both required
    when the factor is given)."""
    factor = t.number("grid_kg_co2_per_kwh", minimum=0.0, what="kg CO2 per kWh")
    source = t.get("grid_factor_source", str, what="where the factor comes from (publication)")
    year = t.get("grid_factor_year", int, what="the year the factor describes")
    t.finish()
    return GridFactor(factor, source, year)


def _check_class(t: _Table, key: str, eclass: str, vclass: str = "passenger") -> None:
    why = class_error(eclass, vclass)
    if why is not None:
        raise t.err(key, f"unknown SUMO emission class {eclass!r} ({why})")


def _preset(name: str, params: dict[str, Any], where: str, field_prefix: str) -> Fleet:
    """A preset as a :class:`Fleet` (group shares included)."""
    t = _Table(where, params, field_prefix)
    for k, v in params.items():
        if not is_number(v):
            raise t.err(k, f"expected a number, got {v!r}")
    if name not in PRESETS:
        raise ScenarioError(f"{where}: field '{field_prefix}preset': unknown fleet preset {name!r}; "
                            f"known: {', '.join(sorted(PRESETS))}")
    try:
        classes = preset_fleet(name, **params)
    except TypeError as e:
        bad = re.findall(r"'(\w+)'", str(e))
        raise t.err(bad[-1] if bad else "preset", "unknown parameter of the preset") from None
    except ValueError as e:
        key, _, msg = str(e).partition(": ")
        raise t.err(key, msg) from None
    label = name + (f"({', '.join(f'{k}={v:g}' for k, v in params.items())})" if params else "")
    groups: dict[str, float] = {}
    for c in classes:
        groups[c.group] = groups.get(c.group, 0.0) + c.share
    out = tuple(ClassShare(c.id, c.group, c.emission_class, c.share / groups[c.group]) for c in classes)
    kin = {c.group: (c.vclass, ()) for c in classes}
    return Fleet(label, out, groups, None, kin, json.dumps({"preset": name, **params}, sort_keys=True, ensure_ascii=False))


def fleet_of_scenario(sc: Any) -> Fleet:
    """The fleet of a :class:`mobility.scenario.Scenario`: its vehicle types in draw order."""
    groups: dict[str, float] = {}
    for v in sc.vehicle_types:
        groups[v.kinematic_group] = groups.get(v.kinematic_group, 0.0) + v.share
    classes = tuple(ClassShare(v.id, v.kinematic_group, v.emission_class,
                               v.share / groups[v.kinematic_group] if groups[v.kinematic_group] > 0 else 0.0)
                    for v in sc.vehicle_types)
    kin = {v.kinematic_group: (v.vclass, tuple(v.params)) for v in sc.vehicle_types}
    return Fleet(sc.name, classes, groups, sc.grid, kin)


def _preset_spec(text: str) -> tuple[str, dict[str, Any]] | None:
    m = re.fullmatch(r"\s*([A-Za-z][\w.-]*)\s*(?:\((.*)\))?\s*", text)
    if not m:
        return None
    params: dict[str, Any] = {}
    if m.group(2) and m.group(2).strip():
        for part in m.group(2).split(","):
            k, eq, v = part.partition("=")
            if not eq:
                raise ScenarioError(f"--fleet {text!r}: expected PRESET(param=value, ...), got {part.strip()!r}")
            try:
                params[k.strip()] = ast.literal_eval(v.strip())
            except (ValueError, SyntaxError):
                raise ScenarioError(f"--fleet {text!r}: parameter {k.strip()!r}: expected a number, got {v.strip()!r}") from None
    return m.group(1), params


def load_fleet(spec: str | Path) -> Fleet:
    """A fleet from a preset spec (``china-city(nev_share=0.6)``), a scenario TOML or a fleet TOML
    (see the module docstring). Raises :class:`ScenarioError` naming the file and field."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise ScenarioError(f"{path}: no such fleet file")
        data = read_toml(path)
        if "network" in data:  # a scenario: its own validation
            from ..scenario import load_scenario

            return fleet_of_scenario(load_scenario(path))
        return parse_fleet_table(data, str(path.resolve()), name_default=path.stem)
    parsed = _preset_spec(str(spec))
    if parsed is None or parsed[0] not in PRESETS:
        raise ScenarioError(f"--fleet {str(spec)!r}: not a file and not a preset; give a fleet or scenario .toml, "
                            f"or one of: {', '.join(sorted(PRESETS))} (e.g. china-city(nev_share=0.6))")
    return _preset(parsed[0], parsed[1], "--fleet", "")


def parse_fleet_table(data: dict[str, Any], where: str, prefix: str = "", name_default: str = "fleet") -> Fleet:
    """A fleet from a TOML table: ``name``, ``[fleet]`` preset or ``[[classes]]``, ``[emissions]``."""
    t = _Table(where, data, prefix)
    name = t.get("name", str, name_default, what="a string")
    t.get("description", str, "", what="a string")
    fleet_t = t.get("fleet", dict, {}, what="a table with preset = NAME and its parameters")
    classes_raw = t.tables("classes", what="a list of [[classes]] tables (group, emission_class, share)")
    grid_raw = t.get("emissions", dict, None, what="a table with grid_kg_co2_per_kwh, grid_factor_source, grid_factor_year")
    t.finish()
    if bool(fleet_t) == bool(classes_raw):
        raise t.err("fleet" if fleet_t else "classes", "expected exactly one of [fleet] (a preset) or [[classes]]")
    grid = parse_grid(_Table(where, grid_raw, f"{prefix}emissions.")) if grid_raw is not None else None
    if fleet_t:
        ft = _Table(where, fleet_t, f"{prefix}fleet.")
        preset = ft.get("preset", str, what=f"a fleet preset name ({', '.join(sorted(PRESETS))})")
        f = _preset(preset, {k: v for k, v in fleet_t.items() if k != "preset"}, where, f"{prefix}fleet.")
        return Fleet(name, f.classes, f.group_shares, grid, f.kinematics, f.preset_json)
    classes: list[ClassShare] = []
    for ct in classes_raw:
        group = ct.get("group", str, what="a kinematic group of the run (e.g. car)")
        eclass = ct.get("emission_class", str, what="a SUMO emission class")
        share = ct.number("share", minimum=0.0, what="a share of the group between 0 and 1")
        cid = ct.get("id", str, f"{group}_{sum(x.group == group for x in classes)}", what="a string")
        ct.finish()
        if share > 1.0:
            raise ct.err("share", f"expected a share of the group between 0 and 1, got {share!r}")
        if any(x.id == cid for x in classes):
            raise ct.err("id", f"class ids must be unique; '{cid}' is used twice")
        _check_class(ct, "emission_class", eclass)
        classes.append(ClassShare(cid, group, eclass, share))
    for g in dict.fromkeys(c.group for c in classes):
        total = sum(c.share for c in classes if c.group == g)
        if abs(total - 1.0) > SHARE_TOL:
            raise t.err("classes[*].share", f"shares of group '{g}' must sum to 1, got {total:g}")
    order = list(dict.fromkeys(c.group for c in classes))
    classes.sort(key=lambda c: order.index(c.group))
    return Fleet(name, tuple(classes), {}, grid, {})


# ------------------------------------------------------------------------------------------------
# mapping recorded types to a new fleet


def class_split(run_fleet: Fleet, new: Fleet) -> dict[str, list[tuple[ClassShare, float]]]:
    """For each vehicle type of the run: the new classes its vehicles become, with the fraction of
    its vehicles (interval overlap, see the module docstring). Groups the new fleet does not list
    keep the run's classes. Raises :class:`MobilityError` if the new fleet changes the kinematic mix."""
    if new.group_shares:
        for g in dict.fromkeys([*run_fleet.group_shares, *new.group_shares]):
            a, b = run_fleet.group_shares.get(g, 0.0), new.group_shares.get(g, 0.0)
            if abs(a - b) > GROUP_TOL:
                raise MobilityError(
                    f"fleet '{new.name}': kinematic group '{g}' is {100 * b:.4g} % of vehicles there but "
                    f"{100 * a:.4g} % in the run; a what-if can only change emission classes within each group "
                    "(re-simulate to change the traffic mix)")
    known = set(run_fleet.groups())
    for g in new.groups():
        if g not in known:
            raise MobilityError(f"fleet '{new.name}': group '{g}' is not a kinematic group of the run "
                                f"(groups: {', '.join(run_fleet.groups())})")
    out: dict[str, list[tuple[ClassShare, float]]] = {}
    for g in run_fleet.groups():
        old = run_fleet.within(g)
        if g not in set(new.groups()):
            for c in old:
                out[c.id] = [(c, 1.0)]
            continue
        nb = new.within(g)
        a_edges = np.concatenate([[0.0], np.cumsum([c.share for c in old])])
        b_edges = np.concatenate([[0.0], np.cumsum([c.share for c in nb])])
        a_edges /= a_edges[-1] if a_edges[-1] > 0 else 1.0
        b_edges /= b_edges[-1] if b_edges[-1] > 0 else 1.0
        for i, c in enumerate(old):
            lo, hi = a_edges[i], a_edges[i + 1]
            width = hi - lo
            parts = []
            for k, d in enumerate(nb):
                ov = min(hi, b_edges[k + 1]) - max(lo, b_edges[k])
                if width > 0 and ov > 0:
                    parts.append((d, ov / width))
                elif width <= 0 and b_edges[k] <= lo < b_edges[k + 1]:
                    parts.append((d, 1.0))  # a type with no share draws no vehicles; defined for completeness
            out[c.id] = parts
    return out


# ------------------------------------------------------------------------------------------------
# evaluation


@dataclass
class WhatIf:
    """Re-evaluated tables: ``junctions`` (one row per run and junction), ``network`` (per run) and
    ``runs`` (provenance)."""

    junctions: pd.DataFrame
    network: pd.DataFrame
    runs: pd.DataFrame

    def write(self, out: str | Path) -> list[Path]:
        """CSV and Parquet of each table, written atomically into ``out``."""
        return write_tables(out, {"junctions": self.junctions, "network": self.network, "runs": self.runs})


def evaluate_cells(kin: pd.DataFrame, split: Mapping[str, Sequence[tuple[ClassShare, float]]],
                   kinematics: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]], group_of: Mapping[str, str],
                   dt_s: np.ndarray, grid_kg_co2_per_kwh: np.ndarray) -> pd.DataFrame:
    """Scope-1/2 CO2 of kinematics rows for the classes in ``split`` (vtype → [(class, fraction)]).

    ``dt_s`` and ``grid_kg_co2_per_kwh``: per row (its run's step length and grid factor).
    Returns one row per input row: co2_mg, fuel_mg, energy_wh (electric classes only),
    co2_scope2_kg, clamped (vehicle-steps outside the lookup grid)."""
    n = len(kin)
    co2 = np.zeros(n)
    fuel = np.zeros(n)
    energy = np.zeros(n)
    vtype = kin["vtype"].to_numpy()
    steps = kin["veh_steps"].to_numpy(dtype=np.float64)
    v = kin["speed_mps_mean"].to_numpy(dtype=np.float64)
    a = kin["accel_mps2_mean"].to_numpy(dtype=np.float64)
    sbin = kin["speed_bin"].to_numpy(dtype=np.int64)
    abin = kin["accel_bin"].to_numpy(dtype=np.int64)
    lo = KIN_ACCEL_MIN + abin * KIN_ACCEL_BIN
    hi = lo + KIN_ACCEL_BIN
    # (emission class, vClass, params) -> [(row indices, weights)]
    work: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[np.ndarray, np.ndarray]]] = {}
    for t in pd.unique(vtype):
        rows = np.flatnonzero(vtype == t)
        if t not in split:
            raise MobilityError(f"kinematics: vehicle type '{t}' is not a type of the run's scenario "
                                f"(types: {', '.join(split)}); pass --scenario with the scenario the run used")
        vclass, params = kinematics[group_of[t]]
        for cls, frac in split[t]:
            if frac > 0:
                work.setdefault((cls.emission_class, vclass, params), []).append((rows, steps[rows] * frac))
    for (eclass, vclass, params), parts in work.items():
        rows = np.concatenate([r for r, _ in parts])
        w = np.concatenate([x for _, x in parts]) * dt_s[rows]
        table = emission_table(eclass, vclass, params)
        linear = table.linear_within(sbin[rows], abin[rows], KIN_SPEED_BIN, KIN_ACCEL_BIN, KIN_ACCEL_MIN)
        rates = cell_rates(table, v[rows], a[rows], lo[rows], hi[rows], linear=linear)
        co2[rows] += w * rates["co2_mg_s"]  # rows are unique within one class: each type maps to it once
        fuel[rows] += w * rates["fuel_mg_s"]
        if is_electric(eclass):
            energy[rows] += w * rates["electricity_wh_s"]
    return pd.DataFrame({"co2_mg": co2, "fuel_mg": fuel, "energy_wh": energy,
                         "co2_scope2_kg": energy / 1e3 * grid_kg_co2_per_kwh,
                         "clamped": np.where(clamped(v, a, GRID), steps, 0.0)})


def _run_fleets(runs: pd.DataFrame, scenario: str | Path | None) -> dict[str, Fleet]:
    """The fleet each run simulated, by run id, from the first of: ``scenario`` (if given); the
    run's ``vehicle_mix`` when it records kinematic groups; the run's ``fleet`` record (a preset or
    a full vehicle-type list, checked against ``vehicle_mix``); the scenario file the run recorded
    (checked against ``vehicle_mix``)."""
    from ..scenario import load_scenario

    cache: dict[str, Fleet] = {}
    out: dict[str, Fleet] = {}
    for _, r in runs.iterrows():
        rid = r["run_id"]
        mix = _vehicle_mix(r)
        if scenario is None and mix and all("group" in v for v in mix):
            out[rid] = _fleet_from_mix(mix, str(r.get("scenario", "")))
            continue
        if scenario is None:
            rec = _fleet_from_record(r.get("fleet"), mix, str(r.get("scenario", "")))
            if rec is not None and (not mix or _same_mix(rec, mix)):
                out[rid] = rec
                continue
        src = str(scenario) if scenario is not None else str(r.get("scenario_source", "") or "")
        if not src:
            raise MobilityError(f"run {rid}: no scenario_source recorded; pass --scenario")
        if src not in cache:
            try:
                cache[src] = fleet_of_scenario(load_scenario(src))
            except ScenarioError as e:
                raise MobilityError(f"run {rid}: cannot load its scenario ({e}); pass --scenario") from None
        f = cache[src]
        if mix and scenario is None and not _same_mix(f, mix):
            raise MobilityError(f"run {rid}: its vehicle mix differs from {src} now; "
                                "pass --scenario with the scenario the run used")
        out[rid] = f
    return out


def _same_mix(f: Fleet, mix: list[dict[str, Any]]) -> bool:
    recorded = [(v["id"], round(float(v["share"]), 9), v["emission_class"]) for v in mix]
    now = [(c.id, round(f.group_shares[c.group] * c.share, 9), c.emission_class) for c in f.classes]
    return recorded == now


def _fleet_from_record(raw: Any, mix: list[dict[str, Any]], name: str) -> Fleet | None:
    """A run's ``fleet`` column: a preset (``{"preset": ..., params}``) or a full vehicle-type list
    (``{"vehicle_types": [...]}``, as :func:`mobility.carbon.tonnage.apply_fleet` records it)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        d = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    if "preset" in d:
        try:
            f = _preset(str(d["preset"]), {k: v for k, v in d.items() if k != "preset"}, "run fleet", "")
        except ScenarioError:
            return None
        vclass = {v["id"]: v.get("vclass") for v in mix}
        kin = {g: (str(next((vclass[c.id] for c in f.within(g) if vclass.get(c.id)), k[0])), k[1])
               for g, k in f.kinematics.items()}
        return Fleet(name, f.classes, f.group_shares, None, kin, f.preset_json)
    if isinstance(d.get("vehicle_types"), list):
        return _fleet_from_mix(d["vehicle_types"], name)
    return None


def _vehicle_mix(r: pd.Series) -> list[dict[str, Any]]:
    raw = r.get("vehicle_mix")
    if not isinstance(raw, str) or not raw:
        return []
    try:
        mix = json.loads(raw)
    except ValueError:
        return []
    return mix if isinstance(mix, list) and all(isinstance(v, dict) and "id" in v for v in mix) else []


def _fleet_from_mix(mix: list[dict[str, Any]], name: str) -> Fleet:
    """A fleet from vehicle-type records (id, share, group, vclass, emission_class, params)."""
    def group(v: dict[str, Any]) -> str:
        return str(v.get("group") or v["id"])

    groups: dict[str, float] = {}
    for v in mix:
        groups[group(v)] = groups.get(group(v), 0.0) + float(v["share"])
    classes = tuple(ClassShare(v["id"], group(v), v["emission_class"],
                               float(v["share"]) / groups[group(v)] if groups[group(v)] > 0 else 0.0) for v in mix)
    kin = {group(v): (v.get("vclass", "passenger"), tuple(tuple(p) for p in v.get("params", []))) for v in mix}
    return Fleet(name, classes, groups, None, kin)


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """``kinematics``, ``runs`` and ``junctions`` tables of a results directory (Parquet)."""
    d = Path(results_dir)
    if not d.is_dir():
        raise MobilityError(f"{d}: no such results directory")
    from ..files import read_results

    out = read_results(d, ("runs", "junctions"), ("kinematics",),
                       missing_hint="expected the output of `mobility run/compare --out`")
    if "kinematics" not in out:
        raise MobilityError(f"{d / 'kinematics.parquet'}: missing; expected the output of `mobility run/compare --out` "
                            "(runs record kinematics since fleets were added; re-run with this version)")
    for name, cols in (("runs", ("run_id",)), ("junctions", ("run_id", "junction_id")),
                       ("kinematics", ("run_id", "junction_id", "vtype", "veh_steps", "speed_mps_mean",
                                       "accel_mps2_mean", "speed_bin"))):
        missing = [c for c in cols if c not in out[name].columns]
        if missing:
            raise MobilityError(f"{d / (name + '.parquet')}: no column {missing[0]!r}; expected the {name} table "
                                "written by `mobility run/compare --out`")
    if out["kinematics"].empty:
        raise MobilityError(f"{d / 'kinematics.parquet'}: empty; nothing to re-evaluate")
    return out


def reevaluate(results: str | Path | Mapping[str, pd.DataFrame], fleet: Fleet | str | Path, *,
               grid_kg_co2_per_kwh: float | None = None, scenario: str | Path | None = None) -> WhatIf:
    """Per-junction CO2 (scope 1, 2, total) of the recorded runs if their vehicles had ``fleet``'s
    emission classes, from the kinematics tables alone (numpy; no SUMO run).

    Grid factor: ``grid_kg_co2_per_kwh`` if given, else the fleet's ``[emissions]``, else each run's.
    Each output row also carries the run as simulated (``sim_co2_total_kg``), the same fleet
    re-evaluated through the lookup (``sim_lookup_co2_total_kg``: the lookup's own error,
    ``lookup_error_pct``) and the change against the simulated run (``change_pct``)."""
    t0 = time.perf_counter()
    if grid_kg_co2_per_kwh is not None and not (math.isfinite(grid_kg_co2_per_kwh) and grid_kg_co2_per_kwh >= 0):
        raise MobilityError(f"--grid-factor: expected kg CO2 per kWh >= 0, got {grid_kg_co2_per_kwh!r}")
    new = fleet if isinstance(fleet, Fleet) else load_fleet(fleet)
    tables = load_results(results) if not isinstance(results, Mapping) else results
    kin, runs, junctions = tables["kinematics"], tables["runs"], tables["junctions"]
    runs = runs[runs["run_id"].isin(set(kin["run_id"]))].drop_duplicates("run_id").reset_index(drop=True)
    fleets = _run_fleets(runs, scenario)
    run_ix = {rid: i for i, rid in enumerate(runs["run_id"])}
    ri = kin["run_id"].map(run_ix).to_numpy()
    if np.isnan(ri.astype(float)).any():
        raise MobilityError("kinematics: rows of runs missing from runs.parquet")
    dt_run = (runs["step_length_s"] if "step_length_s" in runs.columns else pd.Series(np.nan, index=runs.index))
    dt_run = dt_run.astype(float).to_numpy()
    if np.isnan(dt_run).any():
        from ..scenario import load_scenario

        for i, r in runs.iterrows():
            if np.isnan(dt_run[i]):
                dt_run[i] = load_scenario(scenario or r["scenario_source"]).step_length_s
    run_grid = runs["grid_kg_co2_per_kwh"].astype(float).to_numpy() if "grid_kg_co2_per_kwh" in runs.columns \
        else np.zeros(len(runs))
    new_grid_factor = grid_kg_co2_per_kwh if grid_kg_co2_per_kwh is not None else (
        new.grid.kg_co2_per_kwh if new.grid is not None else None)
    new_grid = np.full(len(runs), new_grid_factor) if new_grid_factor is not None else run_grid

    parts_new: list[pd.DataFrame] = []
    parts_sim: list[pd.DataFrame] = []
    for fkey in dict.fromkeys(id(fleets[r]) for r in runs["run_id"]):
        rids = [r for r in runs["run_id"] if id(fleets[r]) == fkey]
        rf = fleets[rids[0]]
        rows = np.flatnonzero(kin["run_id"].isin(set(rids)).to_numpy())
        sub = kin.iloc[rows].reset_index(drop=True)
        group_of = {c.id: c.group for c in rf.classes}
        _check_classes(sub, rf)
        rix = ri[rows].astype(int)
        split = class_split(rf, new)
        identity = {c.id: [(c, 1.0)] for c in rf.classes}
        en = evaluate_cells(sub, split, rf.kinematics, group_of, dt_run[rix], new_grid[rix])
        es = evaluate_cells(sub, identity, rf.kinematics, group_of, dt_run[rix], run_grid[rix])
        for e, acc in ((en, parts_new), (es, parts_sim)):
            e.insert(0, "run_id", sub["run_id"].to_numpy())
            e.insert(1, "junction_id", sub["junction_id"].to_numpy())
            e["veh_steps"] = sub["veh_steps"].to_numpy(dtype=np.int64)
            acc.append(e)
    agg = ["co2_mg", "fuel_mg", "energy_wh", "co2_scope2_kg", "clamped", "veh_steps"]
    new_j = pd.concat(parts_new).groupby(["run_id", "junction_id"], sort=False)[agg].sum().reset_index()
    sim_j = pd.concat(parts_sim).groupby(["run_id", "junction_id"], sort=False)[agg].sum().reset_index()

    info = runs.set_index("run_id")
    keys = [k for k in KEYS if k == "run_id" or k in info.columns]
    out = pd.DataFrame({k: new_j["run_id"].map(info[k]) for k in keys[1:]})
    out.insert(0, "run_id", new_j["run_id"])
    out["junction_id"] = new_j["junction_id"]
    out["fleet"] = new.name
    out["co2_kg"] = new_j["co2_mg"] / 1e6
    out["fuel_kg"] = new_j["fuel_mg"] / 1e6
    out["energy_kwh"] = new_j["energy_wh"] / 1e3
    out["co2_scope2_kg"] = new_j["co2_scope2_kg"]
    out["co2_total_kg"] = out["co2_kg"] + out["co2_scope2_kg"]
    out["grid_kg_co2_per_kwh"] = new_j["run_id"].map(dict(zip(runs["run_id"], new_grid)))
    out["veh_steps"] = new_j["veh_steps"].astype(np.int64)
    out["clamped_veh_steps"] = new_j["clamped"].astype(np.int64)
    sim_lookup = sim_j.set_index(["run_id", "junction_id"])
    key = pd.MultiIndex.from_frame(new_j[["run_id", "junction_id"]])
    out["sim_lookup_co2_total_kg"] = (sim_lookup["co2_mg"] / 1e6 + sim_lookup["co2_scope2_kg"]).reindex(key).to_numpy()
    rec = junctions.set_index(["run_id", "junction_id"])
    total_col = "co2_total_kg" if "co2_total_kg" in rec.columns else "co2_kg"
    out["sim_co2_total_kg"] = rec[total_col].reindex(key).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["lookup_error_pct"] = 100.0 * (out["sim_lookup_co2_total_kg"] / out["sim_co2_total_kg"] - 1.0)
        out["change_pct"] = 100.0 * (out["co2_total_kg"] / out["sim_co2_total_kg"] - 1.0)
    out = _order_junctions(out)

    num = ["co2_kg", "fuel_kg", "energy_kwh", "co2_scope2_kg", "co2_total_kg", "veh_steps", "clamped_veh_steps",
           "sim_lookup_co2_total_kg", "sim_co2_total_kg"]
    net = out.groupby(keys, sort=False)[num].sum().reset_index()
    net.insert(len(keys), "fleet", new.name)
    with np.errstate(divide="ignore", invalid="ignore"):
        net["lookup_error_pct"] = 100.0 * (net["sim_lookup_co2_total_kg"] / net["sim_co2_total_kg"] - 1.0)
        net["change_pct"] = 100.0 * (net["co2_total_kg"] / net["sim_co2_total_kg"] - 1.0)
    from ..tools import sumo_version

    grid_src = ("--grid-factor" if grid_kg_co2_per_kwh is not None else
                f"{new.grid.source} ({new.grid.year})" if new.grid is not None else "each run's grid factor")
    prov = runs[keys].copy()
    prov["fleet"] = new.name
    prov["fleet_json"] = new.to_json()
    prov["grid_kg_co2_per_kwh"] = new_grid
    prov["grid_factor_source"] = grid_src
    prov["sumo_version"] = sumo_version()
    prov["mobility_version"] = __version__
    prov["lookup_grid"] = json.dumps({**GRID.__dict__, "cell_nodes": CELL_NODES})
    prov["cells"] = kin.groupby("run_id").size().reindex(prov["run_id"]).to_numpy()
    prov["wall_s"] = time.perf_counter() - t0
    return WhatIf(out, net, prov)


def _check_classes(kin: pd.DataFrame, rf: Fleet) -> None:
    """The recorded (type, class) pairs must be the scenario's: else the scenario file changed."""
    cls = {c.id: c.emission_class for c in rf.classes}
    pairs = kin[["vtype", "emission_class"]].drop_duplicates()
    for t, ec in pairs.itertuples(index=False):
        if t in cls and cls[t] != ec:
            raise MobilityError(f"kinematics: vehicle type '{t}' was simulated as {ec} but the scenario now says "
                                f"{cls[t]}; pass --scenario with the scenario the run used")


def _order_junctions(df: pd.DataFrame) -> pd.DataFrame:
    last = df["junction_id"] == UNATTRIBUTED
    return pd.concat([df[~last], df[last]]).sort_values(["run_id"], kind="stable").reset_index(drop=True)


def format_whatif(w: WhatIf) -> str:
    """Per junction (mean over runs of each controller): CO2 as simulated, with the what-if fleet,
    change, and the lookup's own error on the simulated fleet."""
    j = w.junctions
    if j.empty:
        return "(no rows)"
    fleet = j["fleet"].iloc[0]
    cols = ["sim_co2_total_kg", "co2_kg", "co2_scope2_kg", "co2_total_kg", "sim_lookup_co2_total_kg"]
    m = j.groupby(["junction_id", "controller"], sort=False)[cols].mean().reset_index()
    m["n"] = j.groupby(["junction_id", "controller"], sort=False).size().to_numpy()
    wj = min(30, max(10, *(len(str(x)) for x in m["junction_id"]))) + 2
    hdr = (f"{'junction':<{wj}}{'controller':<18}{'runs':>5}{'simulated kg':>14}{'what-if scope1':>16}"
           f"{'scope2':>9}{'total kg':>11}{'change':>9}{'lookup err':>12}")
    lines = [f"CO2 per junction (mean over runs) if the fleet were '{fleet}':", hdr, "-" * len(hdr)]
    for _, r in m.iterrows():
        ch = 100 * (r.co2_total_kg / r.sim_co2_total_kg - 1) if r.sim_co2_total_kg else math.nan
        le = 100 * (r.sim_lookup_co2_total_kg / r.sim_co2_total_kg - 1) if r.sim_co2_total_kg else math.nan
        lines.append(f"{str(r.junction_id)[:wj - 2]:<{wj}}{r.controller:<18}{r.n:>5}{r.sim_co2_total_kg:>14.2f}"
                     f"{r.co2_kg:>16.2f}{r.co2_scope2_kg:>9.2f}{r.co2_total_kg:>11.2f}{ch:>+8.1f}%{le:>+11.2f}%")
    n = w.network
    clamped_steps = int(n["clamped_veh_steps"].sum())
    lines.append("")
    lines.append(f"network: simulated {n['sim_co2_total_kg'].mean():.1f} kg, what-if {n['co2_total_kg'].mean():.1f} kg "
                 f"({100 * (n['co2_total_kg'].sum() / n['sim_co2_total_kg'].sum() - 1):+.1f} %); "
                 f"lookup error on the simulated fleet {100 * (n['sim_lookup_co2_total_kg'].sum() / n['sim_co2_total_kg'].sum() - 1):+.2f} %; "
                 f"{int(n['veh_steps'].sum()):,} vehicle-steps in {int(w.runs['cells'].sum()):,} cells"
                 + (f"; {clamped_steps:,} outside the lookup grid (clamped)" if clamped_steps else ""))
    return "\n".join(lines)
