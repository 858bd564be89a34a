"""Runs and comparisons: scenario × controllers × seeds → tidy tables with provenance.

Tables (long and tidy, units in column names):

* ``junctions``: one row per (run, junction), plus one ``(unattributed)`` row per run;
* ``network``: one row per run, network totals (junctions + unattributed);
* ``runs``: provenance per run: scenario and its content hash, demand scale, controller, variant
  and parameters, seed, backend, SUMO and ``mobility`` versions, wall time, status and error, and
  the run's health (``teleports``, ``insertion_backlog_veh``, ``gridlock``, ``gridlock_reason``).

Every table starts with :data:`KEYS` (the large ``kinematics`` and ``timespace_trajectories`` with
``run_id`` only: join them with ``runs``). ``variant`` is the controller with the parameters given for it
(``max-pressure(min_green_s=5)``; the bare name when none were given); ``demand_scale`` is the
factor applied to the scenario's demand (:meth:`Scenario.scaled`, 1 = as specified).

:func:`compare` is a sweep (:mod:`mobility.sweep`) of one scenario: the same executors, and with
``out`` the same resumable run store. Result files are written to a temporary name and renamed into
place, so ``--out`` never holds a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .controllers import Controller, make
from .errors import MobilityError, SimulationError
from .metrics import UNATTRIBUTED
from .scenario import Scenario, load_scenario

KEYS = ["run_id", "scenario", "demand_scale", "controller", "variant", "seed"]


@dataclass
class Results:
    """Tables of one or more runs."""

    junctions: pd.DataFrame
    network: pd.DataFrame
    runs: pd.DataFrame
    #: per run and direction, for scenarios with a ``corridor`` (see :mod:`mobility.corridor`)
    corridor: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: time–space diagram data of a single run: ``signals`` and ``trajectories`` tables
    timespace: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: vehicle-steps per run, junction, vehicle type, speed and acceleration cell (fleet what-ifs;
    #: see :class:`mobility.metrics.Kinematics`); written as Parquet only
    kinematics: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, out: str | Path) -> list[Path]:
        """Write CSV (for people) and Parquet (for machines) atomically into ``out``."""
        tables = [("junctions", self.junctions), ("network", self.network), ("runs", self.runs)]
        if not self.corridor.empty:
            tables.append(("corridor", self.corridor))
        tables += [(f"timespace_{k}", v) for k, v in self.timespace.items()]
        if not self.kinematics.empty:
            tables.append(("kinematics", self.kinematics))
        return write_tables(out, dict(tables), parquet_only=("timespace_trajectories", "kinematics"))

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "ok"]


def write_tables(out: str | Path, tables: Mapping[str, pd.DataFrame], parquet_only: Sequence[str] = ()) -> list[Path]:
    """Write each table as ``<name>.csv`` (for people; not for names in ``parquet_only``, the large
    ones) and ``<name>.parquet`` (for machines) into ``out``, each through a temporary file renamed
    into place: never a half-written file."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        for ext in ("csv", "parquet"):
            if ext == "csv" and name in parquet_only:
                continue
            target = out / f"{name}.{ext}"
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{ext}.tmp", dir=out)
            os.close(fd)
            try:
                if ext == "csv":
                    df.to_csv(tmp, index=False, float_format="%.6g")
                else:
                    df.to_parquet(tmp, index=False)
                os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(target)
    return written


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def run_id(scenario_hash: str, controller: str, params: dict[str, Any], seed: int, sumo_args: str = "") -> str:
    """Stable id of a run: same scenario content, controller, parameters, seed, extra SUMO options
    and versions (SUMO and ``mobility``) give the same id.

    ``scenario_hash`` is :meth:`Scenario.content_hash`, which covers the demand, so a scaled
    scenario (:meth:`Scenario.scaled`) has its own id; ``params`` are all the controller's
    parameters (:meth:`Controller.get_params`, defaults included)."""
    from .sim import sumo_version

    parts: list[Any] = [scenario_hash, controller, params, seed, sumo_version(), __version__]
    if sumo_args.strip():
        parts.append(" ".join(sumo_args.split()))
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def variant_label(name: str, given: dict[str, Any]) -> str:
    """``max-pressure(min_green_s=5)``: a controller name with the parameters given for it (before a
    deployment or modifiers: ``max-pressure(min_green_s=5)@(J2,J4)``)."""
    if not given:
        return name
    from .controllers.deploy import split_top

    base, *rest = split_top(name, "@+")
    return f"{base[1]}({', '.join(f'{k}={v!r}' for k, v in given.items())})" + "".join(s + p for s, p in rest)


def args_text(sumo_args: Sequence[str] | str) -> str:
    return sumo_args if isinstance(sumo_args, str) else " ".join(sumo_args)


def _controller(spec: str | Controller) -> Controller:
    return spec if isinstance(spec, Controller) else make(spec)


def run(scenario: str | Path | Scenario, controller: str | Controller = "static", seed: int | None = None, *,
        out: str | Path | None = None, backend: str = "libsumo", gui: bool = False,
        sumo_args: Sequence[str] | str = (), timespace: bool = False) -> Results:
    """Simulate one scenario under one controller; raise on failure (use :func:`compare` for
    failure isolation). ``timespace``: record time–space diagram data along the corridor."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    ctrl = _controller(controller)
    res = _run_one(sc, ctrl, sc.seed if seed is None else seed, backend, gui, sumo_args, raise_errors=True,
                   timespace=timespace, variant=ctrl.name)
    if out is not None:
        res.write(out)
    return res


def _run_one(sc: Scenario, ctrl: Controller, seed: int, backend: str, gui: bool,
             sumo_args: Sequence[str] | str, raise_errors: bool = False, timespace: bool = False, *,
             variant: str | None = None, demand_scale: float = 1.0) -> Results:
    """One run with provenance. ``sc`` is the scenario as simulated (already scaled by
    ``demand_scale``); ``variant`` labels the controller and its given parameters."""
    from .sim import simulate, sumo_version
    from .stats import gridlock_reason

    params = ctrl.get_params()
    shash = sc.content_hash()
    sargs = args_text(sumo_args)
    rid = run_id(shash, ctrl.name, params, seed, sargs)
    info: dict[str, Any] = {
        "run_id": rid, "scenario": sc.name, "demand_scale": float(demand_scale), "controller": ctrl.name,
        "variant": variant or ctrl.name, "seed": seed,
        "scenario_hash": shash, "scenario_source": str(sc.source), "net_file": str(sc.net_file),
        "params": json.dumps(params, sort_keys=True, default=str),
        "backend": backend, "sumo_args": sargs,
        "sumo_version": sumo_version(), "mobility_version": __version__,
        "python_version": platform.python_version(), "host": platform.node(),
        "begin_s": sc.begin_s, "end_s": sc.end_s, "warmup_s": sc.warmup_s, "step_length_s": sc.step_length_s,
        "zone_upstream_m": sc.zones.upstream_m, "zone_downstream_m": sc.zones.downstream_m,
        "fleet": sc.fleet, "grid_kg_co2_per_kwh": sc.grid.kg_co2_per_kwh, "grid_factor_source": sc.grid.source,
        "grid_factor_year": sc.grid.year,
        "vehicle_mix": json.dumps([{"id": v.id, "share": v.share, "vclass": v.vclass,
                                    "emission_class": v.emission_class, "group": v.kinematic_group,
                                    "params": dict(v.params)} for v in sc.vehicle_types]),
        "status": "ok", "error": "",
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mobility-run-") as wd:
        try:
            if getattr(getattr(ctrl, "deployment", None), "worst", None) is not None:
                ctrl.static_delay = _static_delay(sc, backend)  # type: ignore[attr-defined]
            # options a controller's modifiers need (e.g. +glosa's device); its name is in the run id
            extra = list(getattr(ctrl, "sumo_options", list)())
            args = [*(shlex.split(sumo_args) if isinstance(sumo_args, str) else sumo_args), *extra]
            output = simulate(sc, ctrl, seed, Path(wd), backend=backend, gui=gui, sumo_args=args,
                              timespace=timespace)
            recovered = _event_recovery(sc, Path(wd))
        except (SimulationError, MobilityError) as e:
            if raise_errors:
                raise
            info.update(status="failed", error=str(e), wall_s=time.perf_counter() - t0)
            return Results(pd.DataFrame(columns=KEYS), pd.DataFrame(columns=KEYS), pd.DataFrame([info]))
    info["wall_s"] = time.perf_counter() - t0
    info["sim_wall_s"] = output.stats["sim_wall_s"]
    net_totals = output.network
    info["vehicles_seen"] = int(net_totals.get("vehicles_seen", 0))
    info["teleports"] = int(net_totals.get("teleports", 0))
    info["insertion_backlog_veh"] = int(net_totals.get("insertion_backlog_veh", 0))
    info["gridlock_reason"] = gridlock_reason(info["teleports"], info["insertion_backlog_veh"], info["vehicles_seen"])
    info["end_s"] = float(net_totals.get("sim_end_s", sc.stop_s))  # with no end time: when the network emptied
    if net_totals.get("stopped_at_cap"):
        info["gridlock_reason"] = "; ".join(filter(None, [info["gridlock_reason"], (
            f"the network was not empty at the safety cap t={info['end_s']:g} s (no end time; "
            f"{net_totals.get('vehicles_running_at_end', 0):.0f} vehicles running, "
            f"{info['insertion_backlog_veh']} waiting)")]))
    info["gridlock"] = bool(info["gridlock_reason"])
    junctions = output.junctions
    for i, k in enumerate(KEYS):
        junctions.insert(i, k, info[k])
    if recovered is not None:  # recovery after each scenario event (mobility.events)
        junctions = junctions.join(recovered, on="junction_id")
    # treated: the controller runs the junction (all, unless deployed at some: @(...))
    treated = getattr(ctrl, "treated", None)
    junctions["treated"] = (junctions["junction_id"] != UNATTRIBUTED) & (
        junctions["junction_id"].isin(treated) if treated is not None else True)
    net = dict(output.network)
    seen = max(net["vehicles_seen"], 1)
    net["delay_s_per_veh"] = net["delay_s"] / seen
    net["stops_per_veh"] = net["stops"] / seen
    network = pd.DataFrame([{**{k: info[k] for k in KEYS}, **net}])
    corridor = output.corridor
    if not corridor.empty:
        for i, k in enumerate(KEYS):
            corridor.insert(i, k, info[k])
    kin = output.kinematics
    if not kin.empty:
        kin.insert(0, "run_id", rid)
    timespace = {}
    for name, table in output.timespace.items():  # trajectories are large: run_id only (join with runs)
        table = table.copy()
        for i, k in enumerate(KEYS if name == "signals" else ["run_id"]):
            table.insert(i, k, info[k])
        timespace[name] = table
    return Results(junctions, network, pd.DataFrame([info]), corridor, timespace, kin)


_STATIC_DELAY: dict[str, dict[str, float]] = {}


def _static_delay(sc: Scenario, backend: str) -> dict[str, float]:
    """Delay (s/veh) per junction of ``sc`` under ``static`` with the scenario's own seed (for
    ``@(worst=...)`` deployments; cached per process by scenario content)."""
    key = sc.content_hash()
    if key not in _STATIC_DELAY:
        from .controllers.static import Static

        res = _run_one(sc, Static(), sc.seed, backend, False, (), raise_errors=True)
        j = res.junctions[res.junctions["junction_id"] != UNATTRIBUTED]
        _STATIC_DELAY[key] = dict(zip(j["junction_id"], j["delay_s_per_veh"].astype(float)))
    return _STATIC_DELAY[key]


def _event_recovery(sc: Scenario, wd: Path) -> pd.DataFrame | None:
    """Per junction, the recovery time after each event of the scenario (None: no events)."""
    if not (sc.incidents or sc.surges):
        return None
    from .events import recovery_columns
    from .network import SignalNetwork
    from .scenario import EVENTS_EDGEDATA

    net = SignalNetwork.load(sc.net_file)
    return recovery_columns(sc, wd / EVENTS_EDGEDATA, net, list(sc.junctions) or net.junction_ids)


def combine(parts: Sequence[Results]) -> Results:
    """Concatenate the tables of several runs (in the given order)."""

    def cat(tables: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
        tables = [t for t in tables if len(t)]
        return pd.concat(tables, ignore_index=True) if tables else empty

    keys = pd.DataFrame(columns=KEYS)
    res = Results(cat([p.junctions for p in parts], keys), cat([p.network for p in parts], keys),
                  cat([p.runs for p in parts], keys), cat([p.corridor for p in parts], pd.DataFrame()),
                  kinematics=cat([p.kinematics for p in parts], pd.DataFrame()))
    names = list(dict.fromkeys(k for p in parts for k in p.timespace))
    res.timespace = {k: cat([p.timespace[k] for p in parts if k in p.timespace], pd.DataFrame()) for k in names}
    return res


def split_specs(text: str) -> list[str]:
    """Split ``"a,b(x=1, y=2),c@(J1,J2)"`` at top-level commas (not inside parentheses)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def compare(scenario: str | Path | Scenario, controllers: Sequence[str], seeds: int | Sequence[int] = 1, *,
            out: str | Path | None = None, jobs: int | None = None, backend: str = "libsumo",
            sumo_args: Sequence[str] | str = (), executor: str = "local", scheduler: str | None = None,
            progress: bool = False) -> Results:
    """Run every controller over every seed: a sweep (:mod:`mobility.sweep`) of one scenario.

    A failing run is recorded as failed (with its error) and does not stop the others. Runs execute
    in separate processes (``jobs`` at a time) on ``executor`` (``local``, ``dask`` with
    ``scheduler``, or ``dask-local``). With ``out``, runs are kept in the run store
    ``out/runs/<run_id>/`` and the tables are written to ``out``: calling again with the same inputs
    reuses finished runs. For a scenario with a corridor, the first seed's run of each controller
    also records time–space data (``timespace_*`` tables)."""
    from .sweep import SweepSpec, run_sweep

    spec = SweepSpec.for_compare(scenario, controllers, seeds, backend=backend, sumo_args=sumo_args)
    return run_sweep(spec, out=out, jobs=jobs, executor=executor, scheduler=scheduler, progress=progress)


# ------------------------------------------------------------------------------------------
# summaries


SUMMARY_METRICS = ("delay_s_per_veh", "stops_per_veh", "co2_kg")


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Label rows by controller variant when a controller appears with several parameter sets."""
    if "variant" not in df.columns or df.groupby("controller")["variant"].nunique().max() <= 1:
        return df
    df = df.copy()
    df["controller"] = df["variant"]
    return df


def summary(res: Results, baseline: str | None = None) -> pd.DataFrame:
    """Per junction and controller: means over seeds of the key metrics, with % change against
    ``baseline`` (default: the first controller)."""
    j = res.junctions
    if j.empty:
        return pd.DataFrame()
    j = _labelled(j[j["junction_id"] != UNATTRIBUTED])
    order = list(dict.fromkeys(j["controller"]))
    base = baseline or order[0]
    cols = ["vehicles", "delay_s_per_veh", "stops_per_veh", "halted_veh_s", "co2_kg", "co2_idle_kg"]
    m = j.groupby(["junction_id", "controller"], sort=False)[cols].mean().reset_index()
    m["seeds"] = j.groupby(["junction_id", "controller"], sort=False).size().values
    from .metrics import level_of_service

    m["los"] = [level_of_service(x) for x in m["delay_s_per_veh"]]
    b = m[m["controller"] == base].set_index("junction_id")
    for c in SUMMARY_METRICS:
        ref = m["junction_id"].map(b[c]) if not b.empty else np.nan
        m[f"{c}_pct"] = 100.0 * (m[c] - ref) / ref
    m["controller"] = pd.Categorical(m["controller"], order)
    return m.sort_values(["junction_id", "controller"]).reset_index(drop=True)


def network_summary(res: Results, baseline: str | None = None) -> pd.DataFrame:
    n = res.network
    if n.empty:
        return pd.DataFrame()
    n = _labelled(n)
    order = list(dict.fromkeys(n["controller"]))
    base = baseline or order[0]
    cols = ["vehicles_seen", "vehicles_arrived", "delay_s_per_veh", "stops_per_veh", "co2_kg", "co2_idle_kg",
            "teleports", "insertion_backlog_veh"]
    m = n.groupby("controller", sort=False)[cols].mean().reset_index()
    ref = m.set_index("controller").loc[base] if base in set(m["controller"]) else None
    for c in ("delay_s_per_veh", "stops_per_veh", "co2_kg"):
        m[f"{c}_pct"] = 100.0 * (m[c] - ref[c]) / ref[c] if ref is not None else np.nan
    return m


def deployment_summary(res: Results) -> pd.DataFrame:
    """For each partial deployment (a controller whose ``treated`` column is true at some junctions
    only, ``NAME@(...)``): every controller's totals over that deployment's treated junctions and
    over its untreated ones — delay (s/veh) and stops (/veh) over the vehicles the zones served, CO2
    (kg) summed — mean over seeds, with % change against the first controller. Empty when no run is a
    partial deployment."""
    j = res.junctions
    if j.empty or "treated" not in j.columns:
        return pd.DataFrame()
    j = _labelled(j[j["junction_id"] != UNATTRIBUTED])
    order = list(dict.fromkeys(j["controller"]))
    rows = []
    for dep in order:
        d = j[j["controller"] == dep]
        treated = sorted(set(d.loc[d["treated"].astype(bool), "junction_id"]))
        if not treated or len(treated) == d["junction_id"].nunique():
            continue
        untreated = sorted(set(d["junction_id"]) - set(treated))
        for group, ids in (("treated", treated), ("untreated", untreated)):
            g = j[j["junction_id"].isin(ids)]
            per_run = g.groupby(["controller", "run_id"], sort=False)[["vehicles", "delay_s", "stops", "co2_kg"]].sum()
            per_run["delay_s_per_veh"] = per_run["delay_s"] / per_run["vehicles"].where(per_run["vehicles"] > 0)
            per_run["stops_per_veh"] = per_run["stops"] / per_run["vehicles"].where(per_run["vehicles"] > 0)
            m = per_run.groupby(level="controller", sort=False)[["delay_s_per_veh", "stops_per_veh", "co2_kg"]].mean()
            m = m.reindex(order)
            for c in order:
                row = {"deployment": dep, "group": group, "junctions": len(ids), "junction_ids": ", ".join(ids),
                       "controller": c, **m.loc[c].to_dict()}
                for k in ("delay_s_per_veh", "stops_per_veh", "co2_kg"):
                    b = m.loc[order[0], k]
                    row[f"{k}_pct"] = 100.0 * (row[k] - b) / b if b else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(res: Results) -> str:
    """The per-junction table a planner reads, plus network totals."""
    s = summary(res)
    lines = []
    if not s.empty:
        controllers = list(s["controller"].cat.categories)
        base = controllers[0]
        lines.append(f"Per junction (mean over seeds; % change against '{base}'):")
        w = min(30, max(10, *(len(str(x)) for x in s["junction_id"]))) + 2
        hdr = f"{'junction':<{w}}{'controller':<18}{'veh':>7}{'delay s/veh LOS':>17}{'stops/veh':>16}{'CO2 kg':>17}{'idle CO2 %':>11}"
        lines.append(hdr)
        lines.append("-" * len(hdr))

        def pct(v: float) -> str:
            return "" if not np.isfinite(v) else f"({v:+.0f}%)"

        for jid, g in s.groupby("junction_id", sort=False):
            jid = jid if len(jid) <= w - 2 else jid[: w - 3] + "…"
            for _, r in g.iterrows():
                idle = 100 * r.co2_idle_kg / r.co2_kg if r.co2_kg else np.nan
                first = r.controller == base
                lines.append(
                    f"{jid:<{w}}{r.controller:<18}{r.vehicles:>7.0f}"
                    f"{r.delay_s_per_veh:>7.1f} {r.los:<1} {'' if first else pct(r.delay_s_per_veh_pct):>7}"
                    f"{r.stops_per_veh:>8.2f} {'' if first else pct(r.stops_per_veh_pct):>7}"
                    f"{r.co2_kg:>9.2f} {'' if first else pct(r.co2_kg_pct):>7}{idle:>10.0f}%"
                )
                jid = ""
    ns = network_summary(res)
    if not ns.empty:
        lines.append("")
        lines.append("Network total (all vehicles, junction zones + unattributed; mean over seeds):")
        for _, r in ns.iterrows():
            lines.append(
                f"  {r.controller:<18} vehicles {r.vehicles_seen:>7.0f}  delay {r.delay_s_per_veh:6.1f} s/veh"
                f" {pct_str(r.delay_s_per_veh_pct)}  stops {r.stops_per_veh:5.2f}/veh {pct_str(r.stops_per_veh_pct)}"
                f"  CO2 {r.co2_kg:8.1f} kg {pct_str(r.co2_kg_pct)}  teleports {r.teleports:.0f}"
                f"  not inserted {r.insertion_backlog_veh:.0f}"
            )
    if not res.corridor.empty:
        c = _labelled(res.corridor)
        cols = ["vehicles", "travel_time_s_mean", "delay_s_per_veh", "stops_per_veh", "co2_g_per_veh"]
        m = c.groupby(["direction", "from_junction", "to_junction", "controller"], sort=False)[cols].mean().reset_index()
        lines.append("")
        lines.append("Along the corridor (vehicles travelling its whole length; mean over seeds):")
        for _, r in m.iterrows():
            lines.append(
                f"  {r.direction:<9}{r.from_junction}→{r.to_junction}  {r.controller:<18} trips {r.vehicles:>6.0f}"
                f"  travel {r.travel_time_s_mean:6.1f} s  delay {r.delay_s_per_veh:6.1f} s/veh"
                f"  stops {r.stops_per_veh:5.2f}/veh  CO2 {r.co2_g_per_veh:6.0f} g/veh"
            )
    ds = deployment_summary(res)
    if not ds.empty:
        lines.append("")
        lines.append("Treated and untreated junctions of each partial deployment (zone totals, mean over seeds):")
        for (dep, group, n, ids), g in ds.groupby(["deployment", "group", "junctions", "junction_ids"], sort=False):
            what = f"{group} ({n} junctions: {ids})" if group == "treated" else f"{group} ({n} junctions)"
            lines.append(f"  {dep}: {what}")
            for _, r in g.iterrows():
                lines.append(f"    {r.controller:<26} delay {r.delay_s_per_veh:6.1f} s/veh {pct_str(r.delay_s_per_veh_pct)}"
                             f"  stops {r.stops_per_veh:5.2f}/veh {pct_str(r.stops_per_veh_pct)}"
                             f"  CO2 {r.co2_kg:8.2f} kg {pct_str(r.co2_kg_pct)}")
    failed = res.failed
    for _, r in failed.iterrows():
        lines.append(f"FAILED {r['controller']} seed {r['seed']}: {r['error']}")
    return "\n".join(lines)


def pct_str(v: float) -> str:
    return "      " if not np.isfinite(v) or v == 0 else f"({v:+.1f}%)"
