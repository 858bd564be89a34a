"""Files written and read by mobility: every write is atomic, every results folder is read one way.

* :func:`atomic_file` — one file: written under a temporary name next to it, renamed into place.
* :func:`atomic_dir` — one directory (e.g. an imported network, a counts fit): built under a
  temporary name, renamed into place.
* :func:`write_tables` — a *unit* of result tables (CSV for people, Parquet for machines) that must
  appear together: a staging directory, a manifest written last, then renames (roll-forward after a
  kill, see :func:`finish_pending_writes`).
* :func:`read_results` / :func:`read_table` — the tables of a results folder, refusing a folder
  whose tables are being (or were half-) replaced and naming a damaged file in one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import MobilityError


@contextmanager
def atomic_file(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an exception it becomes
    ``path`` (one rename: readers see the old file or the new one, never half of one). On an
    exception the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out``; on success it becomes ``out``.

    ``out`` must not exist or be empty, unless ``force`` (then the old directory is replaced
    only after the new one is complete). On an exception the temporary directory is removed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MobilityError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise MobilityError(f"{out}: directory exists and is not empty; choose another --out or pass --force")
    created = [p for p in reversed(out.parents) if not p.exists()]  # outermost first
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary directory
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(created):  # leave no trace: remove the parents this call created
            try:
                p.rmdir()
            except OSError:
                break
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: prefix of the staging directory a unit of result files is written into (see :func:`write_tables`)
STAGING_PREFIX = ".staging-"
_MANIFEST = "MANIFEST.json"


def table_files(tables: Mapping[str, pd.DataFrame], parquet_only: Sequence[str] = ()) -> list[str]:
    """``<name>.csv`` (not for names in ``parquet_only``) and ``<name>.parquet`` of every table."""
    return [f"{name}.{ext}" for name in tables for ext in ("csv", "parquet")
            if not (ext == "csv" and name in parquet_only)]


def write_tables(out: str | Path, tables: Mapping[str, pd.DataFrame], parquet_only: Sequence[str] = (), *,
                 extra: Mapping[str, str] | None = None, remove: Sequence[str] = ()) -> list[Path]:
    """Write each table as ``<name>.csv`` (for people; not for names in ``parquet_only``, the large
    ones) and ``<name>.parquet`` (for machines) into ``out``, with the text files ``extra``, as one unit.

    Everything is first written into a staging directory ``out/.staging-<pid>-…``; a manifest
    written last (atomically) lists the files; then each file is renamed into place and the files in
    ``remove`` (an earlier unit's, when not rewritten) are deleted. A process killed before the
    manifest leaves nothing visible (the staging directory is removed by the next writer); killed
    after it, the next writer (or reader: :func:`finish_pending_writes`) completes the renames. So
    ``out`` never holds a half-written file, nor, once finished, tables from two different units."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    finish_pending_writes(out)
    stage = out / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    names: list[str] = []
    try:
        for name, df in tables.items():
            for ext in ("csv", "parquet"):
                if ext == "csv" and name in parquet_only:
                    continue
                if ext == "csv":
                    df.to_csv(stage / f"{name}.csv", index=False, float_format="%.6g")
                else:
                    df.to_parquet(stage / f"{name}.parquet", index=False)
                names.append(f"{name}.{ext}")
        for fname, text in (extra or {}).items():
            (stage / fname).write_text(text, encoding="utf-8")
            names.append(fname)
        manifest = {"files": names, "remove": [r for r in remove if r not in names and Path(r).name == r]}
        (stage / f".{_MANIFEST}.tmp").write_text(json.dumps(manifest))
        os.replace(stage / f".{_MANIFEST}.tmp", stage / _MANIFEST)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _roll_forward(stage)
    return [out / n for n in names]


def _roll_forward(stage: Path) -> None:
    """Move a staged unit's files into place, delete the files it replaces, remove the staging dir."""
    manifest = json.loads((stage / _MANIFEST).read_text())
    for n in manifest["files"]:
        if (stage / n).exists():
            os.replace(stage / n, stage.parent / n)
    for n in manifest["remove"]:
        (stage.parent / n).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: temporary files of earlier versions of :func:`write_tables` (``.<table>.<random>.<ext>.tmp``)
_LEGACY_TMP = re.compile(r"^\.(?:[A-Za-z_]+\.[A-Za-z0-9_]+\.(?:csv|parquet)|sweep\.json\.\d+|"
                         r"tonnage_spec\.[A-Za-z0-9_]+\.json)\.tmp$")


def pending_writes(out: str | Path) -> list[Path]:
    """Staging directories in ``out`` of writers still running (see :func:`write_tables`)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return [d for d in out.glob(f"{STAGING_PREFIX}*") if d.is_dir() and _staging_pid(d) is not None
            and pid_alive(_staging_pid(d))]  # type: ignore[arg-type]


def _staging_pid(d: Path) -> int | None:
    head = d.name.removeprefix(STAGING_PREFIX).split("-")[0]
    return int(head) if head.isdigit() else None


def finish_pending_writes(out: str | Path) -> None:
    """Complete or discard the units of result files that killed writers left in ``out``: a staging
    directory with its manifest is rolled forward, one without is removed; temporary files of
    earlier versions are removed. Staging directories of live processes are left alone."""
    out = Path(out)
    if not out.is_dir():
        return
    for d in sorted(out.glob(f"{STAGING_PREFIX}*")):
        pid = _staging_pid(d)
        if not d.is_dir() or pid is None or (pid != os.getpid() and pid_alive(pid)):
            continue
        if (d / _MANIFEST).is_file():
            try:
                _roll_forward(d)
                continue
            except (OSError, ValueError, KeyError, TypeError):
                pass
        shutil.rmtree(d, ignore_errors=True)
    for f in out.iterdir():
        if f.is_file() and _LEGACY_TMP.match(f.name):
            f.unlink(missing_ok=True)


def check_results_dir(d: str | Path) -> None:
    """Raise a one-line :class:`MobilityError` when ``d``'s tables are being replaced or were left
    half-replaced by a killed writer (a staging directory with its manifest, see :func:`write_tables`)."""
    for st in Path(d).glob(f"{STAGING_PREFIX}*"):
        if not (st / _MANIFEST).is_file():
            continue
        pid = _staging_pid(st)
        if pid is not None and pid_alive(pid):
            raise MobilityError(f"{d}: its tables are being written by pid {pid}; wait for it to finish")
        raise MobilityError(f"{d}: a write of its tables was interrupted ({st.name}); re-run the mobility command "
                            "that wrote them to complete it")


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Parquet table of a results directory; a damaged file is a one-line :class:`MobilityError`."""
    try:
        return pd.read_parquet(path, columns=list(columns) if columns is not None else None)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ValueError...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MobilityError(f"{path}: unreadable ({first[:120]}); expected a Parquet table written by mobility, "
                            "re-run the command that wrote it") from None


def read_results(d: str | Path, required: Sequence[str], optional: Sequence[str] = (), *,
                 missing_hint: str = "expected the tables written by mobility run, compare or sweep"
                 ) -> dict[str, pd.DataFrame]:
    """The Parquet tables ``required`` (a missing one is a one-line :class:`MobilityError` ending in
    ``missing_hint``) and those of ``optional`` that exist, of the results folder ``d``, after
    :func:`check_results_dir`."""
    d = Path(d)
    if not d.is_dir():
        raise MobilityError(f"{d}: no such directory; expected the --out directory of mobility run, compare or sweep")
    check_results_dir(d)
    out: dict[str, pd.DataFrame] = {}
    for name in required:
        f = d / f"{name}.parquet"
        if not f.exists():
            raise MobilityError(f"{f}: missing; {missing_hint}")
        out[name] = read_table(f)
    for name in optional:
        f = d / f"{name}.parquet"
        if f.exists() and name not in out:
            out[name] = read_table(f)
    return out
