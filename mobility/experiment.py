"""Runs and comparisons: scenario × controllers × seeds → tidy tables with provenance.

Tables (long and tidy, units in column names):

* ``junctions``: one row per (run, junction), plus one ``(unattributed)`` row per run;
* ``network``: one row per run, network totals (junctions + unattributed);
* ``runs``: provenance per run: scenario and its content hash, controller and parameters, seed,
  backend, SUMO and ``mobility`` versions, wall time, status and error.

Result files are written to a temporary name and renamed into place, so ``--out`` never holds a
half-written file.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .controllers import Controller, make, parse_spec
from .errors import MobilityError, SimulationError
from .metrics import UNATTRIBUTED
from .network import SignalNetwork
from .scenario import Scenario, load_scenario

KEYS = ["run_id", "scenario", "controller", "seed"]


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
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        tables = [("junctions", self.junctions), ("network", self.network), ("runs", self.runs)]
        if not self.corridor.empty:
            tables.append(("corridor", self.corridor))
        tables += [(f"timespace_{k}", v) for k, v in self.timespace.items()]
        if not self.kinematics.empty:
            tables.append(("kinematics", self.kinematics))
        for name, df in tables:
            for ext in ("csv", "parquet"):
                if name in ("timespace_trajectories", "kinematics") and ext == "csv":
                    continue  # large: Parquet only
                target = out / f"{name}.{ext}"
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{ext}.tmp", dir=out)
                os.close(fd)
                try:
                    if ext == "csv":
                        df.to_csv(tmp, index=False, float_format="%.6g")
                    else:
                        df.to_parquet(tmp, index=False)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written.append(target)
        return written

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "ok"]


def run_id(scenario_hash: str, controller: str, params: dict[str, Any], seed: int) -> str:
    """Stable id of a run: same scenario content, controller, parameters, seed and versions."""
    from .sim import sumo_version

    blob = json.dumps([scenario_hash, controller, params, seed, sumo_version(), __version__], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


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
                   timespace=timespace)
    if out is not None:
        res.write(out)
    return res


def _run_one(sc: Scenario, ctrl: Controller, seed: int, backend: str, gui: bool,
             sumo_args: Sequence[str] | str, raise_errors: bool = False, timespace: bool = False) -> Results:
    from .sim import simulate, sumo_version

    params = ctrl.get_params()
    shash = sc.content_hash()
    rid = run_id(shash, ctrl.name, params, seed)
    info: dict[str, Any] = {
        "run_id": rid, "scenario": sc.name, "controller": ctrl.name, "seed": seed,
        "scenario_hash": shash, "scenario_source": str(sc.source),
        "params": json.dumps(params, sort_keys=True, default=str),
        "backend": backend, "sumo_args": sumo_args if isinstance(sumo_args, str) else " ".join(sumo_args),
        "sumo_version": sumo_version(), "mobility_version": __version__,
        "python_version": platform.python_version(),
        "begin_s": sc.begin_s, "end_s": sc.end_s, "warmup_s": sc.warmup_s, "step_length_s": sc.step_length_s,
        "zone_upstream_m": sc.zones.upstream_m, "zone_downstream_m": sc.zones.downstream_m,
        "fleet": sc.fleet, "grid_kg_co2_per_kwh": sc.grid.kg_co2_per_kwh, "grid_factor_source": sc.grid.source,
        "grid_factor_year": sc.grid.year,
        "status": "ok", "error": "",
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mobility-run-") as wd:
        try:
            output = simulate(sc, ctrl, seed, Path(wd), backend=backend, gui=gui, sumo_args=sumo_args,
                              timespace=timespace)
        except (SimulationError, MobilityError) as e:
            if raise_errors:
                raise
            info.update(status="failed", error=str(e), wall_s=time.perf_counter() - t0)
            return Results(pd.DataFrame(columns=KEYS), pd.DataFrame(columns=KEYS), pd.DataFrame([info]))
    info["wall_s"] = time.perf_counter() - t0
    info["sim_wall_s"] = output.stats["sim_wall_s"]
    junctions = output.junctions
    for i, k in enumerate(KEYS):
        junctions.insert(i, k, info[k])
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
    return Results(junctions, network, pd.DataFrame([info]), corridor, output.timespace, kin)


def _worker(args: tuple) -> Results:
    sc, spec, params, seed, backend, sumo_args = args
    try:
        ctrl = make(spec, **params)
    except MobilityError as e:  # already validated in the parent; defensive
        raise SimulationError(str(e)) from None
    return _run_one(sc, ctrl, seed, backend, False, sumo_args)


def split_specs(text: str) -> list[str]:
    """Split ``"a,b(x=1, y=2),c"`` at top-level commas."""
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
            sumo_args: Sequence[str] | str = ()) -> Results:
    """Run every controller over every seed. A failing run is recorded as failed (with its error)
    and does not stop the others. Runs execute in separate processes (``jobs`` at a time)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if not controllers:
        raise MobilityError("--controllers: expected at least one controller name")
    seed_list = [sc.seed + i for i in range(seeds)] if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise MobilityError("--seeds: expected at least one seed")
    specs = []
    for spec in controllers:
        name, params = parse_spec(spec)
        make(spec)  # validate name and parameters before any run starts
        specs.append((name, params))
    SignalNetwork.load(sc.net_file)  # fail fast on a bad network
    tasks = [(sc, name, params, seed, backend, sumo_args) for name, params in specs for seed in seed_list]
    jobs = max(1, min(jobs or (os.cpu_count() or 1), len(tasks)))
    ctx = multiprocessing.get_context("spawn")
    parts: list[Results] = []
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_worker, t) for t in tasks]
        for task, fut in zip(tasks, futures):
            try:
                parts.append(fut.result())
            except Exception as e:  # a worker died (e.g. SUMO crashed the process)
                _, name, params, seed, _, _ = task
                info = {"run_id": "", "scenario": sc.name, "controller": name, "seed": seed,
                        "params": json.dumps(params, sort_keys=True), "status": "failed",
                        "error": f"worker process failed: {type(e).__name__}: {e}"}
                parts.append(Results(pd.DataFrame(columns=KEYS), pd.DataFrame(columns=KEYS), pd.DataFrame([info])))
    def cat(tables: list[pd.DataFrame]) -> pd.DataFrame:
        tables = [t for t in tables if len(t)]
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=KEYS)

    res = Results(cat([p.junctions for p in parts]), cat([p.network for p in parts]),
                  pd.concat([p.runs for p in parts], ignore_index=True), cat([p.corridor for p in parts]))
    kins = [p.kinematics for p in parts if len(p.kinematics)]
    res.kinematics = pd.concat(kins, ignore_index=True) if kins else pd.DataFrame()
    if res.corridor.columns.equals(pd.Index(KEYS)):
        res.corridor = pd.DataFrame()
    if out is not None:
        res.write(out)
    return res


# ------------------------------------------------------------------------------------------
# summaries


SUMMARY_METRICS = ("delay_s_per_veh", "stops_per_veh", "co2_kg")


def summary(res: Results, baseline: str | None = None) -> pd.DataFrame:
    """Per junction and controller: means over seeds of the key metrics, with % change against
    ``baseline`` (default: the first controller)."""
    j = res.junctions
    if j.empty:
        return pd.DataFrame()
    j = j[j["junction_id"] != UNATTRIBUTED]
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
    order = list(dict.fromkeys(n["controller"]))
    base = baseline or order[0]
    cols = ["vehicles_seen", "vehicles_arrived", "delay_s_per_veh", "stops_per_veh", "co2_kg", "co2_idle_kg",
            "teleports", "insertion_backlog_veh"]
    m = n.groupby("controller", sort=False)[cols].mean().reset_index()
    ref = m.set_index("controller").loc[base] if base in set(m["controller"]) else None
    for c in ("delay_s_per_veh", "stops_per_veh", "co2_kg"):
        m[f"{c}_pct"] = 100.0 * (m[c] - ref[c]) / ref[c] if ref is not None else np.nan
    return m


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
        c = res.corridor
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
    failed = res.failed
    for _, r in failed.iterrows():
        lines.append(f"FAILED {r['controller']} seed {r['seed']}: {r['error']}")
    return "\n".join(lines)


def pct_str(v: float) -> str:
    return "      " if not np.isfinite(v) or v == 0 else f"({v:+.1f}%)"
