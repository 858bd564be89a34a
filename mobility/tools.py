"""Every SUMO binary and tool is found and called here.

SUMO comes from the pinned ``eclipse-sumo`` wheel: its ``SUMO_HOME`` (``bin/``, ``tools/``,
``data/``) is the wheel's directory, so no SUMO_HOME has to be set. Nothing here runs at import.
The in-process simulation (libsumo/TraCI) is :mod:`mobility.sim`; the command line of a run is
:func:`mobility.scenario.sumo_command`, so a subprocess run of SUMO (e.g. the counts fit) uses the
same command as a simulation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import MobilityError

#: the SUMO release every result is measured with (pyproject pins the same)
SUMO_PIN = "1.28.0"


def sumo_home() -> Path:
    """SUMO home of the installed ``eclipse-sumo`` wheel (``bin/``, ``tools/``, ``data/``)."""
    import sumo  # the eclipse-sumo wheel: data files and binaries, no libsumo

    return Path(sumo.SUMO_HOME)


def sumo_version() -> str:
    """Version of the installed ``eclipse-sumo`` wheel, e.g. ``1.28.0``."""
    from importlib.metadata import version

    return version("eclipse-sumo")


def tool_env() -> dict[str, str]:
    """Environment for SUMO binaries and tools: the wheel's SUMO_HOME and PROJ database."""
    env = dict(os.environ)
    home = sumo_home()
    env["SUMO_HOME"] = str(home)
    proj = home / "data" / "proj"
    if proj.is_dir():
        env["PROJ_LIB"] = env["PROJ_DATA"] = str(proj)
    return env


def binary(name: str) -> str:
    """Path of a SUMO binary (``sumo``, ``netconvert``, ``duarouter``, ...) from the wheel."""
    path = sumo_home() / "bin" / name
    if not path.exists():
        raise MobilityError(f"{path}: SUMO binary not found; reinstall with `pip install eclipse-sumo=={SUMO_PIN}`")
    return str(path)


def sumo_binary(gui: bool = False) -> str:
    """Path of the ``sumo`` (or ``sumo-gui``) binary from the wheel (no SUMO_HOME needed)."""
    return binary("sumo-gui" if gui else "sumo")


def tool_path(script: str) -> Path:
    """Path of a Python tool in the wheel's ``tools/`` (e.g. ``randomTrips.py``); may not exist."""
    return sumo_home() / "tools" / script


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a SUMO binary or tool command, capturing its text output; the caller reads the result.

    ``env`` defaults to :func:`tool_env`."""
    return subprocess.run(list(cmd), capture_output=True, text=True, env=dict(env) if env is not None else tool_env(),
                          cwd=cwd, timeout=timeout)


def run_binary(cmd: Sequence[str], *, what: str, tool: str | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a SUMO command; on failure raise :class:`MobilityError` with its first error line."""
    proc = run(cmd, cwd=cwd)
    if proc.returncode != 0:
        raise MobilityError(f"{what}: {tool or Path(cmd[0]).name} failed: {error_line(proc.stderr or proc.stdout)}")
    return proc


def run_tool(script: str, args: Sequence[str], *, what: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a Python tool from the wheel's ``tools/`` (e.g. ``randomTrips.py``) with this interpreter.

    Raises :class:`MobilityError` naming ``what`` and the tool's last error line if it fails."""
    return run_binary([sys.executable, str(tool_path(script)), *args], what=what, tool=script, cwd=cwd)


def error_line(text: str) -> str:
    """The line of a tool's output that says what went wrong (its first ``Error`` line, else its last)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("Error:") or "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else "no output"

