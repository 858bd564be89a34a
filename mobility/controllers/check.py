"""Conformance checks for controllers: :func:`check_controller` (``mobility``'s ``check_env``).

The checks need no SUMO run: the controller is driven on synthetic observations (seeded random
queues, counts and detector gaps) of real networks, with the real signal actuator
(:mod:`mobility.signals`) in the loop and SUMO's signal programs replaced by a fixed-time stand-in.
The test suite runs them over every registered controller; researchers run them over their own::

    from mobility import check_controller
    check_controller(MyController)            # default parameters
    check_controller(MyController(alpha=2))   # or an instance with the parameters to check
"""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .base import (Action, Controller, GreenPhase, JunctionObservation, NativeProgram, Observation, SiteSafety,
                   TimingPlan)
from ..errors import SimulationError
from ..fields import is_number
from ..network import Phase, SignalNetwork, states_problem
from ..scenario import ROOT, Period
from ..signals import Actuator

#: networks the checks run on unless told otherwise
BUNDLED_NETWORKS = (ROOT / "networks" / "corridor" / "corridor.net.xml", ROOT / "networks" / "grid" / "grid.net.xml")
SUMO_MODULES = ("libsumo", "traci")
SEED = 7  # the seed given to reset() and the synthetic observations
HORIZON_S = 300.0  # synthetic seconds per episode
MAX_DECISIONS = 400


def check_controller(controller: type[Controller] | Controller, *,
                     networks: Sequence[str | Path | SignalNetwork] | None = None) -> None:
    """Check that a controller class (constructed with its defaults) or instance keeps the contract.

    Raises :class:`AssertionError` naming the first broken rule and what to do about it (parameter
    validation errors of the controller itself surface as its :class:`~mobility.errors.ControllerError`):

    1. ``name``, ``description``, ``decision_interval_s``, :meth:`~Controller.safety` and
       :meth:`~Controller.detectors` are well-formed;
    2. the constructor stores its parameters unchanged: ``get_params()`` returns the constructor's
       parameters (their defaults, for a class), as a copy, and ``type(c)(**c.get_params())`` builds
       a controller with equal parameters;
    3. importing the controller's module imports neither ``libsumo`` nor ``traci`` (checked in a
       fresh interpreter; for classes not importable by name, e.g. defined in a notebook, by
       inspecting their module's globals), and running it does not either;
    4. on each network (default: the bundled corridor and grid), over 300 synthetic seconds: ``act``
       returns a mapping of known junction ids to actions — :class:`GreenPhase` with an ``int``
       index into ``Junction.green_phases``, :class:`TimingPlan` with one positive green per green
       phase (and, if it replaces the states, states the actuator accepts: no foes green together,
       yellow before red, stages in place), :class:`NativeProgram` of kind ``"actuated"`` — that the actuator accepts;
    5. ``reset`` is deterministic: two instances reset with the same seed and fed the same
       observations return identical actions, and so does a second ``reset`` of the same instance.

    Controllers with ``needs_demand`` get a synthetic :class:`mobility.inputs.demand.Demand` (two periods,
    20-150 veh/h per link at random); if :mod:`mobility.inputs.demand` is missing, steps 4 and 5 are
    skipped with a warning.
    """
    cls = controller if isinstance(controller, type) else type(controller)
    if not issubclass(cls, Controller):
        raise AssertionError(f"check_controller: expected a mobility.controllers.Controller subclass or instance, "
                             f"got {controller!r}")
    who = f"check_controller({cls.__module__}:{cls.__qualname__})"
    if isinstance(controller, type):
        try:
            instance = cls()
        except TypeError as e:
            raise AssertionError(f"{who}: cannot construct it with default parameters ({e}); give every "
                                 "parameter a default, or pass an instance to check_controller") from None
    else:
        instance = controller
    _check_declarations(instance, who)
    params = _check_params(instance, who, defaults=isinstance(controller, type))
    _check_no_sumo_import(cls, who)
    for net in networks if networks is not None else BUNDLED_NETWORKS:
        _check_on_network(cls, params, net if isinstance(net, SignalNetwork) else SignalNetwork.load(net), who)


# -- static checks ------------------------------------------------------------------------


def _check_declarations(c: Controller, who: str) -> None:
    for attr in ("name", "description"):
        v = getattr(c, attr)
        if not isinstance(v, str) or not v.strip():
            raise AssertionError(f"{who}: class attribute '{attr}' must be a non-empty string, got {v!r}")
    dt = c.decision_interval_s
    if dt is not None and not (is_number(dt) and 0 < dt < math.inf):
        raise AssertionError(f"{who}: decision_interval_s must be None or a positive number of seconds, got {dt!r}")
    s = c.safety()
    if not (is_number(s.yellow_s) and is_number(s.all_red_s) and is_number(s.min_green_s)
            and is_number(s.max_green_s) and s.yellow_s >= 0 and s.all_red_s >= 0
            and 0 <= s.min_green_s <= s.max_green_s and math.isfinite(s.min_green_s + s.yellow_s + s.all_red_s)):
        raise AssertionError(f"{who}: safety() returned {s!r}; expected seconds with yellow_s, all_red_s >= 0 "
                             "and 0 <= min_green_s <= max_green_s")
    floor = SiteSafety()
    # an all-red of 0 asks for no clearance red of the controller's own: the site's floor applies
    # (1 s on TOML scenarios by default; on a .sumocfg model its programs' own, none on RESCO's and
    # the city models'); a positive all-red is the controller's and must reach the default floor
    for what, v, low in (("yellow", s.yellow_s, floor.yellow_s),
                         ("all-red", s.all_red_s, floor.all_red_s if s.all_red_s > 0 else 0.0)):
        if v < low:
            raise AssertionError(f"{who}: safety() asks for a {v:g} s {what}; unsafe below {low:g} s (the default "
                                 "site floor: the actuator would lengthen it; a controller may ask for longer, never "
                                 "shorter)")
    d = c.detectors()
    if d is not None and not (is_number(d) and 0 < d < math.inf):
        raise AssertionError(f"{who}: detectors() returned {d!r}; expected None or a positive distance in m")


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. arrays: ambiguous truth value
        return a is b


def _check_params(c: Controller, who: str, defaults: bool) -> dict[str, Any]:
    cls = type(c)
    p = c.get_params()
    if not isinstance(p, dict):
        raise AssertionError(f"{who}: get_params() must return a dict, got {type(p).__name__}")
    sig = list(inspect.signature(cls.__init__).parameters.values())[1:]
    named = [x for x in sig if x.kind in (x.POSITIONAL_OR_KEYWORD, x.KEYWORD_ONLY)]
    if not any(x.kind is x.VAR_KEYWORD for x in sig) and set(p) != {x.name for x in named}:
        raise AssertionError(f"{who}: get_params() returned {sorted(p)} but the constructor takes "
                             f"{[x.name for x in named]}; pass every constructor parameter to "
                             "super().__init__(name=value, ...)")
    if defaults:
        for x in named:
            if x.default is not x.empty and not _same(p.get(x.name), x.default):
                raise AssertionError(f"{who}: parameter '{x.name}' defaults to {x.default!r} but get_params() "
                                     f"returns {p.get(x.name)!r}; store parameters unchanged (validate, do not convert)")
    probe = c.get_params()
    probe["__check_controller__"] = None
    if "__check_controller__" in c.get_params():
        raise AssertionError(f"{who}: get_params() returns the controller's own dict; return a copy")
    try:
        copy = cls(**p)
    except Exception as e:  # noqa: BLE001 - any failure here is the finding
        raise AssertionError(f"{who}: type(c)(**c.get_params()) failed: {type(e).__name__}: {e}") from None
    if not all(_same(copy.get_params().get(k), v) for k, v in p.items()) or set(copy.get_params()) != set(p):
        raise AssertionError(f"{who}: type(c)(**c.get_params()) has parameters {copy.get_params()!r}, "
                             f"not {p!r}; store parameters unchanged")
    return p


def _sumo_names(namespace: Mapping[str, Any]) -> list[str]:
    """Names in a namespace bound to SUMO modules or to objects defined in them."""
    found = []
    for name, v in namespace.items():
        origin = v.__name__ if isinstance(v, ModuleType) else getattr(v, "__module__", None)
        if isinstance(origin, str) and origin.split(".")[0] in SUMO_MODULES:
            found.append(f"{name} ({origin})")
    return found


def _check_no_sumo_import(cls: type[Controller], who: str) -> None:
    mod = cls.__module__
    loaded: list[str] | None = None
    if mod not in ("__main__", "builtins") and not mod.startswith("<"):
        # a fresh interpreter: what this process has imported already does not matter
        code = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
                f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SUMO_MODULES!r})))")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        r = subprocess.run([sys.executable, "-c", code, mod], capture_output=True, text=True, env=env, timeout=300)
        if r.returncode == 0 and r.stdout.strip():
            loaded = json.loads(r.stdout.strip().splitlines()[-1])
    if loaded is None:  # not importable by name (a notebook, a script, exec'd code): inspect its globals
        spaces = [vars(sys.modules[mod])] if mod in sys.modules and mod != "builtins" else []
        spaces += [f.__globals__ for f in vars(cls).values() if inspect.isfunction(f)]
        loaded = sorted({n for ns in spaces for n in _sumo_names(ns)})
    if loaded:
        raise AssertionError(f"{who}: importing module '{mod}' imports {', '.join(loaded)}; a controller must "
                             "never import SUMO (only mobility.sim talks to it): use the Observation it receives")


# -- synthetic runs -----------------------------------------------------------------------


class _FixedTimePrograms:
    """Stands in for SUMO's signal programs (the actuator's :class:`~mobility.signals.SignalPort`):
    runs each junction's current program as fixed-time until the actuator writes states to it."""

    def __init__(self, net: SignalNetwork, jids: Sequence[str]) -> None:
        self.now = 0.0
        self.programs: dict[str, tuple[list[Phase], int, float]] = {j: (list(net.junctions[j].phases), 0, 0.0) for j in jids}
        self.states: dict[str, str] = {}  # junctions driven state by state

    def advance(self, t: float) -> None:
        self.now = t
        for j, (phases, k, start) in self.programs.items():
            while t - start >= phases[k].duration > 0:
                start += phases[k].duration
                k = (k + 1) % len(phases)
            self.programs[j] = (phases, k, start)

    def program_phase(self, tls: str) -> tuple[int, float]:
        _, k, start = self.programs[tls]
        return k, self.now - start

    def set_state(self, tls: str, state: str) -> None:
        self.states[tls] = state

    def get_state(self, tls: str) -> str:
        if tls in self.states:
            return self.states[tls]
        phases, k, _ = self.programs[tls]
        return phases[k].state

    def set_program(self, tls: str, program_id: str, kind: str, phases: list[Phase], params: Mapping[str, str],
                    phase_index: int, remaining_s: float | None) -> None:
        self.states.pop(tls, None)
        spent = phases[phase_index].duration - remaining_s if remaining_s is not None else 0.0
        self.programs[tls] = (list(phases), phase_index, self.now - spent)

    def get_phase_spent(self, tls: str) -> float:
        return self.program_phase(tls)[1]

    def set_phase_remaining(self, tls: str, remaining_s: float) -> None:
        """The current phase ends ``remaining_s`` from now (this time only, as SUMO's setPhaseDuration)."""
        phases, k, start = self.programs[tls]
        self.programs[tls] = (phases, k, self.now + remaining_s - phases[k].duration)


def _observation(net: SignalNetwork, jids: Sequence[str], t: float, actuator: Actuator,
                 programs: _FixedTimePrograms, rng: np.random.Generator, detectors: bool) -> Observation:
    """Seeded random lane readings, with the signal status the actuator and programs really show."""
    obs = {}
    for jid in jids:
        j = net.junctions[jid]
        n_in, n_out = len(j.incoming_lanes), len(j.outgoing_lanes)
        empty = rng.random(n_in) < 0.3
        count = np.where(empty, 0, rng.integers(1, 12, n_in)).astype(float)
        queue = np.floor(count * rng.random(n_in))
        limits = np.array([net.lane_speed(lane) for lane in j.incoming_lanes])
        speed = np.where(empty, limits, limits * rng.random(n_in))
        out_count = rng.integers(0, 10, n_out).astype(float)
        out_queue = np.floor(out_count * rng.random(n_out))
        never = rng.random(n_in) < 0.5  # empty lanes: no vehicle seen yet (inf) or a while ago
        gap = np.where(empty, np.where(never, np.inf, rng.uniform(5.0, 60.0, n_in)), rng.exponential(3.0, n_in)).round(1)
        status = actuator.phase_status(jid, t)
        greens = j.green_phases
        if status is not None:
            green, in_phase = status
            phase = greens[green] if green is not None else -1
        else:
            phase, in_phase = programs.program_phase(jid)
            green = greens.index(phase) if phase in greens else None
        obs[jid] = JunctionObservation(jid, j.incoming_lanes, queue, count, speed, phase, green, in_phase,
                                       j.outgoing_lanes, out_count, out_queue, gap if detectors else np.zeros(0))
    return Observation(t, obs)


def _check_actions(actions: Any, net: SignalNetwork, obs: Observation, who: str) -> None:
    at = f"act() at t={obs.time_s:g}"
    if not isinstance(actions, Mapping):
        raise AssertionError(f"{who}: {at} returned {type(actions).__name__}; expected a mapping junction id → "
                             "action (return {} to change nothing)")
    for jid, a in actions.items():
        if jid not in obs.junctions:
            raise AssertionError(f"{who}: {at} returned an action for '{jid}', which is not a junction of the "
                                 f"observation (e.g. {', '.join(list(obs.junctions)[:4])})")
        n = len(net.junctions[jid].green_phases)
        if isinstance(a, GreenPhase):
            if type(a.index) is not int or not 0 <= a.index < n:
                raise AssertionError(f"{who}: {at} returned GreenPhase({a.index!r}) for '{jid}'; expected an int "
                                     f"in 0..{n - 1} (an index into Junction.green_phases; convert numpy ints with int())")
        elif isinstance(a, TimingPlan):
            g = a.greens_s
            if not isinstance(g, tuple) or len(g) != n or not all(is_number(x) and 0 < x < math.inf for x in g) \
                    or not (is_number(a.offset_s) and math.isfinite(a.offset_s)):
                raise AssertionError(f"{who}: {at} returned {a!r} for '{jid}'; expected a tuple of {n} positive "
                                     "green durations (one per green phase, in program order) and a finite offset")
            if a.states is not None:
                problem = states_problem(net.junctions[jid], a.states) if isinstance(a.states, tuple) else \
                    f"are a {type(a.states).__name__}; expected a tuple of strings"
                if problem:
                    raise AssertionError(f"{who}: {at} returned a TimingPlan for '{jid}' whose states {problem}")
        elif isinstance(a, NativeProgram):
            if a.kind != "actuated" or not (is_number(a.min_green_s) and is_number(a.max_green_s)
                                            and 0 < a.min_green_s <= a.max_green_s < math.inf) \
                    or not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(a.params).items()):
                raise AssertionError(f"{who}: {at} returned {a!r} for '{jid}'; expected kind 'actuated', "
                                     "0 < min_green_s <= max_green_s and string parameters")
        else:
            raise AssertionError(f"{who}: {at} returned {a!r} for '{jid}'; expected GreenPhase, TimingPlan or "
                                 "NativeProgram")


def _episode(c: Controller, net: SignalNetwork, who: str) -> list[tuple[float, dict[str, Action]]]:
    """Run ``c`` for :data:`HORIZON_S` synthetic seconds; the actions it returned, by decision time."""
    rng = np.random.default_rng(SEED)
    if c.protected_turn_stages():  # as a run gives it (mobility.sim.prepare_network)
        net = net.with_turn_stages()
    try:
        c.reset(net, SEED)
    except Exception as e:  # noqa: BLE001 - any failure here is the finding
        raise AssertionError(f"{who}: reset() raised {type(e).__name__}: {e}") from e
    jids = net.junction_ids
    programs = _FixedTimePrograms(net, jids)
    actuator = Actuator(net, jids, c.safety(), programs, c.name)
    dt, detectors = c.decision_interval_s, c.detectors() is not None
    step = min(1.0, dt) if dt is not None else 1.0
    log: list[tuple[float, dict[str, Action]]] = []
    t, next_decision = 0.0, 0.0
    while t <= HORIZON_S + 1e-9 and len(log) < MAX_DECISIONS:
        if t >= next_decision - 1e-9:
            obs = _observation(net, jids, t, actuator, programs, rng, detectors)
            try:
                actions = c.act(obs)
            except Exception as e:  # noqa: BLE001
                raise AssertionError(f"{who}: act() at t={t:g} raised {type(e).__name__}: {e}") from e
            _check_actions(actions, net, obs, who)
            log.append((t, dict(actions)))
            try:
                actuator.apply(t, actions)
            except SimulationError as e:
                raise AssertionError(f"{who}: the actuator rejected the actions: {e}") from None
            if dt is None:
                break
            next_decision += dt
        t += step
        programs.advance(t)
        actuator.tick(t)
    return log


def _synthetic_demand(net: SignalNetwork) -> Any:
    """Two demand periods over the episode, 20-150 vehicles/hour per link at random: below capacity at
    every bundled junction (None: no demand module)."""
    try:
        from ..inputs.demand import Demand
    except ImportError:
        return None
    rng = np.random.default_rng(SEED)
    periods = (Period("check-1", 0.0, HORIZON_S / 2), Period("check-2", HORIZON_S / 2, HORIZON_S + 1.0))
    vph = {jid: rng.uniform(20.0, 150.0, (len(periods), len(net.junctions[jid].links))) for jid in net.junction_ids}
    return Demand(periods=periods, link_vph=vph)


def _first_difference(a: list, b: list) -> str:
    for (ta, xa), (tb, xb) in zip(a, b):
        if ta != tb or xa != xb:
            return f"at t={ta:g}: {xa!r} vs {xb!r}"
    return f"after {min(len(a), len(b))} decisions: {len(a)} vs {len(b)} decisions"


def _check_on_network(cls: type[Controller], params: dict[str, Any], net: SignalNetwork, who: str) -> None:
    where = f"{who} on {net.path.name}"
    if cls.needs_demand:
        demand = _synthetic_demand(net)
        if demand is None:
            warnings.warn(f"{where}: the controller needs demand but mobility.inputs.demand is not available; "
                          "reset/act checks skipped", stacklevel=3)
            return
        net = net.with_demand(demand)
    before = {m for m in sys.modules if m.split(".")[0] in SUMO_MODULES}
    first, other = cls(**params), cls(**params)
    a, b = _episode(first, net, where), _episode(other, net, where)
    if a != b:
        raise AssertionError(f"{where}: two instances reset with seed {SEED} and fed the same observations returned "
                             f"different actions {_first_difference(a, b)}; draw all randomness from the seed given "
                             "to reset() (e.g. numpy.random.default_rng(seed)), never from global state")
    again = _episode(first, net, where)
    if a != again:
        raise AssertionError(f"{where}: a second reset() with the same seed did not restart the controller: actions "
                             f"differ {_first_difference(a, again)}; reset() must rebuild all per-run state")
    if not before and (new := sorted(m for m in sys.modules if m.split(".")[0] in SUMO_MODULES)):
        raise AssertionError(f"{where}: reset()/act() imported {', '.join(new)}; a controller must never import SUMO")
