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
(:func:`mobility.experiments.run.run_id`: scenario content incl. demand, controller and all its
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
its error and does not stop the others. Gridlocked runs are flagged (:mod:`mobility.experiments.stats`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TextIO, cast

import pandas as pd

from .run import (Results, combine)
from ..scenario import Scenario
from ..files import read_results
from .executors import EXECUTORS, open_executor  # noqa: F401  (EXECUTORS: the names --executor takes)
from .spec import RUN_TIMEOUT_MAX_S, SweepError, SweepSpec, Task, default_run_timeout
from .store import TABLES, RunStore, out_lock

#: columns of the ``runs`` table that differ between two executions of the same run (wall times,
#: the machine): excluded when results are compared (:func:`compare_results`)
VOLATILE_COLUMNS = ("wall_s", "sim_wall_s", "host")


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
    (:func:`mobility.files.write_tables`), and only files a previous sweep listed in its
    ``sweep.json`` are ever deleted."""
    if run_timeout_s is not None and not (math.isfinite(run_timeout_s) and run_timeout_s >= 0):
        raise SweepError(f"--run-timeout: expected a number of seconds >= 0 (0: no limit), got {run_timeout_s!r}")
    tasks = [dataclasses.replace(t, timeout_s=(default_run_timeout(t.scenario) if run_timeout_s is None
                                               else min(run_timeout_s, RUN_TIMEOUT_MAX_S) or None))
             for t in spec.tasks()]
    from .run import check_out_dir

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


def compare(scenario: str | Path | Scenario, controllers: Sequence[str], seeds: int | Sequence[int] = 1, *,
            out: str | Path | None = None, jobs: int | None = None, backend: str = "libsumo",
            sumo_args: Sequence[str] | str = (), executor: str = "local", scheduler: str | None = None,
            progress: bool = False, retry_failed: bool = False, force: bool = False,
            run_timeout_s: float | None = None, wait: bool = False) -> Results:
    """Run every controller over every seed: a sweep (:func:`run_sweep`) of one scenario.

    A failing run is recorded as failed (with its error) and does not stop the others. Runs execute
    in separate processes (``jobs`` at a time) on ``executor`` (``local``, ``dask`` with
    ``scheduler``, or ``dask-local``). With ``out``, runs are kept in the run store
    ``out/runs/<run_id>/`` and the tables are written to ``out``: calling again with the same inputs
    reuses finished runs. For a scenario with a corridor, the first seed's run of each controller
    also records time–space data (``timespace_*`` tables). ``retry_failed``: re-run the runs the
    store holds as failed; ``force``: re-run every run. ``run_timeout_s``: wall seconds after which a run
    fails as timed out (default: :func:`default_run_timeout`; 0: no limit). ``out`` is
    locked while in use; ``wait``: wait for another holder instead of failing."""
    spec = SweepSpec.for_compare(scenario, controllers, seeds, backend=backend, sumo_args=sumo_args)
    return run_sweep(spec, out=out, jobs=jobs, executor=executor, scheduler=scheduler, progress=progress,
                     retry_failed=retry_failed, force=force, run_timeout_s=run_timeout_s, wait=wait)


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
                 "kinematics": r.kinematics, "approaches": r.approaches, "movements": r.movements,
                 "transit": r.transit, "transit_events": r.transit_events,
                 **{f"timespace_{k}": v for k, v in r.timespace.items()}}
            return {k: v for k, v in t.items() if not v.empty or k in ("junctions", "network", "runs")}
        return read_results(Path(r), (), TABLES)

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
    net, diffs, excl = (cast(pd.DataFrame, s[k]) for k in ("network", "network_diffs", "excluded"))
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
