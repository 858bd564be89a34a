"""``webster``: fixed-time plans from the measured demand, re-planned at every demand period.

Source: F. V. Webster (1958), *Traffic Signal Settings*, Road Research Technical Paper No. 39,
HMSO, London. The optimum cycle minimising delay at an isolated fixed-time signal is

    C0 = (1.5 L + 5) / (1 − Y)                               [s]

with ``L`` the total lost time per cycle (s) and ``Y = Σ y_i`` the sum of the stages' critical flow
ratios (flow / saturation flow); the effective green ``C − L`` is shared in proportion to ``y_i``.

How this maps onto a SUMO program (see :func:`webster_timing`):

* stages are the program's green phases (``Junction.green_phases``); every other phase (yellow,
  clearance red, clearance tails where some movements keep green) is a *transition* and keeps its
  duration; ``t_i`` is the total duration of the transitions that follow stage ``i``;
* lost time ``l = lost_time_s_per_phase`` per stage (start-up loss plus the unused part of the
  clearance), ``L = n l``; the effective green of stage ``i`` is ``g_i = G_i + t_i − l``: its
  displayed green ``G_i`` plus the transitions after it, minus ``l``. So ``Σ G_i = C − T`` with
  ``T = Σ t_i``, the cycle (greens plus the program's transitions) is exactly ``C``, and if ``l``
  equals a stage's yellow + all-red the displayed green equals Webster's effective green;
* flow ratios are per lane: ``y_lane`` = (vehicles/hour on the lane's links) / saturation flow of one
  lane. A lane is served by the stages in which one of its links has priority green ('G'). When every
  lane is served by one stage, ``y_i`` is the classic maximum over the stage's lanes. When a lane is
  served by several stages (a lead or lag stage), its ratio is counted once, not in each stage:
  walking the stages in program order, ``y_i = max(0, max over lanes whose last serving stage is i of
  (y_lane − Σ y_j of the earlier stages j serving it))``. Every lane's ratio is covered by its
  stages; ``Y`` is the smallest such sum when each lane's stages are consecutive in the program
  (the lead/lag case). Lanes that only ever get permissive green ('g') do not enter ``Y``;
* minimum greens: a stage whose share would fall below ``min_green_s`` is held at the minimum, and
  its effective green counts as lost time for the other stages (``L' = L + Σ g_held``, ``Y' = Σ y``
  of the others), as for any stage of fixed length: the cycle is recomputed with ``L'`` and ``Y'``
  and the other stages share ``C − L'`` in proportion to ``y`` (so they keep a common degree of
  saturation). Stages are held in decreasing order of (effective green at the minimum) / ``y``, as
  few as needed. (Taking the minimum greens out of the other stages' shares instead starves the
  critical stage when the cycle is short.) With a forced cycle only the split changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ControllerError
from ..fields import is_number_in
from ..network import Junction, SignalNetwork
from .base import Action, Controller, Observation, TimingPlan

_ErrorFactory = Callable[[str, str, Any], ControllerError]


@dataclass(frozen=True)
class WebsterTiming:
    """A Webster plan for one junction: cycle (s), displayed green of each stage (s, in
    ``Junction.green_phases`` order) and each stage's critical flow ratio (dimensionless)."""

    cycle_s: float
    greens_s: tuple[float, ...]
    flow_ratios: tuple[float, ...]


def _error_factory(controller: str) -> _ErrorFactory:
    def make(param: str, expected: str, got: Any) -> ControllerError:
        return ControllerError(f"controller '{controller}': parameter '{param}': expected {expected}, got {got!r}")
    return make


def _check_params(p: Mapping[str, Any], error: _ErrorFactory) -> None:
    """Validate Webster parameters (those present in ``p``)."""
    rules = {"saturation_flow_vph_per_lane": (0.0, True, "a positive flow in vehicles/hour per lane"),
             "lost_time_s_per_phase": (0.0, False, "a non-negative number of seconds"),
             "min_green_s": (0.0, True, "a positive number of seconds"),
             "min_cycle_s": (0.0, True, "a positive number of seconds"),
             "max_cycle_s": (0.0, True, "a positive number of seconds"),
             "offset_s": (-math.inf, False, "a number of seconds"),
             "cycle_s": (0.0, True, "a positive number of seconds or None"),
             "resolution_s": (0.0, False, "a non-negative number of seconds"),
             "sneakers_per_cycle": (0.0, False, "a non-negative number of vehicles per cycle")}
    for name, (low, strict, expected) in rules.items():
        if name not in p or (name == "cycle_s" and p[name] is None):
            continue
        v = p[name]
        if not is_number_in(v, low, low_open=strict):
            raise error(name, expected, v)
    if "max_cycle_s" in p and "min_cycle_s" in p and p["max_cycle_s"] < p["min_cycle_s"]:
        raise error("max_cycle_s", f"at least min_cycle_s={p['min_cycle_s']!r}", p["max_cycle_s"])


def _transitions(junction: Junction) -> list[float]:
    """Duration (s) of the non-stage phases that follow each stage, up to the next stage."""
    greens = junction.green_phases
    n = len(junction.phases)
    out = []
    for k, g in enumerate(greens):
        nxt = greens[(k + 1) % len(greens)]
        span = (nxt - g - 1) % n if len(greens) > 1 else n - 1
        out.append(sum(junction.phases[(g + 1 + m) % n].duration for m in range(span)))
    return out


def _intergreens(junction: Junction) -> list[float]:
    """Per stage, the part of the transitions after it that extends its effective green (s): the
    consecutive following phases up to the first one that gives priority green ('G') to a link
    that is not priority green in the stage (e.g. a protected left-turn tail). Those later phases
    are lost time for every stage."""
    greens = junction.green_phases
    n = len(junction.phases)
    out = []
    for k, g in enumerate(greens):
        own = junction.phases[g].state
        nxt = greens[(k + 1) % len(greens)]
        span = (nxt - g - 1) % n if len(greens) > 1 else n - 1
        e = 0.0
        for m in range(span):
            ph = junction.phases[(g + 1 + m) % n]
            if any(ch == "G" and (i >= len(own) or own[i] != "G") for i, ch in enumerate(ph.state)):
                break
            e += ph.duration
        out.append(e)
    return out


def _edge_of(lane: str) -> str:
    return lane.rsplit("_", 1)[0]


def _permissive_links(junction: Junction) -> dict[int, tuple[int, list[int]]]:
    """Left turns that only ever get permissive green ('g'): position in ``junction.links`` ->
    (their stage, positions of the opposing links: priority-green links of other approaches in it)."""
    states = [junction.phases[i].state for i in junction.green_phases]
    out: dict[int, tuple[int, list[int]]] = {}
    for k, lk in enumerate(junction.links):
        if lk.direction not in ("l", "L") or any(lk.index < len(st) and st[lk.index] == "G" for st in states):
            continue
        stages = [s for s, st in enumerate(states) if lk.index < len(st) and st[lk.index] == "g"]
        if not stages:
            continue
        s = stages[0]
        edge = _edge_of(lk.in_lane)
        out[k] = (s, [m for m, o in enumerate(junction.links) if o.index < len(states[s])
                      and states[s][o.index] == "G" and _edge_of(o.in_lane) != edge])
    return out


def permissive_lane_factors(junction: Junction, link_vph: np.ndarray, timing: WebsterTiming,
                            intergreens: Sequence[float], *, saturation: float, lost_time: float,
                            sneakers_per_cycle: float, critical_gap_s: float = 4.5,
                            follow_up_s: float = 2.5) -> dict[str, float]:
    """Saturation-flow factors ``f_m`` (0–1] of lanes carrying permissive left turns under a plan.

    The HCM 2000 (ch. 16, appendix C) permissive-left model for a lane shared by left turners and
    others: the lane discharges freely until the first left turner reaches the stop line
    (``g_f = g e^{−0.882 LTC^0.717} − l``, ``LTC`` left turns per cycle); a left turner then waits
    until the opposing queue has cleared (``g_q = v_ol (C − g) / (s − v_ol)``, opposing flow per lane
    ``v_ol``), blocking the lane; in the unsaturated rest ``g_u = g − max(g_f, g_q)`` it turns in gaps
    of the opposing flow ``v_o`` at ``s_lt = v_o e^{−v_o t_c/3600} / (1 − e^{−v_o t_f/3600})``
    (critical gap ``t_c``, follow-up ``t_f``), i.e. as ``E_L = s / s_lt`` through vehicles; and
    ``sneakers_per_cycle`` clear at the end of the green::

        f_m = g_f/g + (g_u/g) / (1 + P_L (E_L − 1)) + sneakers × (1 + P_L) / g

    (HCM's last term is ``2 (1 + P_L) / g`` for its two sneakers per cycle.)

    with ``P_L`` the left turners' share of the lane. Lanes of only left turners have ``P_L = 1``.
    """
    c = timing.cycle_s
    lane_vph: dict[str, float] = {}
    for lk, q in zip(junction.links, link_vph):
        lane_vph[lk.in_lane] = lane_vph.get(lk.in_lane, 0.0) + float(q)
    permissive = _permissive_links(junction)
    lefts: dict[str, list[int]] = {}
    for k in permissive:
        lefts.setdefault(junction.links[k].in_lane, []).append(k)
    out: dict[str, float] = {}
    for lane, ks in lefts.items():
        stage, opposing = permissive[ks[0]]
        g = max(timing.greens_s[stage] + intergreens[stage] - lost_time, 1.0)
        q_left = float(sum(link_vph[k] for k in ks))
        q_lane = lane_vph[lane]
        if q_lane <= 0 or q_left <= 0:
            continue
        p_l = q_left / q_lane
        v_o = float(sum(link_vph[m] for m in opposing))
        n_o = max(len({junction.links[m].in_lane for m in opposing}), 1)
        v_ol = v_o / n_o
        g_q = min(g, v_ol * (c - g) / max(saturation - v_ol, 1.0)) if v_ol > 0 else 0.0
        ltc = q_left * c / 3600
        g_f = 0.0 if p_l >= 1.0 else max(0.0, min(g, g * math.exp(-0.882 * ltc ** 0.717) - lost_time))
        g_u = max(0.0, g - max(g_f, g_q))
        s_lt = 3600.0 / follow_up_s if v_o <= 0 else \
            v_o * math.exp(-v_o * critical_gap_s / 3600) / (1 - math.exp(-v_o * follow_up_s / 3600))
        e_l = max(1.0, saturation / max(s_lt, 1.0))
        f_m = g_f / g + (g_u / g) / (1 + p_l * (e_l - 1)) + sneakers_per_cycle * (1 + p_l) / g
        out[lane] = min(1.0, max(0.05, f_m))
    return out


def _flow_ratios(junction: Junction, link_vph: np.ndarray, saturation: float,
                 factors: Mapping[str, float] | None = None) -> list[float]:
    """Critical flow ratio of each stage, lanes counted once (see the module docstring); a lane's
    saturation flow is multiplied by its factor in ``factors`` (permissive left turns)."""
    states = [junction.phases[i].state for i in junction.green_phases]
    lane_vph: dict[str, float] = {}
    served: dict[str, set[int]] = {}
    factors = factors or {}
    for lk, q in zip(junction.links, link_vph):
        lane_vph[lk.in_lane] = lane_vph.get(lk.in_lane, 0.0) + float(q) / factors.get(lk.in_lane, 1.0)
        for s, st in enumerate(states):
            if lk.index < len(st) and st[lk.index] == "G":
                served.setdefault(lk.in_lane, set()).add(s)
    y = [0.0] * len(states)
    for s in range(len(states)):
        for lane, stages in served.items():
            if max(stages) == s:
                rest = lane_vph[lane] / saturation - sum(y[j] for j in stages if j < s)
                y[s] = max(y[s], rest)
    return y


def _round(parts: list[float], total_units: int, unit: float, min_units: int) -> list[float]:
    """Largest-remainder rounding of ``parts`` (each at least ``min_units`` units) to whole
    multiples of ``unit`` summing to ``total_units`` units."""
    units = [max(min_units, math.floor(x / unit + 1e-9)) for x in parts]
    by_remainder = sorted(range(len(parts)), key=lambda i: (units[i] - parts[i] / unit, i))
    for k in range(max(0, total_units - sum(units))):
        units[by_remainder[k % len(units)]] += 1
    return [u * unit for u in units]


def webster_timing(junction: Junction, link_vph: Sequence[float] | np.ndarray, *,
                   saturation_flow_vph_per_lane: float = 1800.0, lost_time_s_per_phase: float = 4.0,
                   min_green_s: float = 7.0, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0,
                   cycle_s: float | None = None, resolution_s: float = 1.0, sneakers_per_cycle: float = 1.0,
                   controller: str = "webster") -> WebsterTiming:
    """Webster's cycle and green splits for one junction (Webster 1958, RRL Technical Paper 39).

    Parameters
    ----------
    junction: the junction; its program's green phases are the stages, the other phases keep their
        durations.
    link_vph: vehicles/hour on each link, in ``junction.links`` order (e.g. ``Demand.movement_vph``).
    saturation_flow_vph_per_lane: saturation flow of one lane (vehicles/hour of green).
    lost_time_s_per_phase: lost time ``l`` per stage (s); ``L = n_stages × l``.
    min_green_s: minimum displayed green of every stage (s).
    min_cycle_s, max_cycle_s: bounds of the cycle (s); with ``Y >= 0.95`` the cycle is ``max_cycle_s``.
    cycle_s: if given, use this cycle (s) instead of Webster's and only split the greens (e.g. a
        common cycle for coordination).
    resolution_s: greens are whole multiples of this (s), so SUMO's steps do not stretch the cycle;
        0 keeps exact values. Rounding keeps the sum of greens, hence the cycle, to within
        ``resolution_s / 2`` (exactly, when cycle − transitions is a multiple of ``resolution_s``).
    sneakers_per_cycle: permissive left turns that clear at the end of each green (vehicles/cycle).
        HCM assumes 2; SUMO's internal junction holds one waiting left turner, hence the default 1.
        Lanes with permissive left turns (only ever 'g') get a reduced saturation flow
        (:func:`permissive_lane_factors`, HCM 2000); it depends on the plan, so plan and factors are
        iterated (factors never increasing) until they agree within 0.01.
    controller: the controller name used in error messages.

    Returns
    -------
    :class:`WebsterTiming`: ``cycle_s`` = Σ greens + the program's transitions.

    Raises :class:`ControllerError` for bad parameters, and when the cycle cannot hold every stage's
    minimum green plus the transitions ("cycle below the sum of minimum greens").
    """
    error = _error_factory(controller)
    params = dict(saturation_flow_vph_per_lane=saturation_flow_vph_per_lane,
                  lost_time_s_per_phase=lost_time_s_per_phase, min_green_s=min_green_s,
                  min_cycle_s=min_cycle_s, max_cycle_s=max_cycle_s, cycle_s=cycle_s, resolution_s=resolution_s,
                  sneakers_per_cycle=sneakers_per_cycle)
    _check_params(params, error)
    q = np.asarray(link_vph, dtype=float)
    if q.shape != (len(junction.links),):
        raise ValueError(f"junction '{junction.id}': expected {len(junction.links)} link flows, got shape {q.shape}")
    n = len(junction.green_phases)
    if n == 0:
        raise ControllerError(f"controller '{controller}': junction '{junction.id}' has no green phase to time")
    t = _transitions(junction)
    transitions = sum(t)
    e = _intergreens(junction)

    def plan(factors: Mapping[str, float]) -> WebsterTiming:
        y = _flow_ratios(junction, q, saturation_flow_vph_per_lane, factors)
        big_y = sum(y)
        lost = n * lost_time_s_per_phase + transitions - sum(e)  # phases no stage can use are lost too
        unit = resolution_s
        min_g = math.ceil(min_green_s / unit - 1e-9) * unit if unit > 0 else min_green_s
        floor_cycle = n * min_g + transitions
        bound_name, bound = ("max_cycle_s", max_cycle_s) if cycle_s is None else ("cycle_s", cycle_s)
        if floor_cycle > bound + 1e-9:
            raise error(bound_name, f"at least {floor_cycle:g} s for junction '{junction.id}' (cycle below the sum of "
                        f"minimum greens: {n} stages × {min_g:g} s + {transitions:g} s of transitions)", bound)
        weights = y if big_y > 0 else [1.0] * n
        # stages whose minimum green serves them best relative to their flow ratio are held first
        held_eff = [min_g + e[i] - lost_time_s_per_phase for i in range(n)]  # effective green at the minimum
        order = sorted(range(n), key=lambda i: (-held_eff[i] / y[i] if y[i] > 0 else -math.inf, i))
        for k in range(n):
            held = set(order[:k])
            free = [i for i in range(n) if i not in held]
            lost_eff = lost + sum(held_eff[i] for i in held)  # held stages are lost time for the others
            y_free = sum(y[i] for i in free)
            if cycle_s is None:
                cycle = max_cycle_s if y_free >= 0.95 else (1.5 * lost_eff + 5.0) / (1.0 - y_free)
                cycle = max(min(max(cycle, min_cycle_s), max_cycle_s), floor_cycle)
            else:
                cycle = float(cycle_s)
            green_total = cycle - transitions
            if unit > 0:
                green_units = max(round(green_total / unit), round(n * min_g / unit))
                green_total = green_units * unit
            share = green_total + transitions - lost_eff  # effective green of the free stages
            w_free = sum(weights[i] for i in free)
            greens = [min_g if i in held else share * (weights[i] / w_free if w_free > 0 else 1 / len(free))
                      + lost_time_s_per_phase - e[i] for i in range(n)]
            if all(greens[i] >= min_g - 1e-9 for i in free):
                break
        if unit > 0:
            greens = _round(greens, green_units, unit, round(min_g / unit))
        return WebsterTiming(transitions + sum(greens), tuple(greens), tuple(y))

    factors: dict[str, float] = {}
    timing = plan(factors)
    for _ in range(12):  # permissive lanes: factors depend on the plan; iterate, factors never increasing
        new = permissive_lane_factors(junction, q, timing, e, saturation=saturation_flow_vph_per_lane,
                                      lost_time=lost_time_s_per_phase, sneakers_per_cycle=sneakers_per_cycle)
        new = {k: min(v, factors.get(k, 1.0)) for k, v in new.items()}
        if all(abs(new[k] - factors.get(k, 1.0)) < 0.01 for k in new):
            break
        factors = new
        timing = plan(factors)
    return timing


class Webster(Controller):
    """Webster fixed-time plans per junction and demand period, from the scenario's measured demand.

    Parameters (units in the names)
    -------------------------------
    saturation_flow_vph_per_lane: saturation flow of one lane (vehicles/hour of green), default 1800.
    lost_time_s_per_phase: lost time per stage (s), default 4.
    min_green_s: minimum green of every stage (s), default 7.
    min_cycle_s, max_cycle_s: cycle bounds (s), defaults 40 and 150.
    sneakers_per_cycle: permissive left turners clearing at the end of each green, default 1 (see
        :func:`webster_timing`; lanes with permissive lefts get HCM's reduced saturation flow).
    offset_s: the first plan's cycle starts when ``(time − offset_s) % cycle == 0`` (s), default 0.

    Each demand period gets its own plan per junction (:func:`webster_timing`; the plans are in
    ``timings`` after ``reset``). The first plan starts with the run. A later period's plan takes
    over at the first decision (every 5 s) at which the junction shows a green stage with at least
    1 s of the new plan's green for that stage left: the new plan continues that green, so a change
    of plan never skips a yellow; its cycle is aligned to the start of that green.

    Limitation: one saturation flow for every lane and no heavy-vehicle equivalents; permissive
    left turns reduce their lane's saturation flow (:func:`permissive_lane_factors`).
    """

    name = "webster"
    description = "Webster (1958) fixed-time plans from the demand, re-planned per demand period."
    decision_interval_s = 5.0
    needs_demand = True

    def __init__(self, saturation_flow_vph_per_lane: float = 1800.0, lost_time_s_per_phase: float = 4.0,
                 min_green_s: float = 7.0, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0,
                 sneakers_per_cycle: float = 1.0, offset_s: float = 0.0) -> None:
        super().__init__(saturation_flow_vph_per_lane=saturation_flow_vph_per_lane,
                         lost_time_s_per_phase=lost_time_s_per_phase, min_green_s=min_green_s,
                         min_cycle_s=min_cycle_s, max_cycle_s=max_cycle_s, sneakers_per_cycle=sneakers_per_cycle,
                         offset_s=offset_s)
        _check_params(self._params, self._param_error)
        #: junction id -> one plan per demand period (set by ``reset``)
        self.timings: dict[str, list[WebsterTiming]] = {}
        self._demand: Any = None
        self._junctions: dict[str, Junction] = {}
        self._period: dict[str, int] = {}

    def reset(self, network: SignalNetwork, seed: int) -> None:
        demand = network.demand
        if demand is None:
            raise ControllerError(f"controller '{self.name}': the network carries no demand; run it with "
                                  "mobility.run, which measures the demand for controllers with needs_demand")
        p = {k: v for k, v in self._params.items() if k != "offset_s"}
        self._demand, self._period, self.timings = demand, {}, {}
        self._junctions = {jid: network.junctions[jid] for jid in network.junction_ids
                           if network.junctions[jid].green_phases and jid in demand.link_vph}
        for jid, j in self._junctions.items():
            self.timings[jid] = [webster_timing(j, demand.movement_vph(jid, k), controller=self.name, **p)
                                 for k in range(len(demand.periods))]

    def _stage_start(self, jid: str, timing: WebsterTiming, stage: int) -> float:
        """Seconds from the cycle start to the start of green ``stage`` under ``timing``."""
        j = self._junctions[jid]
        planned = dict(zip(j.green_phases, timing.greens_s))
        return sum(planned.get(i, ph.duration) for i, ph in enumerate(j.phases[:j.green_phases[stage]]))

    def act(self, observation: Observation) -> Mapping[str, Action]:
        t = observation.time_s
        k = self._demand.period_at(t)
        out: dict[str, Action] = {}
        for jid, obs in observation.junctions.items():
            plans = self.timings.get(jid)
            if plans is None:
                continue
            if jid not in self._period:  # the run's first decision: start the plan now
                first = k if k is not None else max([i for i, p in enumerate(self._demand.periods)
                                                      if p.begin_s <= t] or [0])
                self._period[jid] = first
                out[jid] = TimingPlan(plans[first].greens_s, self._params["offset_s"])
            elif k is not None and k != self._period[jid] and obs.green is not None \
                    and obs.time_in_phase_s + 1.0 <= plans[k].greens_s[obs.green]:
                self._period[jid] = k
                start = self._stage_start(jid, plans[k], obs.green)
                out[jid] = TimingPlan(plans[k].greens_s, t - obs.time_in_phase_s - start)
        return out
