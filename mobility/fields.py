"""Validating user input: TOML files, their fields, numbers.

Every error is one line naming the file and the field and saying what was expected (a
:class:`~mobility.errors.MobilityError`, exit status 2 at the command line).
"""

from __future__ import annotations

import math
import tomllib
from numbers import Real
from pathlib import Path
from typing import Any, Self

from .errors import MobilityError, ScenarioError


def is_number(v: Any) -> bool:
    """True for a real number (int, float, numpy scalars), not a bool (TOML ``true`` is not 1); NaN and
    inf included."""
    return isinstance(v, Real) and not isinstance(v, bool)


def is_integer(v: Any) -> bool:
    """True for an int, not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_finite_number(v: Any) -> bool:
    """True for a finite int or float, not a bool."""
    return is_number(v) and math.isfinite(v)


def is_number_in(v: Any, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
                 high_open: bool = False) -> bool:
    """True for a finite real number, not a bool (:func:`is_finite_number`), from ``low`` to ``high``:
    ``low <= v <= high``, with ``v > low`` if ``low_open`` and ``v < high`` if ``high_open``. The one
    check behind "expected a positive number of seconds", "a share in (0, 1]", …; the caller words the
    error (one line naming the parameter and what was expected)."""
    if not is_finite_number(v):
        return False
    return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)


def read_toml(path: Path, error: type[MobilityError] = ScenarioError) -> dict[str, Any]:
    """The TOML file at ``path``; unreadable or malformed files raise a one-line :class:`ScenarioError`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: malformed TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}); expected a TOML file saved as UTF-8") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None


class Fields:
    """Typed access to a TOML table that names the file and field in every error: the one TOML
    field validator (scenarios, sweep specs, fleets, tonnage and profile specs)."""

    #: where an unknown field's message points the user
    hint = "scenarios/corridor.toml"
    #: the error class raised (a subclass for sweep specs)
    error: type[MobilityError] = ScenarioError

    def __init__(self, path: Path | str, table: dict[str, Any], prefix: str = "") -> None:
        self.path, self.table, self.prefix = path, table, prefix
        self.used: set[str] = set()

    def err(self, key: str, msg: str) -> MobilityError:
        return self.error(f"{self.path}: field '{self.prefix}{key}': {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, what: str) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.err(key, f"missing; expected {what}")
            return default
        v = self.table[key]
        if kind is float and is_integer(v):
            v = float(v)
        if isinstance(v, bool) and kind is not bool or not isinstance(v, kind):
            raise self.err(key, f"expected {what}, got {v!r}")
        return v

    def tables(self, key: str, what: str) -> list[Self]:
        """An array of tables (``[[key]]``), each as typed fields named ``key[i].`` in errors."""
        out = []
        for i, t in enumerate(self.get(key, list, [], what=what)):
            if not isinstance(t, dict):
                raise self.err(f"{key}[{i}]", f"expected a table, got {t!r}")
            out.append(type(self)(self.path, t, f"{self.prefix}{key}[{i}]."))
        return out

    def number(self, key: str, default: Any = ..., *, minimum: float = -math.inf,
               strict: bool = False, what: str = "a number") -> float:
        v = self.get(key, float, default, what=what)
        if v is default:
            return v
        if not math.isfinite(v) or v < minimum or (strict and v == minimum):
            cmp = ">" if strict else ">="
            raise self.err(key, f"expected {what} {cmp} {minimum:g}, got {v!r}")
        return v

    def finish(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            raise self.err(extra[0], f"unknown field (check the spelling; see {self.hint})")
