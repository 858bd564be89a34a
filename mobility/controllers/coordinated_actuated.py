"""``coordinated-actuated``: a "dynamic green wave": the green-wave plan as the backbone, with
actuated early return and extension within it, the way coordinated corridors run in practice.

Source: the coordinated-actuated operation of NEMA-style controllers (FHWA *Traffic Signal Timing
Manual*, 2nd ed., 2015, ch. 6 "Coordination"): a background cycle with offsets, one *coordinated*
stage per signal (the arterial through movement), and *non-coordinated* stages that are actuated
inside the cycle but must end at their *force-off* points so the coordinated green starts no later
than the plan says.

The backbone is :class:`~mobility.controllers.green_wave.GreenWave`'s plan: a common cycle ``C``,
Webster splits and MAXBAND offsets (isolated Webster plans off the corridor). Per signal:

* the coordinated stage is the longest planned stage that gives the arterial through movement
  priority green (off the corridor: the longest stage);
* it ends at its force-off point, the end of its planned window in the cycle; then the
  non-coordinated stages follow in program order;
* a non-coordinated stage is skipped when none of its lanes holds a vehicle (no call); once its
  minimum green has run it ends on gap-out (no detector gap below ``max_gap_s`` on a lane whose
  every link it serves, :meth:`~mobility.network.Junction.extending_lanes`) or at its force-off
  point, whichever comes first;
* time a non-coordinated stage leaves unused returns to the coordinated stage early (*early
  return*), which then holds until its force-off: the arterial green is extended, never shortened.

On a city's own control (``keep_actuated``, the default) only the corridor is replaced:

* every signal off the corridor keeps its own program (fixed-time or vehicle-actuated), as in
  ``static``;
* when at least half of the corridor signals' own programs are vehicle-actuated (a real city
  model) and no ``cycle_s`` is given, the common cycle is the city's own: the most common cycle of
  the corridor programs (:func:`city_cycle`); a corridor signal whose own cycle differs from it by
  more than 10 % keeps its own program; at the others the stage windows are the program's own green
  durations (the city's splits, not Webster's), the offset shifted so that the coordinated stage
  starts where MAXBAND planned it;
* a corridor signal joined to a signal that keeps its own program by a link shorter than
  :data:`CLOSE_M` (60 m, :func:`close_signals`) keeps its own program too: such pairs work as one
  junction, and a coordinated half starves the other (hamburg-tavf's 2084 / 2084-A / 2084-B).

:meth:`CoordinatedActuated.report` lists the corridor signals left to their own program. Each stage
ends with the program's own transition phases (the city's yellow and all-red), not generic ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ControllerError
from ..network import SignalNetwork
from .base import Action, Controller, GreenPhase, Observation, Safety, TimingPlan, stage_positions  # noqa: F401
from .coordination.greenwave import corridor_path
from .green_wave import GreenWave

#: signals joined by a link shorter than this (m) are run alike: both coordinated or both on their own program
CLOSE_M = 60.0


def city_cycle(network: SignalNetwork, corridor: Sequence[str], min_cycle_s: float,
               max_cycle_s: float) -> tuple[float | None, set[str]]:
    """The city's own coordination cycle along ``corridor`` and the corridor signals that cannot run it.

    The cycle is the most common cycle length (s) of the corridor signals' own programs (ties: the
    longer) when at least half of them share it and it lies in ``[min_cycle_s, max_cycle_s]``;
    signals whose own cycle differs from it by more than 10 % are returned to be left to their own
    program. Otherwise ``(None, set())``: the backbone's Webster cycle for every corridor signal.
    """
    cycles = [round(network.junctions[j].cycle_s) for j in corridor]
    if not cycles:
        return None, set()
    best = max(sorted(set(cycles)), key=lambda c: (cycles.count(c), c))
    if 2 * cycles.count(best) < len(cycles) or not min_cycle_s <= best <= max_cycle_s:
        return None, set()
    return float(best), {j for j, c in zip(corridor, cycles) if abs(c - best) > 0.1 * best}


def close_signals(network: SignalNetwork, max_m: float) -> dict[str, set[str]]:
    """For every signal, the signals joined to it (either way) by a link shorter than ``max_m``: an
    exit edge of one that is, or leads directly into, an approach edge of the other, with the edge
    lengths summed (m). Such pairs work as one junction: their queues reach each other's stop line."""
    approach: dict[str, set[str]] = {}
    exits: dict[str, set[str]] = {}
    for jid, j in network.junctions.items():
        for lk in j.links:
            approach.setdefault(network.lanes[lk.in_lane].edge, set()).add(jid)
            exits.setdefault(jid, set()).add(network.lanes[lk.out_lane].edge)
    g = network.graph
    out: dict[str, set[str]] = {jid: set() for jid in network.junctions}
    for a, edges in exits.items():
        for e in edges:
            if e not in g:
                continue
            d = float(g.nodes[e]["length"])
            near = [(b, d) for b in approach.get(e, ())]
            near += [(b, d + float(g.nodes[f]["length"])) for f in g.successors(e) for b in approach.get(f, ())]
            for b, dist in near:
                if b != a and dist < max_m:
                    out[a].add(b)
                    out[b].add(a)
    return out


class CoordinatedActuated(Controller):
    """Green-wave backbone with actuated early return / extension.

    Parameters
    ----------
    path, design_speed_m_s, weight_inbound, cycle_s, saturation_flow_vph_per_lane,
    lost_time_s_per_phase, min_cycle_s, max_cycle_s, objective, keep_actuated: as for ``green-wave`` (the backbone
    plan), except the defaults ``weight_inbound=1`` and ``objective="maxband"``: balanced two-way
    bands, which early return widens in both directions.
    min_green_s: minimum green of every stage (s), default 7 (also Webster's minimum green).
    max_gap_s: a non-coordinated green is extended while the detector gap of a lane it serves with
        every link of the lane is below this (s), default 3.
    detector_distance_m: induction loops this far upstream of each stop line (m), default 30.
    keep_actuated: default True: replace only the corridor signals and leave the others (and the
        corridor signals that cannot run the common cycle, see the module docstring) to their own
        program; False: isolated Webster plans off the corridor and every corridor signal coordinated.

    After :meth:`reset`: ``kept_`` (corridor signals left to their own program).
    """

    name = "coordinated-actuated"
    description = "Dynamic green wave: green-wave cycle/offsets with actuated early return and force-offs."
    decision_interval_s = 1.0
    needs_demand = True

    def __init__(self, path: Sequence[str] | None = None, design_speed_m_s: float | Sequence[float] | None = None,
                 weight_inbound: float = 1.0, cycle_s: float | None = None,
                 saturation_flow_vph_per_lane: float = 1800.0, lost_time_s_per_phase: float = 4.0,
                 min_green_s: float = 7.0, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0,
                 max_gap_s: float = 3.0, detector_distance_m: float = 30.0, objective: str = "maxband",
                 keep_actuated: bool = True) -> None:
        super().__init__(path=path, design_speed_m_s=design_speed_m_s, weight_inbound=weight_inbound,
                         cycle_s=cycle_s, saturation_flow_vph_per_lane=saturation_flow_vph_per_lane,
                         lost_time_s_per_phase=lost_time_s_per_phase, min_green_s=min_green_s,
                         min_cycle_s=min_cycle_s, max_cycle_s=max_cycle_s, max_gap_s=max_gap_s,
                         detector_distance_m=detector_distance_m, objective=objective, keep_actuated=keep_actuated)
        for p in ("max_gap_s", "detector_distance_m"):
            v = self._params[p]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise self._param_error(p, "a positive number", v)
        # phase-level control serves the network program's stages: no mirrored (lead-lag) programs
        self._backbone_params = {**{k: v for k, v in self._params.items() if k not in ("max_gap_s", "detector_distance_m")},
                                 "lead_lag": False}
        GreenWave(**self._backbone_params)  # validates the backbone parameters now
        self._plans: dict[str, dict[str, Any]] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._off: list[str] = []
        self._cycle = float("nan")
        self.kept_: list[str] = []

    def detectors(self) -> float:
        return float(self._params["detector_distance_m"])

    def safety(self) -> Safety:
        # stage ends are this controller's decisions (force-offs); the actuator keeps min green
        return Safety(min_green_s=float(self._params["min_green_s"]), max_green_s=float("inf"))

    def reset(self, network: SignalNetwork, seed: int) -> None:
        params = dict(self._backbone_params)
        keep = bool(self._params["keep_actuated"])
        own: set[str] = set()
        if keep and params["cycle_s"] is None:
            route = corridor_path(network, params["path"], owner=self.name).junctions
            actuated = network.vehicle_actuated()
            if 2 * sum(j in actuated for j in route) >= len(route):  # mostly the city's own actuated control
                cycle, own = city_cycle(network, route, float(params["min_cycle_s"]), float(params["max_cycle_s"]))
                params["cycle_s"] = cycle
        city = params["cycle_s"] is not None and self._params["cycle_s"] is None
        gw = GreenWave(**params)
        gw.reset(network, seed)
        assert gw.plan_ is not None and gw.bandwidth_ is not None
        plans = {jid: TimingPlan(t.greens_s, gw.bandwidth_.offsets_s.get(jid, 0.0)) for jid, t in gw.plan_.timings.items()}
        c = gw.plan_.corridor
        corridor = set(c.junctions)
        # with keep_actuated, only the corridor is replaced: every other signal keeps its own program
        if keep:  # a corridor signal tied to a kept one by a short link runs with it, on its own program
            near = close_signals(network, CLOSE_M)
            others = set(network.junction_ids) - corridor
            own |= {j for j in corridor if near[j] & others}
        kept = (set(network.junction_ids) - corridor) | own if keep else set()
        plans = {jid: plan for jid, plan in plans.items() if jid not in kept}
        self.kept_ = sorted(own)
        through = {jid: set(c.outbound.links[i]) for i, jid in enumerate(c.junctions)}
        self._plans, self._state = {}, {}
        self._off, self._cycle = sorted(set(plans) - corridor), float(gw.plan_.cycle_s)
        for jid, plan in plans.items():
            j = network.junctions[jid]
            greens = j.green_phases
            # transition time after each stage: the program's non-stage phases up to the next stage
            trans = []
            for k, gi in enumerate(greens):
                nxt = greens[(k + 1) % len(greens)]
                i, t = (gi + 1) % len(j.phases), 0.0
                while i != nxt:
                    t += j.phases[i].duration
                    i = (i + 1) % len(j.phases)
                trans.append(t)
            g = np.asarray(plan.greens_s, dtype=float)
            starts = np.concatenate([[0.0], np.cumsum(g + np.asarray(trans))[:-1]])
            cycle = float((g + np.asarray(trans)).sum())
            if jid in corridor:
                prio = [k for k, gi in enumerate(greens) if any(j.phases[gi].state[x] == "G" for x in through[jid])]
            else:
                prio = []
            coord = max(prio or range(len(greens)), key=lambda k: g[k])
            if city and jid in corridor:  # the city's own splits, its coordinated stage starting as planned
                g_own = np.array([j.phases[gi].duration for gi in greens], dtype=float)
                starts_own = np.concatenate([[0.0], np.cumsum(g_own + np.asarray(trans))[:-1]])
                if abs(float((g_own + np.asarray(trans)).sum()) - cycle) < 0.5:
                    plan = TimingPlan(tuple(g_own), (plan.offset_s + starts[coord] - starts_own[coord]) % cycle)
                    g, starts = g_own, starts_own
            served, extending = stage_positions(j, j.served_lanes()), stage_positions(j, j.extending_lanes())
            self._plans[jid] = {"cycle": cycle, "offset": plan.offset_s, "coord": coord,
                                "force_off": (starts + g) % cycle, "served": served, "extending": extending}
            self._state[jid] = {"target": coord, "prev_p": None}

    def act(self, observation: Observation) -> Mapping[str, Action]:
        prm = self._params
        out: dict[str, Action] = {}
        for jid, o in observation.junctions.items():
            plan, st = self._plans.get(jid), self._state.get(jid)
            if plan is None or st is None:
                continue
            cycle, coord, served = plan["cycle"], plan["coord"], plan["served"]
            p = (observation.time_s - plan["offset"]) % cycle
            end_coord = plan["force_off"][coord]
            rel = (p - end_coord) % cycle  # time since the coordinated force-off point
            target = st["target"]
            if o.green == target and o.time_in_phase_s >= prm["min_green_s"] - 1e-9:
                if target == coord:
                    crossed = st["prev_p"] is not None and rel < (st["prev_p"] - end_coord) % cycle
                    if crossed:  # force-off of the coordinated stage: serve the stages with a call
                        target = self._next_with_call(o, served, coord, coord, rel, plan)
                else:
                    if o.detector_gap_s.size != len(o.lanes):
                        raise ControllerError(f"controller '{self.name}': junction '{jid}' has no detector readings; "
                                              "run it through mobility.run/compare, which places the detectors")
                    rel_force = (plan["force_off"][target] - end_coord) % cycle
                    gap_out = not bool((o.detector_gap_s[plan["extending"][target]] < prm["max_gap_s"]).any())
                    if gap_out or rel >= rel_force:
                        target = self._next_with_call(o, served, target, coord, rel, plan)
            st["target"], st["prev_p"] = target, p
            out[jid] = GreenPhase(int(target))
        return out

    def report(self) -> dict[str, Any]:
        """The corridor, the common cycle and the corridor signals left to their own program."""
        return {"corridor": sorted(self._plans.keys() - set(self._off)), "cycle_s": self._cycle,
                "kept_own_program": list(self.kept_)}

    @staticmethod
    def _next_with_call(o: Any, served: list[np.ndarray], current: int, coord: int, rel: float,
                        plan: dict[str, Any]) -> int:
        """The next non-coordinated stage after ``current`` (in program order, before the coordinated
        stage comes round again) that has a call and whose force-off is still ahead; otherwise the
        coordinated stage (early return)."""
        n, cycle, end_coord = len(served), plan["cycle"], plan["force_off"][coord]
        k = (current + 1) % n
        while k != coord:
            if o.count_veh[served[k]].sum() > 0 and rel < (plan["force_off"][k] - end_coord) % cycle:
                return k
            k = (k + 1) % n
        return coord
