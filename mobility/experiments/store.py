"""The run store: each finished run of a sweep in ``DIR/runs/<run_id>/``, written atomically.

See :mod:`mobility.experiments.sweep` ("Run store") for what is kept and how a killed sweep resumes.
"""



from __future__ import annotations

import fcntl
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..files import finish_pending_writes, pid_alive, read_results
from .run import Results
from .spec import SweepError, Task

#: tables a run may produce (Parquet files in its store directory)
TABLES = ("junctions", "network", "runs", "corridor", "kinematics", "timespace_signals", "timespace_trajectories",
          "approaches", "movements", "transit", "transit_events")


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
        discard their unfinished final writes (:func:`mobility.files.finish_pending_writes`)."""

        self.runs_dir.mkdir(parents=True, exist_ok=True)
        finish_pending_writes(self.root)
        for d in self.runs_dir.glob(".*-*"):
            parts = d.name.split("-")
            if d.is_dir() and len(parts) >= 3 and parts[2].isdigit() and not pid_alive(int(parts[2])):
                shutil.rmtree(d, ignore_errors=True)

    def save(self, res: Results) -> None:
        """Store one run's tables: written to a temporary directory, then renamed into place."""
        rid = str(res.runs["run_id"].iloc[0])
        tmp = self.runs_dir / f".tmp-{rid}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            tables = {"junctions": res.junctions, "network": res.network, "runs": res.runs, "corridor": res.corridor,
                      "kinematics": res.kinematics, "approaches": res.approaches, "movements": res.movements,
                      "transit": res.transit, "transit_events": res.transit_events,
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
        t = read_results(d, (), TABLES)
        for df in t.values():
            if "variant" in df.columns:
                df["variant"] = task.variant.label
            if "demand_scale" in df.columns:
                df["demand_scale"] = task.demand_scale
        return Results(t["junctions"], t["network"], t["runs"], t.get("corridor", pd.DataFrame()),
                       {k.removeprefix("timespace_"): v for k, v in t.items() if k.startswith("timespace_")},
                       t.get("kinematics", pd.DataFrame()), t.get("approaches", pd.DataFrame()),
                       t.get("movements", pd.DataFrame()), t.get("transit", pd.DataFrame()),
                       t.get("transit_events", pd.DataFrame()))


