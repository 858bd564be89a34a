"""``green-wave``: Webster splits on a common cycle, offsets from MAXBAND along the arterial.

Sources: F. V. Webster (1958), *Traffic Signal Settings*, RRL Technical Paper 39 (cycle and splits,
:func:`~mobility.controllers.webster.webster_timing`); J. D. C. Little, M. D. Kelson, N. H. Gartner
(1981), "MAXBAND: a program for setting signals on arteries and triangular networks", Transportation
Research Record 795 (offsets, :func:`~mobility.controllers.coordination.greenwave.maxband`).

One plan for the whole run, designed for the busiest demand period of the corridor (the design
hour). Along the corridor (:func:`~mobility.controllers.coordination.greenwave.corridor_path`) every signal runs the common
cycle: the longest isolated Webster cycle of its signals (or ``cycle_s``), split by Webster's rule.
MAXBAND then chooses the offsets that maximise the outbound plus ``weight_inbound`` × the inbound
green band for vehicles at the design speed, taking into account when each direction's through
movement is green within the cycle (the leading arterial lefts shift one against the other).
Signals off the corridor run their isolated Webster plan, offset 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ControllerError
from .coordination.greenwave import (Bandwidth, Corridor, achieved_band, corridor_path, maxband, mirror_states, plan_phases,
                         through_green)
from ..network import Junction, SignalNetwork
from .coordination.platoon import ArterialModel, Inflow, Stage, Window as PlatoonWindow, optimise_offsets
from .base import Action, Controller, Observation, TimingPlan
from .webster import WebsterTiming, _check_params, webster_timing

#: the platoon model's parameters for SUMO's default car (see docs/controllers.md, "How green-wave
#: chooses offsets"): dispersion, partial stops and the time lost accelerating from standstill
PLATOON = {"alpha": 0.13, "beta": 0.92, "full_stop_delay_s": 6.0, "startup_s": 3.0}

#: how many of the best cycles (by the platoon model at the MAXBAND offsets) get the hill-climb
REFINE_CYCLES = 2
#: … plus every CLIMB_CYCLE_STEP-th cycle of those within capacity, each from the two MAXBAND
#: offsets and RANDOM_STARTS random offset vectors (fixed random seed)
CLIMB_CYCLE_STEP = 15
RANDOM_STARTS = 1

#: parameters passed through to :func:`webster_timing`
WEBSTER_PARAMS = ("saturation_flow_vph_per_lane", "lost_time_s_per_phase", "min_green_s", "min_cycle_s",
                  "max_cycle_s")


@dataclass(frozen=True)
class CoordinatedWebster:
    """Webster timing of a network with a common cycle along a corridor.

    ``period``: index of the demand period the plans are designed for; ``cycle_s``: the corridor's
    common cycle (s); ``timings``: per signal, its plan (common cycle on the corridor, isolated
    Webster elsewhere)."""

    corridor: Corridor
    period: int
    cycle_s: float
    timings: dict[str, WebsterTiming]


def coordinated_webster(controller: str, network: SignalNetwork, path: Sequence[str] | None,
                        cycle_s: float | None, webster: Mapping[str, float]) -> CoordinatedWebster:
    """The corridor of ``network`` and Webster plans on a common cycle along it.

    The plans are for the demand period with the most traffic through the corridor's signals. The
    common cycle is ``cycle_s`` or, if None, the longest isolated Webster cycle of the corridor."""
    demand = network.demand
    if demand is None:
        raise ControllerError(f"controller '{controller}': the network carries no demand; run it with "
                              "mobility.run or mobility.compare, which measure the demand for controllers "
                              "with needs_demand")
    corridor = corridor_path(network, path, owner=controller)
    missing = [j for j in corridor.junctions if j not in demand.link_vph]
    if missing:
        raise ControllerError(f"controller '{controller}': no demand measured for corridor signal '{missing[0]}'")
    totals = [sum(float(demand.link_vph[j][k].sum()) for j in corridor.junctions) for k in range(len(demand.periods))]
    period = max(range(len(totals)), key=totals.__getitem__)

    def timing(jid: str, cycle: float | None) -> WebsterTiming:
        return webster_timing(network.junctions[jid], demand.movement_vph(jid, period), cycle_s=cycle,
                              controller=controller, **webster)

    isolated = {jid: timing(jid, None) for jid in network.junction_ids
                if jid in demand.link_vph and network.junctions[jid].green_phases}
    common = float(cycle_s) if cycle_s is not None else max(isolated[j].cycle_s for j in corridor.junctions)
    timings = dict(isolated)
    timings.update({jid: timing(jid, common) for jid in corridor.junctions})
    return CoordinatedWebster(corridor, period, common, timings)


@dataclass(frozen=True)
class LeadLag:
    """A corridor signal's alternative program: its arterial approaches exchanged
    (:func:`~mobility.controllers.coordination.greenwave.mirror_states`), so the other direction's left turn leads, with
    its own Webster splits on the common cycle. ``junction`` carries the mirrored phases."""

    states: tuple[str, ...]
    junction: Junction
    timing: WebsterTiming


def lead_lag_alternatives(controller: str, network: SignalNetwork, plan: CoordinatedWebster,
                          webster: Mapping[str, float], max_saturation: float) -> dict[str, LeadLag]:
    """Per corridor signal that has one, its mirrored program timed by Webster on the plan's cycle
    (signals whose mirror would run a stage above ``max_saturation`` are left out)."""
    out: dict[str, LeadLag] = {}
    for jid in plan.corridor.junctions:
        states = mirror_states(network, plan.corridor, jid)
        if states is None:
            continue
        mj = network.junctions[jid].with_states(states)
        try:
            t = webster_timing(mj, network.demand.movement_vph(jid, plan.period), cycle_s=plan.cycle_s,
                               controller=controller, **webster)
        except ControllerError:
            continue
        if _timing_within_capacity(t, plan.cycle_s, max_saturation):
            out[jid] = LeadLag(states, mj, t)
    return out


Window = tuple[float, float]  # (green start s after the cycle start, green s)


def through_windows(network: SignalNetwork, plan: CoordinatedWebster, junctions: Mapping[str, Junction] | None = None
                    ) -> tuple[list[Window], list[Window]]:
    """Per corridor signal, (green start s after the cycle start, green s) of the outbound and of the
    inbound through movement under ``plan`` (inbound ``(0, cycle)`` on a one-way corridor).
    ``junctions``: signals that run another program than the network's (e.g. a lead–lag mirror)."""
    c = plan.corridor
    out, back = [], []
    for i, jid in enumerate(c.junctions):
        phases = plan_phases((junctions or {}).get(jid, network.junctions[jid]), plan.timings[jid].greens_s)
        out.append(through_green(phases, c.outbound.links[i]))
        if c.inbound is not None:
            back.append(through_green(phases, c.inbound.links[c.inbound.junctions.index(jid)]))
        else:
            back.append((0.0, plan.cycle_s))
    return out, back


def queue_clearance(network: SignalNetwork, plan: CoordinatedWebster, saturation_flow_vph_per_lane: float
                    ) -> tuple[list[float], list[float]]:
    """MAXBAND's queue clearance time (s) per corridor signal, outbound and inbound: the vehicles that
    turn into the arterial at the upstream signal in one cycle (design-period demand), per lane of
    the through movement, times the saturation headway. Zero at the first signal of a direction."""
    demand, c = network.demand, plan.corridor

    def one(d: Any) -> dict[str, float]:
        out = {d.junctions[0]: 0.0}
        for i in range(1, len(d.junctions)):
            up = network.junctions[d.junctions[i - 1]]
            exit_edges = {network.lanes[up.links[k].out_lane].edge for k in _positions(up, d.links[i - 1])}
            vph = demand.movement_vph(up.id, plan.period)
            turning_in = sum(float(q) for lk, q in zip(up.links, vph)
                             if lk.index not in d.links[i - 1] and network.lanes[lk.out_lane].edge in exit_edges)
            here = network.junctions[d.junctions[i]]
            lanes = len({here.links[k].in_lane for k in _positions(here, d.links[i])})
            out[d.junctions[i]] = turning_in * plan.cycle_s / (lanes * saturation_flow_vph_per_lane)
        return out

    q_out = one(c.outbound)
    q_in = one(c.inbound) if c.inbound is not None else {}
    return [q_out[j] for j in c.junctions], [q_in.get(j, 0.0) for j in c.junctions]


def volume_ratio(network: SignalNetwork, plan: CoordinatedWebster) -> float:
    """Inbound over outbound arterial through volume (veh/h summed over the corridor's signals, design
    period); 1 on a one-way corridor or without outbound volume."""
    c, demand = plan.corridor, network.demand
    if c.inbound is None:
        return 1.0

    def volume(d: Any) -> float:
        return sum(float(demand.movement_vph(j, plan.period)[_positions(network.junctions[j], lks)].sum())
                   for j, lks in zip(d.junctions, d.links))

    v_out = volume(c.outbound)
    return volume(c.inbound) / v_out if v_out > 0 else 1.0


def arterial_model(network: SignalNetwork, plan: CoordinatedWebster, travel_out_s: Sequence[float],
                   travel_in_s: Sequence[float], saturation_flow_vph_per_lane: float,
                   alternatives: Mapping[str, LeadLag] | None = None) -> ArterialModel:
    """The cyclic-flow-profile model (:mod:`mobility.controllers.coordination.platoon`) of the corridor's through traffic under
    ``plan`` (design-period demand). ``travel_*_s`` are the travel times between consecutive stop
    lines in outbound indexing (value ``i``: between signals ``i`` and ``i+1``), as in
    :class:`~mobility.controllers.coordination.greenwave.Bandwidth`. ``alternatives``: signals' lead–lag programs (mode 1).

    The side-street inflows keep the windows of the program as given (a mirror leaves side streets
    unchanged)."""
    c, demand = plan.corridor, network.demand
    alts = alternatives or {}
    alt_phases = {j: plan_phases(a.junction, a.timing.greens_s) for j, a in alts.items()}

    def alt_window(jid: str, links: Sequence[int]) -> PlatoonWindow | None:
        if jid not in alt_phases:
            return None
        return PlatoonWindow(*through_green(alt_phases[jid], links))

    index = {j: i for i, j in enumerate(c.junctions)}
    s = float(saturation_flow_vph_per_lane)
    phases = {j: plan_phases(network.junctions[j], plan.timings[j].greens_s) for j in c.junctions}
    vph = {j: demand.movement_vph(j, plan.period) for j in c.junctions}

    def lane_vph(jid: str, lane: str) -> float:
        return float(sum(q for lk, q in zip(network.junctions[jid].links, vph[jid]) if lk.in_lane == lane))

    def stages(d: Any, travel: Sequence[float]) -> tuple[Stage, ...]:
        out: list[Stage] = []
        for k, jid in enumerate(d.junctions):
            junction = network.junctions[jid]
            lanes = {junction.links[p].in_lane for p in _positions(junction, d.links[k])}
            group_vph = sum(lane_vph(jid, ln) for ln in lanes)
            start, green = through_green(phases[jid], d.links[k])
            if k == 0:
                out.append(Stage(index[jid], PlatoonWindow(start, green), group_vph, len(lanes) * s,
                                 alt_window=alt_window(jid, d.links[k])))
                continue
            up_id = d.junctions[k - 1]
            up = network.junctions[up_id]
            up_lanes = {up.links[p].in_lane for p in _positions(up, d.links[k - 1])}
            exits = {network.lanes[up.links[p].out_lane].edge for p in _positions(up, d.links[k - 1])}
            into = [(lk, float(q)) for lk, q in zip(up.links, vph[up_id]) if network.lanes[lk.out_lane].edge in exits]
            inflows = []
            for lane in sorted({lk.in_lane for lk, _ in into} - up_lanes):
                lks = [lk for lk, _ in into if lk.in_lane == lane]
                q = sum(v for lk, v in into if lk.in_lane == lane)
                if q > 0:
                    w0, w1 = through_green(phases[up_id], [lk.index for lk in lks])
                    inflows.append(Inflow(q, lane_vph(up_id, lane), s, PlatoonWindow(w0, w1)))
            tt = travel[index[up_id]] if d is c.outbound else travel[index[jid]]
            out.append(Stage(index[jid], PlatoonWindow(start, green), group_vph, len(lanes) * s, float(tt),
                             tuple(inflows), sum(v for _, v in into), alt_window(jid, d.links[k])))
        return tuple(out)

    dirs = {"outbound": stages(c.outbound, travel_out_s)}
    if c.inbound is not None:
        dirs["inbound"] = stages(c.inbound, travel_in_s)
    return ArterialModel(plan.cycle_s, len(c.junctions), dirs, **PLATOON)


def _positions(junction: Any, indices: Sequence[int]) -> list[int]:
    """Positions in ``junction.links`` of the links with these link indices."""
    return [k for k, lk in enumerate(junction.links) if lk.index in indices]


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def check_path(ctrl: Controller, path: Any) -> None:
    """Validate a ``path`` parameter: None or a non-empty list of ids."""
    if path is not None and (isinstance(path, str) or not isinstance(path, (list, tuple)) or not path
                             or not all(isinstance(p, str) for p in path)):
        raise ctrl._param_error("path", "None or a list of signal ids or edge ids", path)


def _within_capacity(network: SignalNetwork, plan: CoordinatedWebster, max_x: float) -> bool:
    """Every stage of every corridor signal at degree of saturation ``y C / g <= max_x``."""
    return all(_timing_within_capacity(plan.timings[j], plan.cycle_s, max_x) for j in plan.corridor.junctions)


def _timing_within_capacity(timing: WebsterTiming, cycle_s: float, max_x: float) -> bool:
    """Every stage of one plan at degree of saturation ``y C / g <= max_x``."""
    return all(g <= 0 or y * cycle_s / g <= max_x for y, g in zip(timing.flow_ratios, timing.greens_s))


class GreenWave(Controller):
    """Coordinated fixed-time plans: Webster splits on a common cycle, MAXBAND offsets.

    Parameters
    ----------
    path: the arterial, as a list of signal ids or of edge ids in the outbound direction; default
        None: the longest straight-on chain of signals in the network.
    design_speed_m_s: speed of the green band (m/s), or ``[low, high]`` to let MAXBAND pick a speed
        per link within the range; default None: 0.9 × the arterial's speed limit.
    weight_inbound: weight ``k`` of the inbound band in ``b_out + k b_in`` (MAXBAND's target ratio
        of inbound to outbound band); default None: the ratio of the inbound to the outbound
        arterial through volume in the design period (Little et al.'s usual choice).
    queue_clearance: start each band after the queue of vehicles that turned into the arterial at the
        upstream signal has cleared (MAXBAND's queue clearance time, from the demand), default False.
    cycle_s: the common cycle (s); default None: MAXBAND's variable cycle. Every whole-second cycle
        from the shortest one the minimum greens allow up to the longest isolated Webster cycle of the
        corridor is tried; cycles at which a corridor stage would run above ``max_saturation`` are
        excluded; the cycle with the best ``objective`` score wins (ties: the longer cycle).
    objective: how offsets and cycle are chosen, default ``"stops"``: the offsets (and lead–lag
        choice) that minimise the modelled stops of the arterial through traffic, both directions
        (:mod:`mobility.controllers.coordination.platoon`, TRANSYT's cyclic flow profiles). Both MAXBAND solutions below start
        TRANSYT's hill-climb (plus ``RANDOM_STARTS`` random starts from a fixed seed), on the
        ``REFINE_CYCLES`` cycles whose MAXBAND offsets model best and on every ``CLIMB_CYCLE_STEP``-th
        cycle within capacity; the plan with the fewest modelled stops wins. The bands reported are
        the ones the final offsets achieve (:func:`~mobility.controllers.coordination.greenwave.achieved_band`).
        ``"maxband"``: Little's ``b_out + k b_in`` with the target ratio ``b_in >= k b_out`` and, for
        the cycle, band efficiency ``(b_out + k b_in) / C``. ``"band-share"``: the volume-weighted
        share of each direction's entry green inside its band, ``b_out / g_out + k b_in / g_in``
        (``g``: the through green where the direction enters), without the target ratio.
    lead_lag: with ``objective="stops"``, let each corridor signal run its program mirrored (the two
        arterial approaches exchange signal states, so the other direction's left turn leads;
        :func:`~mobility.controllers.coordination.greenwave.mirror_states`) when that cuts modelled stops, with Webster splits
        for the mirrored stages; default True. Only where both approaches have the same movements and
        the mirror passes the actuator's checks (SUMO's foe matrix).
    max_saturation: highest degree of saturation ``x = y C / g`` allowed for any corridor stage when
        the cycle is chosen, default 0.9 (Webster's practical limit).
    saturation_flow_vph_per_lane, lost_time_s_per_phase, min_green_s, min_cycle_s, max_cycle_s:
        passed to :func:`~mobility.controllers.webster.webster_timing` (defaults 1800 veh/h per
        lane, 4 s, 7 s, 40 s, 150 s).

    keep_actuated: a signal off the corridor whose real program is vehicle-actuated (SUMO
        ``type="actuated"``, …) keeps it instead of an isolated Webster plan, default True (on
        real city models most programs are the city's own actuated control; the wave only needs the
        corridor's signals).

    After :meth:`reset`: ``lead_lag_`` (signals running their mirrored program), ``modelled_``
    (the platoon model's stops and delay of the plan), ``model_`` and ``modes_`` (with
    ``objective="stops"``: the :class:`~mobility.controllers.coordination.platoon.ArterialModel` of the chosen cycle and each
    corridor signal's program mode, 1 = mirrored), ``bandwidth_`` (:class:`~mobility.controllers.coordination.greenwave.Bandwidth`), ``plan_``
    (:class:`CoordinatedWebster`) and :meth:`report`.
    """

    name = "green-wave"
    description = "Webster splits on a common cycle with MAXBAND green-wave offsets along the arterial."
    decision_interval_s = None
    needs_demand = True

    def __init__(self, path: Sequence[str] | None = None, design_speed_m_s: float | Sequence[float] | None = None,
                 weight_inbound: float | None = None, queue_clearance: bool = False, cycle_s: float | None = None,
                 max_saturation: float = 0.9, objective: str = "stops", lead_lag: bool = True,
                 saturation_flow_vph_per_lane: float = 1800.0, lost_time_s_per_phase: float = 4.0,
                 min_green_s: float = 7.0, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0,
                 keep_actuated: bool = True) -> None:
        super().__init__(path=path, design_speed_m_s=design_speed_m_s, weight_inbound=weight_inbound,
                         queue_clearance=queue_clearance, cycle_s=cycle_s, max_saturation=max_saturation,
                         objective=objective, lead_lag=lead_lag,
                         saturation_flow_vph_per_lane=saturation_flow_vph_per_lane,
                         lost_time_s_per_phase=lost_time_s_per_phase, min_green_s=min_green_s,
                         min_cycle_s=min_cycle_s, max_cycle_s=max_cycle_s, keep_actuated=keep_actuated)
        if not isinstance(keep_actuated, bool):
            raise self._param_error("keep_actuated", "True or False", keep_actuated)
        check_path(self, path)
        v = design_speed_m_s
        if v is not None and not (_number(v) and v > 0) and not (  # type: ignore[operator]
                isinstance(v, (list, tuple)) and len(v) == 2 and all(_number(x) and x > 0 for x in v) and v[0] <= v[1]):
            raise self._param_error("design_speed_m_s", "None, a positive speed in m/s or [low, high]", v)
        if weight_inbound is not None and not (_number(weight_inbound) and weight_inbound >= 0):
            raise self._param_error("weight_inbound", "None or a non-negative number", weight_inbound)
        if not (_number(max_saturation) and 0 < max_saturation <= 1):
            raise self._param_error("max_saturation", "a number in (0, 1]", max_saturation)
        if objective not in ("stops", "maxband", "band-share"):
            raise self._param_error("objective", "'stops', 'maxband' or 'band-share'", objective)
        if not isinstance(lead_lag, bool):
            raise self._param_error("lead_lag", "True or False", lead_lag)
        if not isinstance(queue_clearance, bool):
            raise self._param_error("queue_clearance", "True or False", queue_clearance)
        _check_params({k: self._params[k] for k in (*WEBSTER_PARAMS, "cycle_s")}, self._param_error)
        self.plan_: CoordinatedWebster | None = None
        self.bandwidth_: Bandwidth | None = None
        self.design_speed_: float | tuple[float, float] | None = None
        self.weight_inbound_: float | None = None
        self.queue_clearance_s_: tuple[list[float], list[float]] | None = None
        self.modelled_: dict[str, float] | None = None
        self.model_: ArterialModel | None = None
        self.modes_: np.ndarray | None = None
        self.lead_lag_: list[str] = []
        self._actions: dict[str, TimingPlan] = {}

    def reset(self, network: SignalNetwork, seed: int) -> None:
        p = self._params
        webster = {k: p[k] for k in WEBSTER_PARAMS}
        plan = coordinated_webster(self.name, network, p["path"], p["cycle_s"], webster)
        c = plan.corridor
        v = p["design_speed_m_s"]
        speed: float | tuple[float, float] = (0.9 * c.outbound.speed_limit_m_s if v is None else
                                              float(v) if _number(v) else (float(v[0]), float(v[1])))
        k = float(p["weight_inbound"]) if p["weight_inbound"] is not None else volume_ratio(network, plan)
        objective = p["objective"]
        sat = p["saturation_flow_vph_per_lane"]

        def band(plan: CoordinatedWebster, share: bool) -> tuple[Bandwidth, Any]:
            """MAXBAND on a plan: Little's objective with the target ratio, or (``share``) the
            volume-weighted share of each direction's entry green inside its band."""
            out, back = through_windows(network, plan)
            queues = queue_clearance(network, plan, sat) if p["queue_clearance"] else None
            weight = k * out[0][1] / back[-1][1] if share else k
            bw = maxband(c, plan.cycle_s, [1 - g / plan.cycle_s for _, g in out],
                         [1 - g / plan.cycle_s for _, g in back], [s for s, _ in out], [s for s, _ in back],
                         speed_m_s=speed, weight_in=weight, queue_out_s=queues[0] if queues else None,
                         queue_in_s=queues[1] if queues else None, target_ratio=not share)
            return bw, queues

        def design(plan: CoordinatedWebster) -> tuple[Bandwidth, Any, float]:
            """The band of a plan and its score (higher is better)."""
            C = plan.cycle_s
            out, back = through_windows(network, plan)
            if objective == "maxband":
                bw, queues = band(plan, False)
                return bw, queues, (bw.b_out_s + k * bw.b_in_s) / C
            if objective == "band-share":
                bw, queues = band(plan, True)
                return bw, queues, bw.b_out_s / out[0][1] + k * bw.b_in_s / back[-1][1]
            # "stops": both MAXBAND solutions, scored on the platoon model; the best cycles are
            # refined by TRANSYT's hill-climb below
            bands = [band(plan, False), band(plan, True)]
            alts = (lead_lag_alternatives(self.name, network, plan, webster, p["max_saturation"])
                    if p["lead_lag"] else {})
            model = arterial_model(network, plan, bands[0][0].travel_out_s, bands[0][0].travel_in_s, sat, alts)
            starts = np.array([[b.offsets_s[j] for j in c.junctions] for b, _ in bands])
            scores = model.objective(starts)
            i = int(np.argmin(scores))
            candidates.append((float(scores[i]), plan, model, starts, bands[i][1], bands[0][0], alts))
            return bands[i][0], bands[i][1], -float(scores[i])

        candidates: list[tuple[float, CoordinatedWebster, ArterialModel, np.ndarray, Any, Bandwidth,
                               dict[str, LeadLag]]] = []
        try:
            bw, queues, best = design(plan)
        except ControllerError as e:
            if p["cycle_s"] is not None:
                raise
            first_error, bw, queues, best = e, None, None, -math.inf
        if p["cycle_s"] is None:  # MAXBAND's variable cycle, within capacity
            for C in range(int(plan.cycle_s) - 1, int(p["min_cycle_s"]) - 1, -1):
                try:
                    cand = coordinated_webster(self.name, network, p["path"], float(C), webster)
                except ControllerError:
                    break  # the minimum greens no longer fit
                if not _within_capacity(network, cand, p["max_saturation"]):
                    continue
                try:
                    cbw, cq, score = design(cand)
                except ControllerError:
                    continue
                if bw is None or score > best + 1e-9 * max(1.0, abs(best)):
                    best, plan, bw, queues = score, cand, cbw, cq
            if bw is None:
                raise first_error
        states: dict[str, tuple[str, ...]] = {}
        self.modelled_, self.model_, self.modes_ = None, None, None
        if objective == "stops":  # TRANSYT's hill-climb on the best cycles and on a spread of cycles
            ranked = sorted(candidates, key=lambda t: (t[0], -t[1].cycle_s))
            spread = sorted(candidates, key=lambda t: t[1].cycle_s)[::CLIMB_CYCLE_STEP]
            chosen = list({id(t): t for t in (*ranked[:REFINE_CYCLES], *spread)}.values())
            rng = np.random.default_rng(0)  # fixed: the plan depends on the demand only
            best_f = math.inf
            for _, cplan, model, starts, cq, bw0, alts in chosen:
                n = len(c.junctions)
                more = rng.uniform(0.0, cplan.cycle_s, (RANDOM_STARTS, n))
                modes = [[0] * n] * len(starts) + rng.integers(0, 2, (RANDOM_STARTS, n)).tolist()
                offsets, mode, f = optimise_offsets(model, [*starts, *more], modes)
                if best_f == math.inf or f < best_f - 1e-9 * max(1.0, abs(best_f)) or (
                        abs(f - best_f) <= 1e-9 * max(1.0, abs(best_f)) and cplan.cycle_s > plan.cycle_s):
                    led = {j: alts[j] for j, mo in zip(c.junctions, mode) if mo == 1}
                    timings = {**cplan.timings, **{j: a.timing for j, a in led.items()}}
                    plan = CoordinatedWebster(cplan.corridor, cplan.period, cplan.cycle_s, timings)
                    junctions = {j: a.junction for j, a in led.items()}
                    out, back = through_windows(network, plan, junctions)
                    best_f, queues, states = f, cq, {j: a.states for j, a in led.items()}
                    bw = achieved_band(c, cplan.cycle_s, out, back, dict(zip(c.junctions, offsets)),
                                       bw0.travel_out_s, bw0.travel_in_s)
                    self.model_, self.modes_ = model, mode
            assert self.model_ is not None and self.modes_ is not None and bw is not None  # one cycle was climbed
            sc = self.model_.evaluate(np.array([[bw.offsets_s[j] for j in c.junctions]]), self.modes_[None, :])
            self.modelled_ = {"stops_vph": float(sc.stops_vph[0]), "delay_veh_h_per_h": float(sc.delay_veh_h_per_h[0]),
                              **{f"stops_per_veh_{d}": float(v[0]) for d, v in sc.stops_per_veh.items()}}
        assert bw is not None  # every path above sets the band or raises
        self.plan_, self.bandwidth_, self.design_speed_, self.weight_inbound_ = plan, bw, speed, k
        self.queue_clearance_s_ = queues
        self.lead_lag_ = sorted(states)
        kept = off_corridor_actuated(network, c.junctions) if p["keep_actuated"] else set()
        self._actions = {jid: TimingPlan(t.greens_s, bw.offsets_s.get(jid, 0.0), states.get(jid))
                         for jid, t in plan.timings.items() if jid not in kept}

    def act(self, observation: Observation) -> Mapping[str, Action]:
        return {j: a for j, a in self._actions.items() if j in observation.junctions}

    def report(self) -> dict[str, Any]:
        """What the plan achieved, for recording with the results (after :meth:`reset`)."""
        if self.plan_ is None or self.bandwidth_ is None:
            raise ControllerError(f"controller '{self.name}': report() needs reset() first")
        bw, plan = self.bandwidth_, self.plan_
        return {"corridor": list(plan.corridor.junctions), "period": plan.period, "cycle_s": bw.cycle_s,
                "design_speed_m_s": self.design_speed_, "weight_inbound": self.weight_inbound_,
                "b_out_s": bw.b_out_s, "b_in_s": bw.b_in_s, "efficiency": bw.efficiency,
                "offsets_s": dict(bw.offsets_s),
                "greens_s": {j: list(plan.timings[j].greens_s) for j in plan.corridor.junctions},
                "modelled": self.modelled_, "lead_lag": list(self.lead_lag_),
                "queue_clearance_s": None if self.queue_clearance_s_ is None else
                {"outbound": self.queue_clearance_s_[0], "inbound": self.queue_clearance_s_[1]}}


def off_corridor_actuated(network: Any, corridor: Sequence[str]) -> set[str]:
    """Signals off ``corridor`` whose own program is vehicle-actuated: left to it by the coordinated
    controllers with ``keep_actuated``."""
    return network.vehicle_actuated() - set(corridor)
