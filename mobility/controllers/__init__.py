"""Controllers: the contract (:mod:`.base`), the built-ins, and the registry.

Controllers are found by name, lazily: a built-in name, a name registered by an installed package in
the ``mobility.controllers`` entry-point group (value ``"package.module:Class"``), or a
``"package.module:Class"`` string given directly. A spec may carry parameters:
``"sumo-actuated(max_gap_s=2.5, max_green_s=45)"``.
"""

from __future__ import annotations

import importlib
import math
import re
from importlib.metadata import entry_points
from typing import Any

from ..errors import ControllerError
from .base import (Action, Controller, GreenPhase, JunctionObservation, NativeProgram, Observation,
                   Safety, SiteSafety, TimingPlan)

__all__ = [
    "Action", "Controller", "GreenPhase", "JunctionObservation", "NativeProgram", "Observation",
    "Safety", "SiteSafety", "TimingPlan", "available", "load_class", "make", "parse_spec",
]

#: built-in controllers: name -> "module:Class" (imported only when used)
BUILTIN: dict[str, str] = {
    "static": "mobility.controllers.static:Static",
    "sumo-actuated": "mobility.controllers.sumo_actuated:SumoActuated",
    "max-pressure": "mobility.controllers.max_pressure:MaxPressure",
    "actuated": "mobility.controllers.actuated:Actuated",
    "webster": "mobility.controllers.webster:Webster",
    "green-wave": "mobility.controllers.green_wave:GreenWave",
    "tls-coordinator": "mobility.controllers.tls_coordinator:TlsCoordinator",
    "coordinated-actuated": "mobility.controllers.coordinated_actuated:CoordinatedActuated",
    "cycle-adaptive": "mobility.controllers.adaptive:CycleAdaptive",
}


def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="mobility.controllers")}


def targets() -> dict[str, str]:
    """All known controller names and their ``"module:Class"`` targets."""
    return {**_entry_point_targets(), **BUILTIN}


def load_class(name: str) -> type[Controller]:
    """The controller class for a registered name or a ``"module:Class"`` string."""
    known = targets()
    target = known.get(name)
    if target is None and ":" in name:
        target = name
    if target is None:
        raise ControllerError(f"unknown controller '{name}'; known: {', '.join(sorted(known))} "
                              f"(or give 'package.module:Class')")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ControllerError(f"controller '{name}': cannot load '{target}': {e}") from None
    except Exception as e:  # the module itself fails: a syntax error, an exception at import time
        from ..errors import user_frame

        where = user_frame(e)
        raise ControllerError(f"controller '{name}': cannot load '{target}': {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}{f' ({where})' if where else ''}") from None
    if not (isinstance(cls, type) and issubclass(cls, Controller)):
        raise ControllerError(f"controller '{name}': '{target}' is not a mobility.controllers.Controller subclass")
    return cls


def available() -> dict[str, str]:
    """Registered controller names with their one-line descriptions."""
    out = {}
    for name in sorted(targets()):
        try:
            out[name] = load_class(name).description
        except ControllerError as e:
            out[name] = f"(cannot load: {e})"
    return out


_SPEC = re.compile(r"^\s*([^()\s]+)\s*(?:\((.*)\))?\s*$", re.S)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name(a=1, b='x')"`` → ``("name", {"a": 1, "b": "x"})``. A deployment or modifiers stay with
    the name: ``"max-pressure(min_green_s=5)@(J2,J4)+glosa(share=0.5)"`` →
    ``("max-pressure@(J2,J4)+glosa(share=0.5)", {"min_green_s": 5})`` (see :mod:`.deploy`)."""
    from .deploy import split_top

    parts = split_top(spec, "@+")
    if len(parts) > 1:
        name, params = parse_spec(parts[0][1])
        return name + "".join(sep + part.strip() for sep, part in parts[1:]), params
    m = _SPEC.match(spec)
    if not m:
        raise ControllerError(f"controller spec '{spec}': expected NAME or NAME(param=value, ...)")
    name, args = m.group(1), m.group(2)
    params = {}
    if args and args.strip():
        from .deploy import literal_kwargs

        try:
            params = literal_kwargs(args)
        except ValueError:
            raise ControllerError(f"controller spec '{spec}': parameters must be param=literal, comma-separated") from None
    return name, params


def _non_finite(value: Any) -> float | None:
    """The first NaN or infinite number in a parameter value (lists, tuples and dicts searched)."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for v in items:
        bad = _non_finite(v)
        if bad is not None:
            return bad
    return None


def make(spec: str, **params: Any) -> Controller:
    """Instantiate a controller from a spec string (plus extra keyword parameters); a spec with a
    deployment ``@(...)`` or modifiers ``+glosa(...)`` gives a :class:`.deploy.Deployed` wrapper."""
    from .deploy import build, is_composite

    if is_composite(spec):
        return build(spec, make, **params)
    name, spec_params = parse_spec(spec)
    cls = load_class(name)
    spec_params.update(params)
    for key, value in spec_params.items():
        bad = _non_finite(value)
        if bad is not None:
            raise ControllerError(f"controller '{name}': parameter '{key}': expected a finite number, got {bad!r}")
    try:
        return cls(**spec_params)
    except TypeError as e:
        raise ControllerError(f"controller '{name}': bad parameters: {e}") from None
    except ControllerError:
        raise
    except Exception as e:  # a third-party constructor's own check (ValueError...)
        first = str(e).splitlines()[0] if str(e) else ""
        raise ControllerError(f"controller '{name}': bad parameters: {type(e).__name__}: {first}") from None
