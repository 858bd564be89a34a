"""Executors: every run of a sweep in a fresh Python process, on this machine or on Dask.

libsumo is one simulation per process, so a crash, even a segfault, fails only that run
(:func:`run_in_subprocess`); see :mod:`mobility.experiments.sweep` for the executors offered.
"""



from __future__ import annotations

import concurrent.futures as cf
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd

from .._version import __version__
from ..controllers import make
from ..errors import MobilityError, SimulationError, user_frame
from .run import (KEYS, Results, run_one)
from .spec import SweepError, Task

EXECUTORS = ("local", "dask", "dask-local")


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
        res = run_one(task.scenario, ctrl, task.seed, task.backend, False, task.sumo_args,
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


_WORKER_CODE = "from mobility.experiments.executors import _worker_main; _worker_main()"


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


