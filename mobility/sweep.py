"""Sweeps: scenarios × controller variants × seeds × demand scales, resumable, on a pool or Dask.

A sweep spec is a TOML file (``scenarios/corridor-sweep.toml`` documents every field)::

    name = "corridor-sweep"
    scenarios = ["corridor"]           # bundled names or paths (relative to the spec)
    seeds = [1, 2, 3]                  # a list, or a count N (the scenario's seed and the N-1 next)
    demand_scales = [0.8, 1.0]         # optional: Scenario.scaled factors (default [1.0])
    baseline = "static"                # optional: what differences are taken against
    [window]                           # optional: override every scenario's time window (s)
    end_s = 1800
    warmup_s = 300
    [[controllers]]
    name = "static"
    [[controllers]]
    name = "max-pressure"
    params = { min_green_s = [5, 10] } # a list is a grid axis; a scalar is fixed

Each (scenario, scale, variant, seed) is one *task* with a stable run id
(:func:`mobility.experiment.run_id`: scenario content incl. demand, controller and all its
parameters, seed, extra SUMO options, SUMO and ``mobility`` versions).

**Run store.** With an output directory ``DIR``, each finished run is kept in
``DIR/runs/<run_id>/`` (Parquet: junctions, network, runs, and corridor, kinematics, timespace_*
when the run has them). A run directory is written under a temporary name and renamed into place,
so it is either complete or absent. Running the same spec again skips the runs already in the
store; a sweep killed at any point (``kill -9``) resumes where it stopped. When all runs are done
the consolidated tables (``DIR/junctions.parquet`` / ``.csv``, ``network``, ``runs``, ``corridor``…)
are rebuilt from the store in spec order, so a resumed sweep ends with the same tables as an
uninterrupted one: identical except the columns in :data:`VOLATILE_COLUMNS` of ``runs`` (wall
times and the host), see :func:`compare_results`.

**Executors.** Every run executes in a fresh Python process (libsumo is one simulation per
process; a crash, even a segfault, fails only that run):

* ``local`` (default): ``jobs`` runs at a time on this machine;
* ``dask``: an existing Dask distributed cluster (``scheduler`` address); each task starts the
  run's process on its worker. Workers need the same ``mobility`` install and the scenario files
  at the same paths (a shared file system); a worker with another SUMO or ``mobility`` version
  would compute other run ids, and its runs fail with that message;
* ``dask-local``: a ``LocalCluster`` of ``jobs`` single-threaded worker processes, to try Dask.

A run that fails (SUMO error, controller exception, a crashed process) is recorded as failed with
its error and does not stop the others. Gridlocked runs are flagged (:mod:`mobility.stats`).
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import dataclasses
import itertools
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from . import __version__
from .controllers import make, parse_spec
from .errors import MobilityError, SimulationError, user_frame
from .experiment import (KEYS, MAX_SEEDS, Results, _pid_alive, _run_one, args_text, check_sumo_args, combine,
                         run_id, variant_label)
from .scenario import Scenario, load_scenario

EXECUTORS = ("local", "dask", "dask-local")

#: columns of the ``runs`` table that differ between two executions of the same run (wall times,
#: the machine): excluded when results are compared (:func:`compare_results`)
VOLATILE_COLUMNS = ("wall_s", "sim_wall_s", "host")

#: tables a run may produce (Parquet files in its store directory)
TABLES = ("junctions", "network", "runs", "corridor", "kinematics", "timespace_signals", "timespace_trajectories",
          "transit", "transit_events")

SPEC_FIELDS = ("name", "description", "scenarios", "controllers", "seeds", "demand_scales", "baseline", "backend",
               "sumo_args", "timespace", "window")


class SweepError(MobilityError):
    """A bad sweep spec or executor setting (one line naming the file and field)."""


# ------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True)
class Variant:
    """A controller with the parameters given for it."""

    controller: str  # registered name or "module:Class", as given
    params: dict[str, Any]  # the parameters given (not the defaults)
    label: str  # e.g. "max-pressure(min_green_s=5)"


@dataclass(frozen=True)
class Task:
    """One run of a sweep."""

    run_id: str
    scenario: Scenario  # as simulated (already scaled)
    demand_scale: float
    variant: Variant
    seed: int
    backend: str = "libsumo"
    sumo_args: str = ""
    timespace: bool = False  # record time–space diagram data (corridor scenarios)
    timeout_s: float | None = None  # wall seconds before the run's process is killed (None: no limit)


#: default per-run timeout (``--run-timeout``): this many wall seconds per simulated second, plus
#: :data:`RUN_TIMEOUT_BASE_S`; a 1-hour simulation gets 2 h 5 min, far beyond any healthy run on this
#: code (the bundled corridor's 75 minutes simulate in well under a minute), short enough that a
#: hanging controller does not stall a sweep for good
RUN_TIMEOUT_PER_SIM_S = 2.0
RUN_TIMEOUT_BASE_S = 300.0


#: timeouts are capped here (30 days; beyond it the operating system's timers overflow)
RUN_TIMEOUT_MAX_S = 30 * 86400.0


def default_run_timeout(sc: Scenario) -> float:
    """The default per-run timeout of ``sc``, wall seconds (see :data:`RUN_TIMEOUT_PER_SIM_S`)."""
    return min(RUN_TIMEOUT_BASE_S + RUN_TIMEOUT_PER_SIM_S * max(sc.end_s - sc.begin_s, 0.0), RUN_TIMEOUT_MAX_S)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: every scenario × demand scale × variant × seed."""

    name: str
    scenarios: tuple[Scenario, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...] | int  # explicit seeds, or a count from each scenario's own seed
    demand_scales: tuple[float, ...] = (1.0,)
    baseline: str | None = None
    backend: str = "libsumo"
    sumo_args: str = ""
    timespace: bool = True  # first seed of each arm of a corridor scenario records time–space data
    source: Path | None = None
    description: str = ""
    _tasks: list[Task] = field(default_factory=list, compare=False, repr=False)

    def seeds_for(self, sc: Scenario) -> list[int]:
        return [sc.seed + i for i in range(self.seeds)] if isinstance(self.seeds, int) else list(self.seeds)

    def tasks(self) -> list[Task]:
        """The runs in spec order (scenario, scale, variant, seed); run ids are unique."""
        if self._tasks:
            return list(self._tasks)
        out: list[Task] = []
        seen: dict[str, str] = {}
        where = f"{self.source}: " if self.source else ""
        for sc0 in self.scenarios:
            seeds = self.seeds_for(sc0)
            for scale in self.demand_scales:
                sc = sc0.scaled(scale)
                shash = sc.content_hash()
                for v in self.variants:
                    ctrl = make(v.controller, **v.params)
                    for seed in seeds:
                        rid = run_id(shash, ctrl, seed, self.sumo_args, self.backend)
                        what = f"{sc.name} ×{scale:g} {v.label} seed {seed}"
                        if rid in seen:
                            raise SweepError(f"{where}'{seen[rid]}' and '{what}' are the same run (same scenario "
                                             "content, parameters and seed); list each once")
                        seen[rid] = what
                        out.append(Task(rid, sc, float(scale), v, seed, self.backend, self.sumo_args,
                                        self.timespace and bool(sc.corridor) and seed == seeds[0]))
        self._tasks.extend(out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """What ``DIR/sweep.json`` records."""
        return {
            "name": self.name, "description": self.description, "source": str(self.source or ""),
            "scenarios": [{"name": s.name, "source": str(s.source), "content_hash": s.content_hash()}
                          for s in self.scenarios],
            "controllers": [{"label": v.label, "controller": v.controller, "params": v.params} for v in self.variants],
            "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
            "demand_scales": list(self.demand_scales), "baseline": self.baseline, "backend": self.backend,
            "sumo_args": self.sumo_args, "timespace": self.timespace,
            "run_ids": [t.run_id for t in self.tasks()], "mobility_version": __version__,
        }

    @classmethod
    def for_compare(cls, scenario: str | Path | Scenario, controllers: Sequence[str],
                    seeds: int | Sequence[int] = 1, *, backend: str = "libsumo",
                    sumo_args: Sequence[str] | str = ()) -> SweepSpec:
        """The sweep behind :func:`mobility.experiment.compare`: one scenario, scale 1."""
        from .experiment import check_seed, preflight

        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if not controllers:
            raise MobilityError("--controllers: expected at least one controller name")
        if isinstance(seeds, int):
            if not 1 <= seeds <= MAX_SEEDS:
                raise MobilityError(f"--seeds: expected a count of 1 to {MAX_SEEDS} seeds, got {seeds}")
            seed_spec: tuple[int, ...] | int = seeds
            if sc.seed + seeds - 1 >= 2**31:
                raise MobilityError(f"--seeds: a count of {seeds} from the scenario's seed {sc.seed} goes beyond 2**31 - 1; "
                                    "expected integers 0 <= seed < 2**31")
            run_seeds = [sc.seed + i for i in range(seeds)]
        else:
            seed_spec = tuple(seeds)
            if not seed_spec:
                raise MobilityError("--seeds: expected at least one seed")
            for s in seed_spec:
                check_seed(s, "--seeds: expected integers 0 <= seed < 2**31; seed")
            if len(set(seed_spec)) != len(seed_spec):
                raise MobilityError(f"--seeds: seeds must be distinct, got {list(seed_spec)}")
            run_seeds = list(seed_spec)
        variants = []
        for spec in controllers:
            name, params = parse_spec(spec)
            ctrl = make(spec)  # validate name and parameters before any run starts
            variants.append(Variant(name, params, variant_label(ctrl.name, params)))
        _check_labels(variants, "--controllers")
        if backend not in ("libsumo", "traci"):
            raise MobilityError(f"--backend: expected libsumo or traci, got {backend!r}")
        preflight(sc, sumo_args=sumo_args, seeds=run_seeds)  # network, classes, routes, seeds, SUMO options
        return cls(name=sc.name, scenarios=(sc,), variants=tuple(variants), seeds=seed_spec,
                   backend=backend, sumo_args=args_text(sumo_args))


def _check_labels(variants: Sequence[Variant], where: str) -> None:
    seen: set[str] = set()
    for v in variants:
        if v.label in seen:
            raise SweepError(f"{where}: controller '{v.label}' listed twice")
        seen.add(v.label)


def load_spec(path: str | Path) -> SweepSpec:
    """Load and validate a sweep spec (TOML). Every error is one line naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such file; expected a sweep spec (.toml), see scenarios/corridor-sweep.toml")
    path = path.resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: malformed TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SweepError(f"{path}: cannot read: {e}") from None

    def err(key: str, msg: str) -> SweepError:
        return SweepError(f"{path}: field '{key}': {msg}")

    if "network" in data and "scenarios" not in data:
        raise SweepError(f"{path}: this is a scenario, not a sweep spec; a sweep spec lists scenarios = [...] and "
                         "[[controllers]] (see scenarios/corridor-sweep.toml), or use `mobility compare`")
    for key in data:
        if key not in SPEC_FIELDS:
            raise err(key, f"unknown field; expected one of {', '.join(SPEC_FIELDS)}")

    def text(key: str, default: str) -> str:
        v = data.get(key, default)
        if not isinstance(v, str):
            raise err(key, f"expected a string, got {v!r}")
        return v

    name = text("name", path.stem)
    if not name.strip() or any(c in name for c in "/\\\0") or name.strip() in (".", ".."):
        raise err("name", f"expected a name (the default output directory is results/<name>), not a path: got "
                          f"{name!r}; use --out for another place")
    description = text("description", "")
    backend = text("backend", "libsumo")
    if backend not in ("libsumo", "traci"):
        raise err("backend", f"expected 'libsumo' or 'traci', got {backend!r}")
    sumo_args = data.get("sumo_args", "")
    if isinstance(sumo_args, list) and all(isinstance(a, str) for a in sumo_args):
        sumo_args = " ".join(sumo_args)
    if not isinstance(sumo_args, str):
        raise err("sumo_args", f"expected a string or a list of strings, got {sumo_args!r}")
    timespace = data.get("timespace", True)
    if not isinstance(timespace, bool):
        raise err("timespace", f"expected true or false, got {timespace!r}")

    # scenarios (+ optional window override)
    raw = data.get("scenarios")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise err("scenarios", f"expected a non-empty list of scenario names or paths, got {raw!r}")
    window = data.get("window", {})
    if not isinstance(window, dict):
        raise err("window", f"expected a table with end_s and/or warmup_s, got {window!r}")
    for k, v in window.items():
        if k not in ("begin_s", "end_s", "warmup_s"):
            raise err(f"window.{k}", "unknown field; expected begin_s, end_s or warmup_s")
        if k == "end_s" and v == "empty":  # no end time: until the network is empty
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise err(f"window.{k}", f"expected a non-negative number of seconds, got {v!r}")
    scenarios: list[Scenario] = []
    for i, ref in enumerate(raw):
        local = (path.parent / ref)
        try:
            sc = load_scenario(local if local.exists() else ref)
        except MobilityError as e:
            raise err(f"scenarios[{i}]", str(e)) from None
        if window:
            w = {k: float(v) for k, v in window.items() if v != "empty"}
            begin = w.get("begin_s", sc.begin_s)
            end = None if window.get("end_s") == "empty" else w.get("end_s", sc.end_s)
            warm = w.get("warmup_s", sc.warmup_s)
            if end is not None and (end <= begin or begin + warm >= end):  # None: until the network is empty
                raise err("window", f"scenario '{sc.name}': expected begin_s + warmup_s < end_s, got "
                                    f"{begin:g} + {warm:g} >= {end:g}")
            sc = sc.replace(warmup_s=warm).with_window(begin, end, until_empty=end is None)
        if any(s.name == sc.name for s in scenarios):
            raise err(f"scenarios[{i}]", f"scenario name '{sc.name}' appears twice; scenarios must have distinct names")
        scenarios.append(sc)

    # seeds
    seeds = data.get("seeds")
    if isinstance(seeds, bool) or seeds is None:
        raise err("seeds", "missing; expected a list of integer seeds or a count")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise err("seeds", f"expected a count of 1 to {MAX_SEEDS} seeds, got {seeds}")
        seed_spec: tuple[int, ...] | int = seeds
    elif isinstance(seeds, list):
        if not seeds:
            raise err("seeds", "expected at least one seed, got an empty list")
        if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds):
            raise err("seeds", f"expected integers 0 <= seed < 2**31, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise err("seeds", f"seeds must be distinct, got {seeds!r}")
        seed_spec = tuple(seeds)
    else:
        raise err("seeds", f"expected a list of integer seeds or a count, got {seeds!r}")

    # demand scales
    scales = data.get("demand_scales", [1.0])
    if not isinstance(scales, list) or not scales:
        raise err("demand_scales", f"expected a non-empty list of positive factors, got {scales!r}")
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (math.isfinite(s) and s > 0):
            raise err("demand_scales", f"expected positive numbers, got {s!r}")
    if len(set(scales)) != len(scales):
        raise err("demand_scales", f"factors must be distinct, got {scales!r}")

    # controllers × parameter grids
    ctrls = data.get("controllers")
    if not isinstance(ctrls, list) or not ctrls:
        raise err("controllers", "missing or empty; expected [[controllers]] tables (name, params) or a list of "
                                 "controller specs")
    variants: list[Variant] = []
    for i, c in enumerate(ctrls):
        key = f"controllers[{i}]"
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict):
            raise err(key, f"expected a table with name and params, or a spec string, got {c!r}")
        for k in c:
            if k not in ("name", "params"):
                raise err(f"{key}.{k}", "unknown field; expected name or params")
        cname = c.get("name")
        if not isinstance(cname, str) or not cname.strip():
            raise err(f"{key}.name", f"expected a controller name, got {cname!r}")
        grid = c.get("params", {})
        if not isinstance(grid, dict):
            raise err(f"{key}.params", f"expected a table of parameter = value or [values], got {grid!r}")
        try:
            base_name, spec_params = parse_spec(cname)
        except MobilityError as e:
            raise err(f"{key}.name", str(e)) from None
        axes: list[tuple[str, list[Any]]] = []
        for k, v in grid.items():
            values = v if isinstance(v, list) else [v]
            if not values:
                raise err(f"{key}.params.{k}", "expected at least one value, got an empty list")
            axes.append((k, values))
        for combo in itertools.product(*(vals for _, vals in axes)):
            params = {**spec_params, **dict(zip((k for k, _ in axes), combo))}
            try:
                ctrl = make(base_name, **params)
            except MobilityError as e:
                raise err(key, str(e)) from None
            variants.append(Variant(base_name, params, variant_label(ctrl.name, params)))
    _check_labels(variants, f"{path}: field 'controllers'")
    baseline = data.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str):
            raise err("baseline", f"expected a controller label, got {baseline!r}")
        from .stats import pick_baseline

        try:
            pick_baseline([v.label for v in variants], [make(v.controller, **v.params).name for v in variants],
                          baseline)
        except ValueError as e:
            raise err("baseline", str(e)) from None
    from .experiment import preflight

    try:
        check_sumo_args(sumo_args, f"{path}: field 'sumo_args'")
    except MobilityError as e:
        raise SweepError(str(e)) from None
    for i, sc in enumerate(scenarios):
        try:
            preflight(sc)
        except MobilityError as e:
            raise err(f"scenarios[{i}]", str(e)) from None
        if isinstance(seed_spec, int) and sc.seed + seed_spec - 1 >= 2**31:
            raise err("seeds", f"a count of {seed_spec} from scenario '{sc.name}''s seed {sc.seed} goes beyond "
                               "2**31 - 1; expected integers 0 <= seed < 2**31")
    spec = SweepSpec(name=name, scenarios=tuple(scenarios), variants=tuple(variants), seeds=seed_spec,
                     demand_scales=tuple(float(s) for s in scales), baseline=baseline, backend=backend,
                     sumo_args=sumo_args, timespace=timespace, source=path, description=description)
    spec.tasks()  # validates that runs are distinct
    return spec


# ------------------------------------------------------------------------------------------
# running one task (in a worker process)


def failed_results(task: Task, error: str, error_traceback: str = "") -> Results:
    """The record of a run that did not produce results (``error_traceback``: the full traceback)."""
    info = {"run_id": task.run_id, "scenario": task.scenario.name, "demand_scale": task.demand_scale,
            "controller": task.variant.controller, "variant": task.variant.label, "seed": task.seed,
            "scenario_source": str(task.scenario.source), "net_file": str(task.scenario.net_file),
            "params": json.dumps(task.variant.params, sort_keys=True, default=str), "backend": task.backend,
            "sumo_args": task.sumo_args, "mobility_version": __version__, "status": "failed", "error": error,
            "error_traceback": error_traceback}
    try:
        info["controller"] = make(task.variant.controller, **task.variant.params).name
    except MobilityError:
        pass
    empty = pd.DataFrame(columns=KEYS)
    return Results(empty, empty.copy(), pd.DataFrame([info]))


def execute_task(task: Task) -> Results:
    """Simulate one task in this process; any failure becomes a failed record."""
    try:
        ctrl = make(task.variant.controller, **task.variant.params)
        res = _run_one(task.scenario, ctrl, task.seed, task.backend, False, task.sumo_args,
                       timespace=task.timespace, variant=task.variant.label, demand_scale=task.demand_scale)
    except (MobilityError, SimulationError) as e:
        return failed_results(task, str(e), getattr(e, "traceback", "") or traceback.format_exc())
    except Exception as e:  # a bug or an unexpected SUMO error: fail this run only
        where = user_frame(e)
        return failed_results(task, f"{type(e).__name__}: {e}".splitlines()[0] + (f" ({where})" if where else ""),
                              traceback.format_exc())
    rid = str(res.runs["run_id"].iloc[0])
    if rid != task.run_id:
        return failed_results(task, f"the worker computed run id {rid}, the sweep {task.run_id}: the worker has "
                                    "another SUMO or mobility version or other input files")
    return res


_WORKER_CODE = "from mobility.sweep import _worker_main; _worker_main()"


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # the sweep was killed: do not finish a run nobody will read
            os._exit(3)
        time.sleep(1.0)


def _worker_main() -> None:
    """Entry point of a run's process: a pickled :class:`Task` on stdin, pickled :class:`Results`
    on stdout. Anything else written to stdout (also by SUMO) goes to stderr."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    task = pickle.load(sys.stdin.buffer)
    res = execute_task(task)
    pickle.dump(res, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def run_in_subprocess(task: Task) -> Results:
    """Run ``task`` in a fresh Python process (the unit of work of every executor)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # e.g. user controller modules
    try:
        # -P: the working directory is not put on the path (a traci.py there is never imported)
        proc = subprocess.run([sys.executable, "-P", "-c", _WORKER_CODE], input=pickle.dumps(task), capture_output=True,
                              env=env, check=False, timeout=task.timeout_s)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed the process
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-60:]
        return failed_results(task, f"timed out: the run took longer than {task.timeout_s:g} s (wall) and was "
                                    "stopped; raise --run-timeout if it is just slow", "\n".join(tail))
    except OSError as e:
        return failed_results(task, f"cannot start the run's process: {e}")
    if proc.returncode == 0 and proc.stdout:
        try:
            return pickle.loads(proc.stdout)
        except Exception as e:  # truncated output
            return failed_results(task, f"unreadable result from the run's process: {type(e).__name__}: {e}")
    lines = [x for x in proc.stderr.decode(errors="replace").splitlines() if x.strip()]
    if proc.returncode < 0:
        try:
            why = f"killed by signal {signal.Signals(-proc.returncode).name}"
        except ValueError:
            why = f"killed by signal {-proc.returncode}"
    else:
        why = f"exited with status {proc.returncode}"
    return failed_results(task, f"the run's process {why}" + (f": {lines[-1].strip()}" if lines else ""),
                          "\n".join(lines[-60:]))


# ------------------------------------------------------------------------------------------
# executors


class Executor:
    """Runs tasks; yields (task, results) as they finish."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Results]]:
        if not tasks:
            return
        pool = cf.ThreadPoolExecutor(max_workers=min(self.jobs, len(tasks)), thread_name_prefix="mobility-run")
        try:
            futures = {pool.submit(run_in_subprocess, t): t for t in tasks}
            for f in cf.as_completed(futures):
                yield futures[f], f.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pass


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster; each starts the run's own process on its worker."""

    def __init__(self, jobs: int, scheduler: str | None) -> None:
        super().__init__(jobs)
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            self.name = "dask-local"
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            self.name = "dask"
            try:
                self.client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError, ValueError) as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise SweepError(f"--scheduler {scheduler}: cannot reach a Dask scheduler ({first}); start one with "
                                 "`dask scheduler` and workers with `dask worker ADDRESS`, or use --executor "
                                 "dask-local") from None

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Results]]:
        from distributed import as_completed

        futures = {self.client.submit(run_in_subprocess, t, key=f"mobility-run-{t.run_id}-{uuid.uuid4().hex[:8]}",
                                      pure=False): t for t in tasks}
        try:
            for f in as_completed(list(futures)):
                t = futures[f]
                try:
                    res = f.result()
                except Exception as e:  # the worker died (after Dask's retries)
                    res = failed_results(t, f"Dask task failed: {type(e).__name__}: {e}".splitlines()[0])
                yield t, res
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@contextmanager
def open_executor(executor: str, jobs: int, scheduler: str | None = None) -> Iterator[Executor]:
    """An executor, connected (raises :class:`SweepError` before anything runs if it cannot be)."""
    if executor not in EXECUTORS:
        raise SweepError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs < 1:
        raise SweepError(f"--jobs: expected at least 1, got {jobs}")
    if executor == "dask" and not scheduler:
        raise SweepError("--executor dask: expected --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if executor != "dask" and scheduler:
        raise SweepError(f"--scheduler: only used with --executor dask (got --executor {executor})")
    ex: Executor = Executor(jobs) if executor == "local" else DaskExecutor(jobs, scheduler if executor == "dask" else None)
    try:
        yield ex
    finally:
        ex.close()


# ------------------------------------------------------------------------------------------
# the run store


#: the lock file of an output directory (kept: removing it would let two processes hold a lock each)
LOCK_FILE = ".mobility.lock"


@contextmanager
def out_lock(root: Path, *, wait: bool = False, progress: bool = False) -> Iterator[None]:
    """Hold ``root``'s lock (``fcntl.flock`` on ``root/.mobility.lock``, which records the holder's
    pid) while writing it. Held by another process: a one-line :class:`SweepError` naming its pid,
    or, with ``wait``, wait for it. The operating system releases the lock when a holder dies."""
    root.mkdir(parents=True, exist_ok=True)
    f = open(root / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            if not wait:
                raise SweepError(f"{root}: in use by another mobility sweep or compare (pid {holder}); wait for it to "
                                 "finish, pass --wait, or choose another --out") from None
            if progress:
                print(f"{root}: waiting for pid {holder} to finish with it", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()


class RunStore:
    """``DIR/runs/<run_id>/`` with one Parquet file per table of the run; see the module doc."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"

    def path(self, rid: str) -> Path:
        return self.runs_dir / rid

    def status(self, rid: str) -> str | None:
        """``"ok"`` / ``"failed"`` for a stored run, ``None`` if it is not in the store."""
        f = self.path(rid) / "runs.parquet"
        if not f.exists():
            return None
        try:
            return str(pd.read_parquet(f, columns=["status"])["status"].iloc[0])
        except Exception:  # unreadable: treat as absent (it will be re-run and replaced)
            return None

    def readable(self, rid: str) -> bool:
        """Whether the run's tables are all there and readable (a truncated or damaged Parquet file
        means the run is not finished: it is run again and replaced)."""
        import pyarrow.parquet as pq

        d = self.path(rid)
        if not all((d / f"{name}.parquet").is_file() for name in ("junctions", "network", "runs")):
            return False
        try:
            for f in d.glob("*.parquet"):
                pq.read_metadata(f)
        except Exception:  # noqa: BLE001 - ArrowInvalid, OSError...
            return False
        return True

    def finished(self, task: Task, retry_failed: bool = False) -> bool:
        st = self.status(task.run_id)
        if st is None or (retry_failed and st != "ok") or not self.readable(task.run_id):
            return False
        if st == "ok" and task.timespace and not (self.path(task.run_id) / "timespace_signals.parquet").exists():
            return False  # stored by a sweep that did not record time–space data for it
        return True

    def prepare(self) -> None:
        """Create the store; remove temporary directories left by killed sweeps and complete or
        discard their unfinished final writes (:func:`mobility.experiment.finish_pending_writes`)."""
        from .experiment import finish_pending_writes

        self.runs_dir.mkdir(parents=True, exist_ok=True)
        finish_pending_writes(self.root)
        for d in self.runs_dir.glob(".*-*"):
            parts = d.name.split("-")
            if d.is_dir() and len(parts) >= 3 and parts[2].isdigit() and not _pid_alive(int(parts[2])):
                shutil.rmtree(d, ignore_errors=True)

    def save(self, res: Results) -> None:
        """Store one run's tables: written to a temporary directory, then renamed into place."""
        rid = str(res.runs["run_id"].iloc[0])
        tmp = self.runs_dir / f".tmp-{rid}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            tables = {"junctions": res.junctions, "network": res.network, "runs": res.runs, "corridor": res.corridor,
                      "kinematics": res.kinematics, "transit": res.transit, "transit_events": res.transit_events,
                      **{f"timespace_{k}": v for k, v in res.timespace.items()}}
            for name, df in tables.items():
                if name in ("junctions", "network", "runs") or not df.empty:
                    df.to_parquet(tmp / f"{name}.parquet", index=False)
            final = self.path(rid)
            if final.exists():  # replacing a failed run, or one without time–space data
                old = self.runs_dir / f".old-{rid}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def load(self, task: Task) -> Results:
        """A stored run's tables, labelled as ``task`` (variant label and scale come from the spec)."""
        d = self.path(task.run_id)
        t = {p.stem: pd.read_parquet(p) for p in sorted(d.glob("*.parquet")) if p.stem in TABLES}
        for df in t.values():
            if "variant" in df.columns:
                df["variant"] = task.variant.label
            if "demand_scale" in df.columns:
                df["demand_scale"] = task.demand_scale
        return Results(t["junctions"], t["network"], t["runs"], t.get("corridor", pd.DataFrame()),
                       {k.removeprefix("timespace_"): v for k, v in t.items() if k.startswith("timespace_")},
                       t.get("kinematics", pd.DataFrame()), t.get("transit", pd.DataFrame()),
                       t.get("transit_events", pd.DataFrame()))


# ------------------------------------------------------------------------------------------
# progress


def _clock(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """One status line on stderr: runs done/failed/remaining, elapsed time and ETA.

    On a terminal the line is rewritten in place; otherwise one line per finished run."""

    def __init__(self, total: int, skipped: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total, self.skipped = total, skipped
        self.done = self.failed = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        if enabled:
            self._show()

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        remaining = self.total - self.skipped - self.done
        eta = elapsed / self.done * remaining if self.done else math.nan
        skipped = f", {self.skipped} already in the store" if self.skipped else ""
        return (f"sweep: {self.skipped + self.done}/{self.total} runs done ({self.failed} failed{skipped}), "
                f"{remaining} remaining, elapsed {_clock(elapsed)}, ETA {_clock(eta) if remaining else '0:00'}")

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.enabled:
            self._show()

    def _show(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------------------------------
# the sweep


def run_sweep(spec: SweepSpec, *, out: str | Path | None = None, jobs: int | None = None, executor: str = "local",
              scheduler: str | None = None, progress: bool = False, retry_failed: bool = False,
              force: bool = False, run_timeout_s: float | None = None, wait: bool = False) -> Results:
    """Run every task of ``spec`` not already in the store at ``out``; return the consolidated tables
    (also written to ``out``). Nothing is written before the spec and the executor are validated.
    ``retry_failed``: re-run the runs the store holds as failed; ``force``: re-run every run.
    ``run_timeout_s``: wall seconds after which a run fails as timed out (default
    :func:`default_run_timeout` of its scenario; 0: no limit); the sweep goes on with the others.
    ``out`` is locked while the sweep runs (:func:`out_lock`; ``wait``: wait for another holder
    instead of failing); the tables and ``sweep.json`` are written as one unit
    (:func:`mobility.experiment.write_tables`), and only files a previous sweep listed in its
    ``sweep.json`` are ever deleted."""
    if run_timeout_s is not None and not (math.isfinite(run_timeout_s) and run_timeout_s >= 0):
        raise SweepError(f"--run-timeout: expected a number of seconds >= 0 (0: no limit), got {run_timeout_s!r}")
    tasks = [dataclasses.replace(t, timeout_s=(default_run_timeout(t.scenario) if run_timeout_s is None
                                               else min(run_timeout_s, RUN_TIMEOUT_MAX_S) or None))
             for t in spec.tasks()]
    from .experiment import check_out_dir

    store = RunStore(out) if out is not None else None
    check_out_dir(out)
    estimate = [t for t in tasks if store is None or force or not store.finished(t, retry_failed)]
    n_jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    memory: dict[str, Results] = {}
    with open_executor(executor, max(1, min(n_jobs, len(estimate))) if n_jobs >= 1 else n_jobs, scheduler) as ex, \
            (out_lock(store.root, wait=wait, progress=progress) if store is not None else nullcontext()):
        if store is not None:
            store.prepare()
        pending = [t for t in tasks if store is None or force or not store.finished(t, retry_failed)]
        bar = Progress(len(tasks), len(tasks) - len(pending), enabled=progress)

        def execute(batch: Sequence[Task]) -> None:
            for task, res in ex.run(batch):
                if store is not None:
                    store.save(res)
                else:
                    memory[task.run_id] = res
                bar.update(bool((res.runs["status"] == "ok").all()))

        try:
            execute(pending)
            parts, unreadable = _load_all(store, memory, tasks)
            if unreadable:  # damaged after it was checked: run those again, once
                execute(unreadable)
                parts, unreadable = _load_all(store, memory, tasks)
        finally:
            bar.close()
        if unreadable:
            raise SweepError(f"{store.path(unreadable[0].run_id)}: unreadable run tables even after re-running "  # type: ignore[union-attr]
                             "the run; check the disk and remove that directory")
        res = combine(parts)
        if store is not None:
            files = res.files()
            previous = _previous_files(store.root)
            record = {**spec.to_dict(), "files": [*files, "sweep.json"]}
            res.write(store.root, extra={"sweep.json": json.dumps(record, indent=2, default=str) + "\n"},
                      remove=[f for f in previous if f not in files])
    return res


def _load_all(store: RunStore | None, memory: dict[str, Results],
              tasks: Sequence[Task]) -> tuple[list[Results], list[Task]]:
    """Every task's results, and the tasks whose stored tables cannot be read."""
    if store is None:
        return [memory[t.run_id] for t in tasks], []
    parts, bad = [], []
    for t in tasks:
        try:
            parts.append(store.load(t))
        except Exception:  # noqa: BLE001 - pyarrow's errors for a damaged file are many
            bad.append(t)
    return parts, bad


def _previous_files(root: Path) -> list[str]:
    """The result files the last sweep or compare wrote into ``root`` (listed in its sweep.json):
    the only files a new one may delete."""
    try:
        files = json.loads((root / "sweep.json").read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and Path(f).name == f and f != "sweep.json"]


def compare_results(a: Results | str | Path, b: Results | str | Path) -> list[str]:
    """Differences between two result sets, ignoring :data:`VOLATILE_COLUMNS` of ``runs``.

    This is what "identical" means for sweeps (resumed vs uninterrupted, one executor vs another):
    every table has the same columns, rows and values, exactly (no tolerance); ``runs`` is compared
    without the wall times and the host. Returns one line per differing table (empty: identical)."""

    def tables(r: Results | str | Path) -> dict[str, pd.DataFrame]:
        if isinstance(r, Results):
            t = {"junctions": r.junctions, "network": r.network, "runs": r.runs, "corridor": r.corridor,
                 "kinematics": r.kinematics, "transit": r.transit, "transit_events": r.transit_events,
                 **{f"timespace_{k}": v for k, v in r.timespace.items()}}
            return {k: v for k, v in t.items() if not v.empty or k in ("junctions", "network", "runs")}
        d = Path(r)
        return {p.stem: pd.read_parquet(p) for p in sorted(d.glob("*.parquet")) if p.stem in TABLES}

    ta, tb = tables(a), tables(b)
    diffs = []
    for name in sorted(set(ta) | set(tb)):
        if name not in ta or name not in tb:
            diffs.append(f"{name}: only in {'the first' if name in ta else 'the second'}")
            continue
        x, y = ta[name], tb[name]
        if name == "runs":
            x = x.drop(columns=[c for c in VOLATILE_COLUMNS if c in x.columns])
            y = y.drop(columns=[c for c in VOLATILE_COLUMNS if c in y.columns])
        try:
            pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True)
        except AssertionError as e:
            diffs.append(f"{name}: " + " ".join(str(e).split())[:300])
    return diffs


def format_sweep(res: Results, baseline: str | None = None) -> str:
    """Network totals per arm (mean ± 95 % CI over seeds) and paired changes against the baseline."""
    from .stats import summary

    if res.runs.empty:
        return "no runs"
    s = summary(res.junctions, res.network, res.runs, baseline)
    base = s["baseline"]
    net, diffs, excl = s["network"], s["network_diffs"], s["excluded"]
    lines = [f"Network totals (mean ± 95 % CI over seeds; change vs '{base}' paired by seed, "
             "'~' = the CI of the change includes 0):"]
    metrics = [("delay_s_per_veh", "delay s/veh", 1), ("stops_per_veh", "stops/veh", 2), ("co2_kg", "CO2 kg", 1)]

    def cell(arm: tuple, metric: str, digits: int) -> str:
        r = net[(net.scenario == arm[0]) & (net.demand_scale == arm[1]) & (net.variant == arm[2]) & (net.metric == metric)]
        if r.empty:
            return "–"
        r = r.iloc[0]
        ci = "" if not math.isfinite(r.ci_high) else f" ± {(r.ci_high - r.ci_low) / 2:.{digits}f}"
        txt = f"{r['mean']:.{digits}f}{ci}"
        d = diffs[(diffs.scenario == arm[0]) & (diffs.demand_scale == arm[1]) & (diffs.variant == arm[2])
                  & (diffs.metric == metric)] if not diffs.empty else diffs
        if not d.empty and math.isfinite(d.iloc[0]["pct_change"]):
            txt += f" ({d.iloc[0]['pct_change']:+.1f}%{'~' if d.iloc[0]['ci_includes_zero'] else ''})"
        return txt

    arms = res.runs.drop_duplicates(["scenario", "demand_scale", "variant"])
    w = max(12, *(len(v) for v in arms["variant"])) + 2
    lines.append(f"{'scenario':<14}{'scale':>6}  {'controller':<{w}}{'runs':>5}  " +
                 "".join(f"{label:<26}" for _, label, _ in metrics))
    for _, a in arms.iterrows():
        arm = (a.scenario, float(a.demand_scale), a.variant)
        n = net[(net.scenario == arm[0]) & (net.demand_scale == arm[1]) & (net.variant == arm[2])]
        nvalid = int(n["n_seeds"].max()) if not n.empty else 0
        lines.append(f"{str(a.scenario)[:13]:<14}{arm[1]:>6g}  {arm[2]:<{w}}{nvalid:>5}  " +
                     "".join(f"{cell(arm, m, d):<26}" for m, _, d in metrics))
    if not excl.empty:
        lines.append("")
        lines.append(f"{len(excl)} run(s) excluded from the averages:")
        for _, r in excl.iterrows():
            lines.append(f"  {r.scenario} ×{r.demand_scale:g} {r.variant} seed {r.seed}: {r.reason}")
    return "\n".join(lines)
