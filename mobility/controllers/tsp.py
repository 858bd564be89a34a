"""Transit signal priority: the ``+tsp`` modifier (``static+tsp``, ``max-pressure@(J2)+tsp(max_extension_s=20)``).

Buses and trams (vehicles of the given SUMO vehicle ``classes``) are seen on the approach to a
treated signal, from ``checkin_m`` upstream of its stop line (check-in) until they cross it
(check-out). SUMO reports each one's next signal and the link it will use there (``getNextTLS``: the
in-lane → next lane of its route), so the stage serving it is the one that shows that link green,
in any program (the network's, one loaded from an additional file, a controller's plan).

One request per junction at a time (the first vehicle to check in); a vehicle that will dwell at a
scheduled stop before the stop line (or is dwelling there) does not check in, and an active request
pauses while its vehicle has a stop ahead of the signal or dwells (its arrival is not predictable).

* **Green extension** (``extension=True``): the vehicle's link is green but its green would end
  (the current phase and any following ones that keep it green)
  before it arrives (arrival estimated as ``distance / max(speed, 5 m/s)`` plus 2 s): the green is
  held until then, at most ``max_extension_s`` past its programmed end, and only if that suffices.
* **Early green** (``early_green=True``): its link is not green: each green phase that does not
  serve it is cut to ``min_green_s`` of green (at once if it has run that long) until a phase that
  serves it comes; the program's yellow and red phases run in full.

Both go through the actuator (:class:`~mobility.controllers.base.PhaseRemaining` on junctions a SUMO
program drives, :class:`~mobility.controllers.base.GreenPhase` on junctions the actuator drives phase
by phase): yellow, clearance red and minimum green stay as safe as without priority.

**Events and seconds saved.** A priority event is a request on which the signal timing was
actually changed (a hold or a cut). At check-out its ``saved_s`` is a counterfactual estimate: the
time from the vehicle's crossing to the next moment its link would have shown green in the
*unaltered* program (the program as it ran when the event began, its current phase ending when
it was due to, the following phases with their programmed durations); 0 if the link would have
been green then as well. Without priority the vehicle could not have crossed before that moment,
so this is a lower bound on its saving at that signal that ignores queues ahead of it. It is only
defined where a SUMO program runs the junction (``NaN`` under phase-by-phase controllers such as
``max-pressure``, whose next green is not known in advance); for SUMO's actuated programs the
programmed durations stand in for what the detectors would have made of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ControllerError
from ..fields import is_number_in
from .base import Action, GreenPhase, Observation, PhaseRemaining, TransitVehicle

#: default vehicle classes that get priority
TRANSIT_CLASSES = ("bus", "tram", "rail_urban")
_GREEN = "Gg"
#: speed (m/s) below which an approaching vehicle's arrival is estimated at this speed
_ETA_SPEED = 5.0
_MARGIN_S = 2.0


def _vclasses() -> frozenset[str]:
    from sumolib.net.lane import SUMO_VEHICLE_CLASSES

    return frozenset(SUMO_VEHICLE_CLASSES)


@dataclass(frozen=True)
class Tsp:
    """``+tsp(max_extension_s=15, early_green=true, extension=true, checkin_m=150, min_green_s=5,
    classes="bus,tram,rail_urban")``: transit signal priority (see the module docstring).
    ``max_extension_s``: longest hold of a green past its programmed end (s); ``checkin_m``: distance
    upstream of the stop line at which a vehicle checks in (m); ``min_green_s``: green a conflicting
    phase keeps when cut short (s); ``classes``: SUMO vehicle classes that get priority."""

    max_extension_s: float = 15.0
    early_green: bool = True
    extension: bool = True
    checkin_m: float = 150.0
    min_green_s: float = 5.0
    classes: tuple[str, ...] = TRANSIT_CLASSES

    @staticmethod
    def from_params(params: dict[str, Any], where: str) -> Tsp:
        known = {"max_extension_s", "early_green", "extension", "checkin_m", "min_green_s", "classes"}
        unknown = set(params) - known
        if unknown:
            raise ControllerError(f"{where}: +tsp: unknown parameter {sorted(unknown)[0]!r}; expected "
                                  f"{', '.join(sorted(known))}")
        p = {k.lower() if isinstance(k, str) else k: v for k, v in params.items()}
        for k in ("early_green", "extension"):
            v = p.get(k, True)
            if isinstance(v, str) and v.lower() in ("true", "false"):
                v = v.lower() == "true"
            if not isinstance(v, bool):
                raise ControllerError(f"{where}: +tsp {k}: expected true or false, got {v!r}")
            p[k] = v
        for k, lo, what in (("max_extension_s", 0.0, "a duration in s >= 0"), ("checkin_m", 1e-9, "a positive distance in m"),
                            ("min_green_s", 0.0, "a duration in s >= 0")):
            v = p.get(k, getattr(Tsp, k))
            if not is_number_in(v, lo):
                raise ControllerError(f"{where}: +tsp {k}: expected {what}, got {v!r}")
            p[k] = float(v)
        cls = p.get("classes", TRANSIT_CLASSES)
        if isinstance(cls, str):
            cls = tuple(c.strip() for c in cls.split(",") if c.strip())
        if not isinstance(cls, (tuple, list)) or not cls or not all(isinstance(c, str) for c in cls):
            raise ControllerError(f"{where}: +tsp classes: expected SUMO vehicle classes such as \"bus,tram\", got {cls!r}")
        bad = [c for c in cls if c not in _vclasses()]
        if bad:
            raise ControllerError(f"{where}: +tsp classes: {bad[0]!r} is not a SUMO vehicle class; expected e.g. "
                                  "bus, tram, rail_urban, coach")
        p["classes"] = tuple(dict.fromkeys(cls))
        if not (p["early_green"] or p["extension"]):
            raise ControllerError(f"{where}: +tsp: early_green and extension are both false; expected at least one")
        return Tsp(**p)

    def label(self) -> str:
        default = Tsp()
        parts = []
        for k in ("max_extension_s", "early_green", "extension", "checkin_m", "min_green_s"):
            v = getattr(self, k)
            if v != getattr(default, k):
                parts.append(f"{k}={str(v).lower() if isinstance(v, bool) else format(v, 'g')}")
        if self.classes != default.classes:
            parts.append(f"classes=\"{','.join(self.classes)}\"")
        return "+tsp" + (f"({','.join(parts)})" if parts else "")

    def sumo_options(self) -> list[str]:
        return []


@dataclass
class PriorityEvent:
    """One priority event (see the module docstring); times in s of the simulation clock."""

    vehicle_id: str
    vclass: str
    junction_id: str
    link_index: int
    kind: str  # "extension" | "early_green"
    #: what ran the junction: "fixed" (a fixed-time SUMO program), "actuated" (a SUMO program with
    #: phases between min and max durations), "phase" (the actuator, phase by phase)
    program: str
    checkin_s: float
    action_s: float
    pass_s: float = math.nan
    #: seconds the held green ran past its programmed end (extension) or of green cut from
    #: conflicting phases (early green), as requested
    changed_s: float = 0.0
    saved_s: float = math.nan
    #: counterfactual program: (start of the current phase's programmed end, phase index, phases)
    _cf: tuple[float, int, tuple[Any, ...]] | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {"vehicle_id": self.vehicle_id, "vclass": self.vclass, "junction_id": self.junction_id,
                "link_index": self.link_index, "kind": self.kind, "program": self.program, "checkin_s": self.checkin_s,
                "action_s": self.action_s, "pass_s": self.pass_s, "changed_s": self.changed_s,
                "saved_s": self.saved_s}


def next_green_s(t: float, link: int, anchor_s: float, phase: int, phases: Sequence[Any]) -> float:
    """In a program whose phase ``phase`` ends at ``anchor_s`` and whose later phases run with their
    programmed durations: the first time >= ``t`` at which ``link`` shows green (``t`` itself if it
    is green then). Phases before ``anchor_s`` count from the current one only (its start is not
    needed: a time before ``anchor_s`` lies in it)."""
    n = len(phases)
    cycle = sum(float(p.duration) for p in phases)
    if n == 0 or cycle <= 0 or not any(p.state[link] in _GREEN for p in phases if link < len(p.state)):
        return math.inf
    end, k = anchor_s, phase % n
    if t < end:
        if link < len(phases[k].state) and phases[k].state[link] in _GREEN:
            return t
    # walk the phases that follow; skip whole cycles at once
    start = end
    if t > start + cycle:
        start += math.floor((t - start) / cycle) * cycle
    for _ in range(2 * n + 1):
        k = (k + 1) % n
        p = phases[k]
        stop = start + float(p.duration)
        if link < len(p.state) and p.state[link] in _GREEN and stop > t:
            return max(start, t)
        start = stop
    return math.inf


def _green_after_s(phases: Sequence[Any], phase: int, link: int) -> float:
    """Programmed seconds of the phases after ``phase`` that keep ``link`` green without a break
    (e.g. a movement green through two stages); 0 if the next phase ends its green."""
    n, total = len(phases), 0.0
    for i in range(1, n):
        p = phases[(phase + i) % n]
        if link >= len(p.state) or p.state[link] not in _GREEN:
            break
        total += float(p.duration)
    return total


@dataclass
class _Request:
    vehicle_id: str
    vclass: str
    link: int
    checkin_s: float
    event: PriorityEvent | None = None
    programmed_end_s: float = math.nan  # extension: the green's programmed end when first held
    last_seen_s: float = math.nan


class TspLogic:
    """The per-run state of ``+tsp`` for the treated junctions of a network: turns transit sightings
    into actions, records :class:`PriorityEvent` s."""

    def __init__(self, tsp: Tsp, network: Any, treated: Sequence[str]) -> None:
        self.tsp = tsp
        self.net = network
        self.treated = set(treated)
        self.requests: dict[str, _Request] = {}
        self.events: list[PriorityEvent] = []
        #: per junction and link, the green phases (index into ``green_phases``) serving it, 'G' first
        self._serving: dict[tuple[str, int], list[int]] = {}
        self._inner: Mapping[str, Action] = {}

    def _stages(self, jid: str, link: int) -> list[int]:
        key = (jid, link)
        if key not in self._serving:
            j = self.net.junctions[jid]
            greens = j.green_phases
            prio = [g for g, pi in enumerate(greens) if link < len(j.phases[pi].state) and j.phases[pi].state[link] == "G"]
            perm = [g for g, pi in enumerate(greens) if link < len(j.phases[pi].state) and j.phases[pi].state[link] == "g"]
            self._serving[key] = prio + perm
        return self._serving[key]

    def act(self, obs: Observation, inner: Mapping[str, Action] | None = None) -> dict[str, Action]:
        """Priority actions at this decision; ``inner``: the inner controller's actions of this
        decision (under phase control a green is held only against a request to leave it)."""
        t = obs.time_s
        self._inner = inner or {}
        seen: dict[str, list[TransitVehicle]] = {}
        for s in obs.transit:
            if s.junction_id in self.treated and s.vclass in self.tsp.classes:
                seen.setdefault(s.junction_id, []).append(s)
        out: dict[str, Action] = {}
        # check-outs: the active vehicle no longer approaches the junction on that link
        for jid, active in list(self.requests.items()):
            mine = [s for s in seen.get(jid, ()) if s.vehicle_id == active.vehicle_id and s.link_index == active.link]
            if not mine:
                self._close(jid, active, t)
        for jid, sightings in seen.items():
            o = obs.junctions.get(jid)
            if o is None:
                continue
            req = self.requests.get(jid)
            if req is None:
                cands = sorted((s for s in sightings if s.distance_m <= self.tsp.checkin_m and not s.stop_before),
                               key=lambda s: (s.distance_m, s.vehicle_id))
                if not cands:
                    continue
                s0 = cands[0]
                req = self.requests[jid] = _Request(s0.vehicle_id, s0.vclass, s0.link_index, t)
            s = next(x for x in sightings if x.vehicle_id == req.vehicle_id)
            req.last_seen_s = t
            if s.stop_before:
                continue
            action = self._decide(t, jid, o, req, s)
            if action is not None:
                out[jid] = action
        return out

    def _close(self, jid: str, req: _Request, t: float) -> None:
        del self.requests[jid]
        ev = req.event
        if ev is None:
            return
        ev.pass_s = t
        if ev._cf is not None:
            anchor, phase, phases = ev._cf
            nxt = next_green_s(t, ev.link_index, anchor, phase, phases)
            ev.saved_s = max(0.0, nxt - t) if math.isfinite(nxt) else math.nan

    def _event(self, t: float, jid: str, req: _Request, kind: str, o: Any) -> PriorityEvent:
        if req.event is None:
            cf = (t + o.next_switch_s, o.phase, tuple(o.program)) if o.program and math.isfinite(o.next_switch_s) else None
            program = ("actuated" if any(p.min_dur < p.max_dur for p in o.program) else "fixed") if o.program else "phase"
            req.event = PriorityEvent(req.vehicle_id, req.vclass, jid, req.link, kind, program, req.checkin_s, t, _cf=cf)
            self.events.append(req.event)
        return req.event

    def _decide(self, t: float, jid: str, o: Any, req: _Request, s: TransitVehicle) -> Action | None:
        tsp, k = self.tsp, req.link
        eta = s.distance_m / max(s.speed_m_s, _ETA_SPEED) + _MARGIN_S
        if o.program:  # a SUMO program drives the junction
            state = o.state
            if k >= len(state) or "y" in state or "Y" in state:
                return None  # a transition runs in full
            phase = o.program[o.phase] if 0 <= o.phase < len(o.program) else None
            if phase is None or not any(c in _GREEN for c in phase.state):
                return None
            if state[k] in _GREEN:
                after = _green_after_s(o.program, o.phase, k)  # the following phases that keep it green
                if not tsp.extension or o.next_switch_s + after >= eta:
                    return None
                if math.isnan(req.programmed_end_s):
                    req.programmed_end_s = t + o.next_switch_s
                end = req.programmed_end_s + tsp.max_extension_s
                if t + eta - after > end + 1e-9:
                    return None  # even the longest hold would not get it through: leave the program alone
                ev = self._event(t, jid, req, "extension", o)
                ev.changed_s = max(ev.changed_s, t + eta - after - req.programmed_end_s)
                return PhaseRemaining(eta - after)
            if not tsp.early_green:
                return None
            rest = max(tsp.min_green_s - o.time_in_phase_s, 0.0)
            if o.next_switch_s <= rest + 1e-9:
                return None  # already ending no later than a cut would make it
            ev = self._event(t, jid, req, "early_green", o)
            ev.changed_s += o.next_switch_s - rest
            return PhaseRemaining(rest)
        # the actuator drives the junction phase by phase
        stages = self._stages(jid, k)
        if not stages:
            return None
        if o.green is not None and o.green in stages:
            asked = self._inner.get(jid)
            if not isinstance(asked, GreenPhase) or asked.index == o.green:
                return None  # the inner controller keeps it green anyway
            if not tsp.extension or t - req.checkin_s > tsp.max_extension_s:
                return None
            ev = self._event(t, jid, req, "extension", o)
            ev.changed_s = t - ev.action_s
            return GreenPhase(o.green)
        if not tsp.early_green:
            return None
        self._event(t, jid, req, "early_green", o)
        return GreenPhase(stages[0])

    def finish(self, t: float) -> None:
        """Close the requests still open at the end of the run (their vehicles never crossed:
        ``pass_s`` and ``saved_s`` stay NaN)."""
        self.requests.clear()

    def table_rows(self) -> list[dict[str, Any]]:
        return [e.row() for e in self.events]


def merge(inner: Mapping[str, Action], priority: Mapping[str, Action]) -> dict[str, Action]:
    """The inner controller's actions with priority actions taking precedence at their junctions;
    a plan or program change by the inner controller still goes through (its next phase is then
    held or cut at the next decision)."""
    out = dict(inner)
    for jid, a in priority.items():
        if jid in out and not isinstance(out[jid], GreenPhase):
            continue
        out[jid] = a
    return out
