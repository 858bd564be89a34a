"""The signal actuator: turns controller actions into safe SUMO signal programs and states.

Controllers say *what* to serve; the actuator decides *how*:

* :class:`~mobility.controllers.GreenPhase` (phase-level control): the junction is driven state by
  state. A change of green goes green → yellow (``yellow_s``, for the movements that lose right of
  way) → clearance red (``all_red_s``) → the new green; with ``Safety.transitions="program"``,
  between two stages its own program joins, the program's own transition phases are replayed
  (:func:`transition_steps`). A green is held for at least ``min_green_s``
  (an earlier request waits until then) and ended at ``max_green_s`` (the next green in program order,
  past protected-turn tails, is served if the controller asked for nothing else).
* :class:`~mobility.controllers.TimingPlan`: a static SUMO program with the plan's green durations
  (transitions keep the network's yellow/red durations), started at the phase the offset implies.
* :class:`~mobility.controllers.NativeProgram`: the network's phases handed to a SUMO program type
  (``actuated``) with min/max green on the green phases.
* :class:`~mobility.controllers.base.PhaseRemaining` (transit priority on a junction its SUMO
  program drives): the program's current phase ends in the given time, accepted only on a green
  phase and never below ``min_green_s`` of green (the program's own yellow and red follow).

It never imports SUMO: it writes through a :class:`SignalPort` (the simulation session).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .controllers.base import Action, GreenPhase, NativeProgram, PhaseRemaining, Safety, SiteSafety, TimingPlan
from .errors import SimulationError
from .network import Junction, Phase, SignalNetwork, states_problem

_GREEN = "Gg"


class SignalPort(Protocol):
    """What the actuator needs from a running simulation."""

    def set_state(self, tls: str, state: str) -> None: ...

    def get_state(self, tls: str) -> str: ...

    def set_program(self, tls: str, program_id: str, kind: str, phases: list[Phase],
                    params: Mapping[str, str], phase_index: int, remaining_s: float | None) -> None: ...

    def get_phase_spent(self, tls: str) -> float: ...

    def set_phase_remaining(self, tls: str, remaining_s: float) -> None: ...


def yellow_state(old: str, new: str) -> str:
    """Movements green in ``old`` but not in ``new`` turn yellow; the rest keep ``old``'s red/green."""
    out = []
    for a, b in zip(old, new):
        if a in _GREEN and b not in _GREEN:
            out.append("y")
        elif a in _GREEN:
            out.append("g" if "g" in (a, b) else "G")
        else:
            out.append(a if a in "sOo" else "r")
    return "".join(out)


def clearance_state(old: str, new: str) -> str:
    """Only movements green in both ``old`` and ``new`` keep green; everything else is red."""
    out = []
    for a, b in zip(old, new):
        if a in _GREEN and b in _GREEN:
            out.append("g" if "g" in (a, b) else "G")
        else:
            out.append(b if b in "sOo" else "r")
    return "".join(out)


def program_yellow_s(j: Junction) -> float:
    """The longest yellow phase (a phase showing ``y``/``Y``) of the junction's program (s), 0 if none."""
    return max((p.duration for p in j.phases if "y" in p.state or "Y" in p.state), default=0.0)


def junction_yellow_s(j: Junction, safety: Safety) -> float:
    """The yellow of a generic transition at ``j`` (s): ``safety.yellow_s``, or at least the longest
    yellow of the junction's own program with ``program_yellow`` or ``transitions="program"``."""
    if safety.program_yellow or safety.transitions == "program":
        return max(safety.yellow_s, program_yellow_s(j))
    return safety.yellow_s


def _no_green_to_red(states: list[str]) -> bool:
    """No link goes from green straight to red (or stop) between consecutive states."""
    return not any(a in _GREEN and b in "rs" for s0, s1 in zip(states, states[1:]) for a, b in zip(s0, s1))


def transition_steps(j: Junction, frm: int | None, to: int, from_state: str, safety: Safety) -> list[tuple[str, float]]:
    """The signal states (state, seconds) shown between green ``from_state`` (stage ``frm`` of
    ``j.green_phases``, or None when taking over from a running program) and stage ``to``.

    With ``safety.transitions == "program"`` and a program that goes from ``frm`` to ``to`` directly
    (:meth:`Junction.transition`), its own phases, each yellow at least ``safety.yellow_s``: the
    site's intergreens, clearance tails (a protected left finishing) and red-amber, as the city runs
    them. Otherwise yellow (:func:`junction_yellow_s`) for the movements that lose right of way,
    then ``safety.all_red_s`` of clearance red. Zero-length steps are kept (the caller skips them)."""
    target = j.phases[j.green_phases[to]].state
    if safety.transitions == "program" and frm is not None:
        path = j.transition(frm, to)
        if path is not None:
            steps = [(p.state, float(max(p.duration, safety.yellow_s)) if ("y" in p.state or "Y" in p.state) else p.duration)
                     for p in path]
            if _no_green_to_red([from_state, *(st for st, _ in steps), target]):
                return steps
    return [(yellow_state(from_state, target), junction_yellow_s(j, safety)),
            (clearance_state(from_state, target), safety.all_red_s)]


def transition_time_s(j: Junction, frm: int, to: int, safety: Safety) -> float:
    """How long the actuator's change from stage ``frm`` to stage ``to`` lasts (s), 0 if ``frm == to``."""
    if frm == to:
        return 0.0
    return sum(d for _, d in transition_steps(j, frm, to, j.phases[j.green_phases[frm]].state, safety))


@dataclass
class _PhaseControl:
    greens: tuple[int, ...]  # indices into junction.phases
    green: int  # index into greens being served (or being moved to)
    stage: str  # "green" | "transition"
    stage_start: float  # start of the green, or of the transition step being shown
    green_start: float
    requested: int
    state: str
    steps: list[tuple[str, float]] | None = None  # the transition being shown: (state, s)
    step: int = 0


@dataclass
class _PendingPlan:
    phases: list[Phase]
    offset_s: float
    stage: str  # "yellow" | "red"
    start: float
    from_state: str


def _position(phases: list[Phase], offset_s: float, t: float) -> tuple[int, float]:
    """Phase index and its remaining time at ``t`` for a cycle starting when ``(t - offset) % C == 0``."""
    cycle = sum(p.duration for p in phases)
    pos = (t - offset_s) % cycle
    k, acc = 0, 0.0
    while acc + phases[k].duration <= pos:
        acc += phases[k].duration
        k += 1
    return k, phases[k].duration - (pos - acc)


class Actuator:
    """Applies actions for the junctions of one run; call :meth:`tick` every step."""

    def __init__(self, network: SignalNetwork, junction_ids: list[str], safety: Safety, port: SignalPort,
                 controller_name: str = "controller", site: SiteSafety | None = None) -> None:
        self.net = network
        self.junction_ids = set(junction_ids)
        #: the controller's safety lengthened to the site's floors (``site``: the scenario's, default floors)
        self.safety = safety = safety.at_least(site if site is not None else SiteSafety())
        self.port = port
        self.name = controller_name
        self.phase_ctl: dict[str, _PhaseControl] = {}
        self.pending: dict[str, _PendingPlan] = {}  # plans waiting for a yellow/clearance to end
        self.plan_count = 0
        #: yellow duration per junction (s): ``safety.yellow_s``, or with ``safety.program_yellow``
        #: at least the longest yellow phase of the junction's own program
        self.yellow_s = {jid: junction_yellow_s(network.junctions[jid], safety) for jid in junction_ids}
        if safety.transitions not in ("generic", "program"):
            raise SimulationError(f"controller '{controller_name}': Safety.transitions {safety.transitions!r}; "
                                  "expected 'generic' or 'program'")

    # -- actions -------------------------------------------------------------------------
    def apply(self, t: float, actions: Mapping[str, Action]) -> None:
        for jid, action in actions.items():
            if jid not in self.junction_ids:
                raise SimulationError(f"controller '{self.name}' returned an action for unknown junction '{jid}' at t={t:g}")
            j = self.net.junctions[jid]
            if isinstance(action, GreenPhase):
                self._green(t, j, action.index)
            elif isinstance(action, TimingPlan):
                self._plan(t, j, action)
            elif isinstance(action, NativeProgram):
                self._native(j, action)
            elif isinstance(action, PhaseRemaining):
                self._remaining(t, j, action.remaining_s)
            else:
                raise SimulationError(f"controller '{self.name}' returned {action!r} for junction '{jid}' at t={t:g}; "
                                      "expected GreenPhase, TimingPlan or NativeProgram")

    def _green(self, t: float, j: Junction, index: int) -> None:
        greens = j.green_phases
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(greens):
            raise SimulationError(f"controller '{self.name}' returned GreenPhase({index!r}) for junction '{j.id}' "
                                  f"at t={t:g}; it has {len(greens)} green phases (0..{len(greens) - 1})")
        pc = self.phase_ctl.get(j.id)
        if pc is None:  # take over from the running program
            current = self.port.get_state(j.id)
            pc = _PhaseControl(greens, index, "green", t, t, index, current)
            self.phase_ctl[j.id] = pc
            self.pending.pop(j.id, None)
            target = j.phases[greens[index]].state
            if current != target:
                self._start_transition(t, j, pc, None, index)
            else:  # writing a state hands the junction from its program to us
                self.port.set_state(j.id, current)
            return
        pc.requested = index
        self.tick_one(t, j, pc)  # act on the request now, not one step late

    def _plan(self, t: float, j: Junction, plan: TimingPlan) -> None:
        greens = j.green_phases
        if len(plan.greens_s) != len(greens) or any(g <= 0 for g in plan.greens_s):
            raise SimulationError(f"controller '{self.name}' returned a TimingPlan with greens {plan.greens_s} for "
                                  f"junction '{j.id}'; expected {len(greens)} positive durations")
        phases = list(j.phases)
        if plan.states is not None:
            problem = states_problem(j, plan.states)
            if problem:
                raise SimulationError(f"controller '{self.name}' returned a TimingPlan for junction '{j.id}' whose "
                                      f"states {problem}")
            phases = list(j.with_states(plan.states).phases)
        for gi, dur in zip(greens, plan.greens_s):
            p = phases[gi]
            phases[gi] = Phase(p.state, float(dur), float(dur), float(dur))
        self.phase_ctl.pop(j.id, None)
        current = self.port.get_state(j.id)
        k, _ = _position(phases, plan.offset_s, t)
        if any(a in _GREEN and b not in _GREEN for a, b in zip(current, phases[k].state)):
            # the plan would take right of way from a moving stream: yellow and clearance first
            self.pending[j.id] = _PendingPlan(phases, plan.offset_s, "yellow", t, current)
            self.port.set_state(j.id, yellow_state(current, phases[k].state))
            return
        self._install(t, j.id, phases, plan.offset_s)

    def _install(self, t: float, jid: str, phases: list[Phase], offset_s: float) -> None:
        self.pending.pop(jid, None)
        k, remaining = _position(phases, offset_s, t)
        self.plan_count += 1
        self.port.set_program(jid, f"mobility-plan-{self.plan_count}", "static", phases, {}, k, remaining)

    def _tick_pending(self, t: float) -> None:
        s = self.safety
        for jid, pp in list(self.pending.items()):
            if pp.stage == "yellow" and t - pp.start >= self.yellow_s[jid] - 1e-9:
                pp.stage, pp.start = "red", t
                k, _ = _position(pp.phases, pp.offset_s, t)
                if s.all_red_s > 0:
                    self.port.set_state(jid, clearance_state(pp.from_state, pp.phases[k].state))
            if pp.stage == "red" and t - pp.start >= s.all_red_s - 1e-9:
                self._install(t, jid, pp.phases, pp.offset_s)

    def _remaining(self, t: float, j: Junction, remaining_s: float) -> None:
        """End the SUMO program's current green phase in ``remaining_s`` (not below min green)."""
        if j.id in self.phase_ctl or j.id in self.pending:
            return  # the actuator drives it (or is changing its plan): nothing to shorten or hold
        state = self.port.get_state(j.id)
        if "y" in state or "Y" in state or not any(c in _GREEN for c in state):
            return  # transitions always run in full
        spent = self.port.get_phase_spent(j.id)
        rest = max(float(remaining_s), self.safety.min_green_s - spent, 0.0)
        self.port.set_phase_remaining(j.id, rest)

    def _native(self, j: Junction, action: NativeProgram) -> None:
        if action.kind != "actuated":
            raise SimulationError(f"controller '{self.name}': NativeProgram kind '{action.kind}' unsupported; expected 'actuated'")
        phases = []
        greens = set(j.green_phases)
        for i, p in enumerate(j.phases):
            if i in greens:
                dur = min(max(p.duration, action.min_green_s), action.max_green_s)
                phases.append(Phase(p.state, dur, action.min_green_s, action.max_green_s))
            else:
                phases.append(Phase(p.state, p.duration, p.duration, p.duration))
        self.phase_ctl.pop(j.id, None)
        self.pending.pop(j.id, None)
        self.port.set_program(j.id, f"mobility-{action.kind}", action.kind, phases, dict(action.params), 0, None)

    # -- phase-level state machine ---------------------------------------------------------
    def _start_transition(self, t: float, j: Junction, pc: _PhaseControl, frm: int | None, to: int) -> None:
        """Start the change from green ``frm`` (None: from whatever the program shows) to ``to``."""
        steps = transition_steps(j, frm, to, pc.state, self.safety)
        pc.green = to
        pc.requested = to
        pc.stage, pc.stage_start, pc.steps, pc.step = "transition", t, steps, 0
        if steps and steps[0][1] > 1e-9:
            self._write(j.id, pc, steps[0][0])
        else:
            self.tick_one(t, j, pc)

    def _write(self, jid: str, pc: _PhaseControl, state: str) -> None:
        if state != pc.state:
            pc.state = state
            self.port.set_state(jid, state)

    def tick(self, t: float) -> None:
        """Advance yellow/red transitions and enforce min/max green (every step)."""
        if self.pending:
            self._tick_pending(t)
        for jid, pc in self.phase_ctl.items():
            self.tick_one(t, self.net.junctions[jid], pc)

    def tick_one(self, t: float, j: Junction, pc: _PhaseControl) -> None:
        s = self.safety
        if pc.stage == "transition":
            steps = pc.steps or []
            while pc.step < len(steps) and t - pc.stage_start >= steps[pc.step][1] - 1e-9:
                pc.step += 1
                pc.stage_start = t
                if pc.step < len(steps) and steps[pc.step][1] > 1e-9:
                    self._write(j.id, pc, steps[pc.step][0])
            if pc.step < len(steps):
                return
            pc.stage, pc.stage_start, pc.green_start, pc.steps = "green", t, t, None
            self._write(j.id, pc, j.phases[pc.greens[pc.green]].state)
            return
        elapsed = t - pc.green_start
        if pc.requested != pc.green and elapsed >= s.min_green_s - 1e-9:
            self._start_transition(t, j, pc, pc.green, pc.requested)
        elif elapsed >= s.max_green_s - 1e-9:
            self._start_transition(t, j, pc, pc.green, _next_after_max_out(j, pc.green))

    def phase_status(self, jid: str, t: float) -> tuple[int | None, float] | None:
        """(green index being served or None during a transition, seconds in that stage) for a
        junction under phase-level control; None for junctions SUMO's program drives."""
        pc = self.phase_ctl.get(jid)
        if pc is None:
            return None
        if pc.stage == "green":
            return pc.green, t - pc.green_start
        return None, t - pc.stage_start


def _next_after_max_out(j: Junction, green: int) -> int:
    """The stage a max-out moves to: the next in program order that is not a protected-turn tail
    (:attr:`~mobility.network.Junction.protected_turn_tails`; the program runs those only at the end
    of the stage before them, and a controller that wants one asks for it)."""
    n, tails = len(j.green_phases), set(j.protected_turn_tails)
    later = [(green + k) % n for k in range(1, n + 1) if (green + k) % n not in tails]  # may be ``green`` again
    return later[0] if later else (green + 1) % n
