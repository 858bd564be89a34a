"""Deployments and modifiers: a controller at some junctions only, and things added to a run.

A controller spec may carry, after the controller and its parameters:

* a **deployment** ``@(...)`` — the junctions where the controller runs; every other junction keeps
  its existing program exactly, state for state, as under ``static`` (the actuator never writes to
  it):

  - ``max-pressure@(J2,J4)``: these junction ids;
  - ``max-pressure@(share=0.57)``: ``share × n`` (rounded half up) of the network's ``n`` signalised junctions,
    drawn with ``numpy.random.default_rng(deploy_seed)`` (``deploy_seed`` default 0:
    ``@(share=0.57, deploy_seed=3)``). The draw does **not** depend on the run seed: every seed of a
    comparison treats the same junctions, so seeds pair honestly (seed-to-seed differences are
    traffic, not a different deployment);
  - ``max-pressure@(worst=0.57)``: that share (rounded half up) of the junctions with the highest delay
    (s/veh) under ``static`` — from a static run of the same scenario (as simulated: window and demand
    scale included) with the **scenario's own seed**, whatever the run seed, so again every seed
    treats the same junctions. The run makes that static run first (cached per process; one extra
    run per worker process and scenario in a sweep);
* **modifiers** ``+NAME(...)``, in any number, after the deployment:

  - ``+glosa(share=0.5, range_m=100)``: equip that share of vehicles with SUMO's GLOSA device
    (green light optimal speed advisory; see :class:`Glosa`);
  - ``+tsp(max_extension_s=15, early_green=true, ...)``: transit signal priority at the treated
    junctions (see :mod:`.tsp`).

Parameters of the controller itself stay with its name: ``max-pressure(min_green_s=5)@(J2,J4)+glosa(share=1)``.
The wrapper's :attr:`Deployed.name` is the canonical spec (``max-pressure@(J2,J4)+glosa(share=1)``), so
run ids and the ``controller`` column tell deployments apart; :meth:`Deployed.get_params` are the inner
controller's parameters.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ControllerError
from ..fields import is_integer, is_number_in
from ..network import SignalNetwork
from .base import Action, Controller, Observation, Safety


def split_top(text: str, seps: str) -> list[tuple[str, str]]:
    """Split ``text`` at the characters of ``seps`` outside parentheses and quotes: a list of
    ``(separator before the part, part)``; the first separator is ``""``."""
    out: list[tuple[str, str]] = []
    depth, quote, cur, sep = 0, "", "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in seps:
            out.append((sep, cur))
            cur, sep = "", ch
            continue
        cur += ch
    out.append((sep, cur))
    return out


def is_composite(spec: str) -> bool:
    """Whether a spec carries a deployment (``@``) or modifiers (``+``) outside parentheses."""
    return len(split_top(spec, "@+")) > 1


def literal_kwargs(text: str) -> dict[str, Any]:
    """``"a=1, b='x'"`` → ``{"a": 1, "b": "x"}`` (Python literals only); :class:`ValueError` otherwise."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError as e:
        raise ValueError(str(e)) from None
    if not isinstance(call, ast.Call) or call.args or any(kw.arg is None for kw in call.keywords):
        raise ValueError("expected param=literal, comma-separated")
    out: dict[str, Any] = {}
    for kw in call.keywords:
        if isinstance(kw.value, ast.Name) and kw.value.id in ("true", "false"):  # +tsp(early_green=true)
            out[str(kw.arg)] = kw.value.id == "true"
        else:
            out[str(kw.arg)] = ast.literal_eval(kw.value)
    return out


def _kwargs(text: str, where: str) -> dict[str, Any]:
    try:
        return literal_kwargs(text)
    except ValueError:
        raise ControllerError(f"{where}: parameters must be param=literal, comma-separated") from None


def _inside(part: str, where: str) -> str:
    part = part.strip()
    if not (part.startswith("(") and part.endswith(")")):
        raise ControllerError(f"{where}: expected @(J1,J2,...), @(share=0.5) or @(worst=0.5) after the controller")
    return part[1:-1]


# ------------------------------------------------------------------------------------------
# deployments


@dataclass(frozen=True)
class Deployment:
    """Where a controller runs: ``junctions`` (ids), or a ``share`` of the network's signalised
    junctions drawn with ``deploy_seed``. ``None`` everywhere: every junction."""

    junctions: tuple[str, ...] | None = None
    share: float | None = None
    deploy_seed: int = 0
    #: the share of junctions with the highest static delay (needs :attr:`Deployed.static_delay`)
    worst: float | None = None

    @staticmethod
    def parse(text: str, where: str) -> Deployment:
        body = text.strip()
        if not body:
            raise ControllerError(f"{where}: empty deployment @(); expected junction ids, share= or worst=")
        if "=" not in body:
            ids = tuple(x.strip().strip("'\"") for x in body.split(","))
            if any(not x for x in ids):
                raise ControllerError(f"{where}: deployment @({body}): expected comma-separated junction ids")
            if len(set(ids)) != len(ids):
                raise ControllerError(f"{where}: deployment @({body}): a junction is listed twice")
            return Deployment(junctions=ids)
        kw = _kwargs(body, where)
        if set(kw) == {"worst"}:
            worst = kw["worst"]
            if not is_number_in(worst, 0, 1, low_open=True):
                raise ControllerError(f"{where}: deployment worst: expected a number in (0, 1], got {worst!r}")
            return Deployment(worst=float(worst))
        unknown = set(kw) - {"share", "deploy_seed"}
        if unknown or "share" not in kw:
            raise ControllerError(f"{where}: deployment @({body}): expected share=<0..1> and optionally "
                                  f"deploy_seed=<int>, or worst=<0..1> alone, got {', '.join(sorted(kw))}")
        share, dseed = kw["share"], kw.get("deploy_seed", 0)
        if not is_number_in(share, 0, 1, low_open=True):
            raise ControllerError(f"{where}: deployment share: expected a number in (0, 1], got {share!r}")
        if not (is_integer(dseed) and dseed >= 0):
            raise ControllerError(f"{where}: deploy_seed: expected an integer >= 0, got {dseed!r}")
        return Deployment(share=float(share), deploy_seed=dseed)

    def label(self) -> str:
        if self.junctions is not None:
            return f"@({','.join(self.junctions)})"
        if self.share is not None:
            seed = f",deploy_seed={self.deploy_seed}" if self.deploy_seed else ""
            return f"@(share={self.share:g}{seed})"
        if self.worst is not None:
            return f"@(worst={self.worst:g})"
        return ""

    @staticmethod
    def _count(share: float, n: int, where: str) -> int:
        k = int(math.floor(share * n + 0.5))
        if k < 1:
            raise ControllerError(f"{where}: a share of {share:g} of {n} signalised junctions rounds to none; "
                                  "give a larger share or the junction ids")
        return k

    def select(self, junction_ids: list[str], where: str, net_name: str,
               static_delay: Mapping[str, float] | None = None) -> tuple[str, ...]:
        """The treated junctions among the network's signalised ``junction_ids`` (sorted for shares);
        ``static_delay``: delay (s/veh) per junction under ``static``, for ``worst``."""
        if self.worst is not None:
            if static_delay is None:
                raise ControllerError(f"{where}: @(worst=...) needs the static run's delay per junction; "
                                      "run it through mobility.experiments.run (run, compare, sweep)")
            ranked = [j for j in junction_ids if j in static_delay and math.isfinite(static_delay[j])]
            ranked.sort(key=lambda j: (-static_delay[j], j))
            k = self._count(self.worst, len(ranked), where)
            return tuple(sorted(ranked[:k]))
        if self.junctions is not None:
            known = set(junction_ids)
            for j in self.junctions:
                if j not in known:
                    raise ControllerError(f"{where}: junction '{j}' is not a signalised junction of {net_name} "
                                          f"(known: {', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''})")
            return self.junctions
        if self.share is not None:
            ids = sorted(junction_ids)
            k = self._count(self.share, len(ids), where)
            rng = np.random.default_rng(self.deploy_seed)
            return tuple(sorted(str(x) for x in rng.choice(ids, size=k, replace=False)))
        return tuple(junction_ids)


# ------------------------------------------------------------------------------------------
# modifiers


@dataclass(frozen=True)
class Glosa:
    """``+glosa(share=0.5, range_m=100)``: SUMO's GLOSA device (green light optimal speed advisory,
    ``--device.glosa.*``) on a ``share`` of all vehicles (``--device.glosa.probability``; the draw uses
    SUMO's own equipment random stream of the run seed, so the rest of the run's randomness is
    unchanged). An equipped vehicle within ``range_m`` of the next signal (SUMO's default 100 m)
    adapts its speed so as to arrive at green, using the signal's *current* program
    (``nextSwitch``). SUMO's documentation warns that the advice is unreliable for actuated
    programs and for phase-by-phase control whose switch times are not known ahead (our
    ``max-pressure``, ``actuated``): it is meant for fixed-time plans (``static``, ``webster``,
    ``green-wave``)."""

    share: float
    range_m: float = 100.0

    @staticmethod
    def from_params(params: dict[str, Any], where: str) -> Glosa:
        unknown = set(params) - {"share", "range_m"}
        if unknown or "share" not in params:
            raise ControllerError(f"{where}: +glosa: expected share=<0..1> and optionally range_m=<m>, "
                                  f"got {', '.join(sorted(params)) or 'nothing'}")
        share, rng = params["share"], params.get("range_m", 100.0)
        if not is_number_in(share, 0, 1):
            raise ControllerError(f"{where}: +glosa share: expected a number in [0, 1], got {share!r}")
        if not is_number_in(rng, 0, low_open=True):
            raise ControllerError(f"{where}: +glosa range_m: expected a positive distance in m, got {rng!r}")
        return Glosa(float(share), float(rng))

    def label(self) -> str:
        extra = f",range_m={self.range_m:g}" if self.range_m != 100.0 else ""
        return f"+glosa(share={self.share:g}{extra})"

    def sumo_options(self) -> list[str]:
        return ["--device.glosa.probability", repr(self.share), "--device.glosa.range", repr(self.range_m)]


def _tsp(params: dict[str, Any], where: str) -> Any:
    from .tsp import Tsp

    return Tsp.from_params(params, where)


MODIFIERS = {"glosa": Glosa.from_params, "tsp": _tsp}


# ------------------------------------------------------------------------------------------
# the wrapper


class Deployed(Controller):
    """A controller restricted to a deployment, plus modifiers. The inner controller's
    :meth:`reset` sees the whole network; its :meth:`act` sees only the treated junctions'
    observations, and only its actions for treated junctions are applied (others are dropped): the
    untreated junctions run their own programs, untouched."""

    description = "A controller at some junctions only (@(...)) and/or with modifiers (+glosa, +tsp)."

    def __init__(self, inner: Controller, deployment: Deployment = Deployment(),
                 modifiers: tuple[Any, ...] = ()) -> None:
        super().__init__(**inner.get_params())
        self.inner = inner
        self.deployment = deployment
        self.modifiers = modifiers
        self.name = inner.name + deployment.label() + "".join(m.label() for m in modifiers)  # type: ignore[misc]
        self.decision_interval_s = inner.decision_interval_s
        self.needs_demand = inner.needs_demand
        #: the treated junctions, after :meth:`reset`
        self.treated: tuple[str, ...] | None = None
        #: for ``@(worst=...)``: delay (s/veh) per junction of the scenario under ``static``, set by
        #: the run (:func:`mobility.experiments.run.run_one`) before :meth:`reset`
        self.static_delay: dict[str, float] | None = None
        #: transit signal priority (``+tsp``): the modifier, and its per-run logic after :meth:`reset`
        self.tsp = next((m for m in modifiers if type(m).__name__ == "Tsp"), None)
        self.tsp_logic: Any = None
        self._inner_next = -math.inf
        if self.tsp is not None:  # priority decides every second; the inner controller keeps its own pace
            self.decision_interval_s = min(inner.decision_interval_s or math.inf, 1.0)

    def transit_classes(self) -> tuple[str, ...]:
        return tuple(self.tsp.classes) if self.tsp is not None else self.inner.transit_classes()

    def safety(self) -> Safety:
        return self.inner.safety()

    def detectors(self) -> float | None:
        return self.inner.detectors()

    def stop_line_detectors(self) -> bool:
        return self.inner.stop_line_detectors()

    def protected_turn_stages(self) -> bool:
        return self.inner.protected_turn_stages()

    def approach_m(self) -> float | None:
        return self.inner.approach_m()

    def sumo_options(self) -> list[str]:
        """Extra SUMO options the modifiers need (e.g. the GLOSA device)."""
        return [o for m in self.modifiers for o in m.sumo_options()]

    def reset(self, network: SignalNetwork, seed: int) -> None:
        self.treated = self.deployment.select(list(network.junction_ids), f"controller '{self.name}'",
                                              network.path.name, self.static_delay)
        self._set = frozenset(self.treated)
        self.inner.reset(network, seed)
        self._inner_next = -math.inf
        if self.tsp is not None:
            from .tsp import TspLogic

            self.tsp_logic = TspLogic(self.tsp, network, self.treated)

    def act(self, observation: Observation) -> Mapping[str, Action]:
        t = observation.time_s
        sub = Observation(t, {j: o for j, o in observation.junctions.items() if j in self._set},
                          observation.transit)
        actions: Mapping[str, Action] = {}
        if self.tsp is None or t >= self._inner_next - 1e-9:  # the inner controller at its own pace
            actions = self.inner.act(sub) or {}
            step = self.inner.decision_interval_s
            self._inner_next = t + step if step is not None else math.inf
        actions = {j: a for j, a in actions.items() if j in self._set}
        if self.tsp_logic is not None:
            from .tsp import merge

            actions = merge(actions, self.tsp_logic.act(sub, actions))
        return actions


def build(spec: str, make_inner: Any, **params: Any) -> Deployed:
    """The :class:`Deployed` controller for a composite spec ``BASE[(params)][@(...)][+MOD(...)]...``;
    ``make_inner(base_spec, **params)`` builds the inner controller (``params``: extra parameters
    for it)."""
    where = f"controller spec '{spec}'"
    parts = split_top(spec, "@+")
    base = parts[0][1].strip()
    if not base:
        raise ControllerError(f"{where}: expected a controller name before '@' or '+'")
    deployment = Deployment()
    modifiers: list[Any] = []
    for i, (sep, part) in enumerate(parts[1:]):
        if sep == "@":
            if i != 0:
                raise ControllerError(f"{where}: the deployment @(...) comes right after the controller, before any +modifier")
            deployment = Deployment.parse(_inside(part, where), where)
            continue
        text = part.strip()
        name, _, rest = text.partition("(")
        name = name.strip()
        if name not in MODIFIERS:
            raise ControllerError(f"{where}: unknown modifier '+{name}'; known: {', '.join('+' + m for m in MODIFIERS)}")
        if rest and not rest.rstrip().endswith(")"):
            raise ControllerError(f"{where}: +{name}: expected +{name}(param=value, ...)")
        mparams = _kwargs(rest.rstrip()[:-1], f"{where}: +{name}") if rest else {}
        if any(type(m).__name__.lower() == name for m in modifiers):
            raise ControllerError(f"{where}: +{name} given twice")
        modifiers.append(MODIFIERS[name](mparams, where))
    inner = make_inner(base, **params)
    if isinstance(inner, Deployed):
        raise ControllerError(f"{where}: a deployment cannot be nested")
    return Deployed(inner, deployment, tuple(modifiers))
