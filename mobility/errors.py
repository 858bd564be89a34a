"""Errors that are the user's to fix.

Every :class:`MobilityError` carries one line that names the file, field or id at fault and what
was expected. The CLI prints that line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import sys
import traceback as _tb
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


class MobilityError(Exception):
    """Bad input: a missing file, a malformed spec, an unknown name or id."""

    exit_code = 2


class ScenarioError(MobilityError):
    """A scenario file (TOML or .sumocfg) is missing, malformed or inconsistent."""


class ControllerError(MobilityError):
    """An unknown controller name or a bad controller parameter."""


class NetworkError(MobilityError):
    """A network file cannot be read, or an id is not in the network."""


class SimulationError(Exception):
    """SUMO failed during a run, or a controller crashed: fails that run, not the sweep.

    ``traceback`` is the full formatted traceback of the cause (empty when SUMO itself failed): the
    run store and ``runs.csv`` keep it (``error_traceback``), ``--debug`` prints it."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback

    def __reduce__(self) -> tuple:
        return (type(self), (str(self), self.traceback))


def _is_library(filename: str) -> bool:
    p = Path(filename)
    if filename.startswith("<") or any(part in ("site-packages", "dist-packages") for part in p.parts):
        return True
    try:
        p.resolve().relative_to(_PACKAGE)
        return True
    except ValueError:
        pass
    stdlib = Path(sys.base_prefix) / "lib"
    return str(p).startswith(str(stdlib))


def user_frame(e: BaseException) -> str:
    """``file:line`` of the last frame of ``e``'s traceback in the user's code (not in ``mobility``,
    the standard library or an installed package); the last frame when there is none; "" without a
    traceback."""
    frames = _tb.extract_tb(e.__traceback__)
    if not frames:
        return ""
    own = [f for f in frames if not _is_library(f.filename)]
    f = (own or frames)[-1]
    return f"{f.filename}:{f.lineno}"


def controller_failure(e: BaseException, what: str) -> SimulationError:
    """The error of a controller that raised ``e`` (``what``: "controller 'x' failed in act() at
    t=50"): one line ending with the file and line in the user's code, the full traceback kept."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    where = user_frame(e)
    msg = f"{what}: {type(e).__name__}{': ' + first if first else ''}{f' ({where})' if where else ''}"
    return SimulationError(msg, "".join(_tb.format_exception(type(e), e, e.__traceback__)))
