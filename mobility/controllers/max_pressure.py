"""``max-pressure``: Varaiya's max-pressure control on the network's movements.

Source: P. Varaiya, "Max pressure control of a network of signalized intersections", Transportation
Research Part C 36 (2013) 177-195. Every decision interval, each junction serves the stage (green
phase) with the largest *pressure*: the sum, over the movements the stage serves, of the movement's
saturation flow times its upstream queue minus its downstream queue. The rule needs no demand
estimate and no coordination between junctions, and keeps queues bounded whenever any controller
can (it is throughput-optimal in Varaiya's store-and-forward model).

How the model's quantities are measured here (per lane, not per movement):

* a *movement* is a signal link (in-lane → out-lane). Its pressure is its upstream queue minus its
  downstream queue. By default the upstream queue is every vehicle on the in-lane (``count_veh``: in
  Varaiya's point-queue model every vehicle on a link waits for this junction's service, including
  those still approaching) and the downstream queue is the *halted* vehicles on the out-lane
  (``out_queue_veh``: vehicles moving away do not take room from the movement; a standing queue
  does). ``upstream="queue"`` / ``downstream="count"`` select the other readings. Measured on the
  bundled corridor (seed 1, full run), the default gives 51 s/veh network delay against 103 s/veh
  for the existing timing; halted-upstream minus all-downstream (the literal "queue − occupancy")
  turns green away from every movement whose exit lane is flowing: 274 s/veh and a growing backlog;
* a lane that feeds several links is one queue: each of its links is given the lane's whole queue
  (vehicles are not told apart by destination) and an equal share ``1/n`` of the lane's saturation
  flow, where ``n`` is the number of links leaving the lane. A stage serving all ``n`` links of a lane
  thus counts that lane's queue once, and its downstream term is the mean over those links' out-lanes;
* a stage serves the links that are green in it: priority green ``'G'`` and, with
  ``include_permissive=True`` (default), permissive green ``'g'`` (e.g. a left turn yielding to
  oncoming traffic);
* pure max-pressure bounds queues, not individual waits: a lane with one or two vehicles (a left-turn
  bay) can lose to busy through movements for minutes (on the corridor, left-turners waited 300 s
  and SUMO teleported them). ``max_red_s`` (default 120 s) serves any lane holding vehicles that no
  green has served for that long; ``max_red_s=None`` is the pure rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..network import SignalNetwork, short_link_plan
from .base import Action, Controller, GreenPhase, JunctionObservation, Observation, Safety


class MaxPressure(Controller):
    """Serve, at each junction, the stage with the largest pressure (Varaiya 2013).

    Parameters
    ----------
    decision_interval_s: seconds between decisions, default 5.
    min_green_s: minimum green (s) the actuator holds a stage before it may change, default 5.
    max_green_s: maximum green (s); the actuator then serves the next stage, default 90.
    include_permissive: count permissive-green (``'g'``) links as served by a stage, default True.
    permissive_weight: a permissive-green link (``'g'``: a turn yielding to a foe with priority green
        in the same stage) whose opposing priority links hold vehicles counts this fraction of its
        pressure in that stage, default 1. With 0, a turn facing an opposing queue moves (almost) nobody; it
        waits in the junction and, between two close signals, blocks the stream the other one
        waits for. The stage that protects the turn (``'G'``, the real program's protected-turn
        stage) is then chosen when the turners' pressure is high. 1: the permissive link always
        counts in full (and a protected-turn stage, with no more pressure than the stage serving
        the turn permissively, is treated as dominated by ``maximal_stages``).
    upstream: what a link's upstream queue is: ``"count"`` (default), all vehicles on its
        incoming lane, or ``"queue"``, the halted ones.
    downstream: what a link's downstream queue is: ``"queue"`` (default), halted vehicles on its
        outgoing lane, or ``"count"``, all of them.
    max_red_s: a lane holding vehicles that no green has served for this long (s) is served next
        (by the stage of highest pressure among those serving it), default 120; ``None``: never (pure
        max-pressure).
    spillback_guard: a movement whose outgoing lane is full (see :meth:`full_exits`: at least this
        fraction of its 7.5 m slots taken, one vehicle standing) adds no pressure: serving it cannot
        move anyone (the capacity-aware variant of Gregoire et al., 2015), default 0.9; ``None``: off.
    normalize: pressure from storage-relative readings (vehicles / 7.5 m slots of the lane, after
        Kouvelas et al., 2014) instead of vehicle counts, default False: it locked cologne1 (RESCO,
        ``--time-to-teleport -1``) in seed 2 (1286 vehicles never entered; 30.4 s/veh without it). A queue that fills an 11 m
        lane before a junction weighs as much as one that fills a 200 m lane (on real networks the
        lanes in front of many stop lines are short pieces of a longer approach).
    maximal_stages: never choose a stage whose green links are contained in another stage's or
        repeat an earlier stage's (intermediate phases of real programs), default True.
    cyclic: serve stages in program order (the cyclic variant of Le et al., 2015): the current stage
        is held while it has positive pressure within ``switch_margin`` of the largest, then the next
        stage in order with positive pressure is served. Every stage with demand is reached within
        one round of maximum greens. Default False.
    switch_margin: the current stage is kept unless another's pressure exceeds it by more than this
        (vehicles, or storage fractions with ``normalize``), default 0: the switching cost.
    yellow_s, all_red_s: the transition the actuator inserts at each change (s), default 3 and 2.
        ``all_red_s=0`` (what the real programs of the city models, SUMO's generated programs and
        RESCO do) roughly halves max-pressure's delay on hamburg-tavf and the Cologne maps; not
        the default until it is shown not to lock a junction under ``--time-to-teleport -1`` over
        several seeds (docs/benchmarks.md).
    program_yellow: each junction's yellow lasts at least its own program's longest yellow phase
        (5 s at cologne1's and ingolstadt's wide junctions), default False.
    transitions: ``"program"``: between two stages the junction's own program joins, the actuator
        replays the program's transition phases (its yellows, intergreens, clearance tails) instead
        of ``yellow_s`` + ``all_red_s`` (:class:`~mobility.controllers.Safety`); ``"generic"``: always
        yellow + all-red. Default ``"generic"``.
    approach_m: the upstream queue of an incoming lane counts the unsignalised lanes feeding it up to
        this distance from the stop line (m; :meth:`mobility.network.SignalNetwork.approach`), so
        that a queue standing behind a short lane in front of the stop line is seen. ``None``: the
        incoming lane only. Default ``None``.
    switch_cost: change stage only when the pressure gained outweighs the time the change loses:
        with ``L`` the transition's duration (s) and ``H = L + min_green_s`` the shortest commitment
        a change buys, serve stage ``b`` instead of the current ``a`` only if
        ``p_b (H - L) > p_a H`` (the vehicles ``b`` would move in ``H`` against those ``a`` moves in
        ``H``, at equal saturation flow). Default False.
    coupled: signals joined by a short link (room for two standing vehicles) whose programs run the
        same phases in lockstep (:func:`mobility.network.coupled_signals`: in the field, one controller) decide
        together: each stage's pressure is summed over the group, and every member serves the stage
        chosen. Signals joined by a short link whose programs differ are left to their own program
        (how the two are coordinated is not known). Default True.
    keep_actuated: a junction whose real program is vehicle-actuated (SUMO ``type="actuated"``, …:
        the city's own demand-responsive control, e.g. 40 of hamburg-tavf's 43) is left to it, as
        ``cycle-adaptive`` does; max-pressure drives the fixed-time ones. Default False.

    Ties (including "no vehicles anywhere") keep the current green.
    """

    name = "max-pressure"
    description = "Varaiya's max-pressure: serve the stage with the largest upstream-minus-downstream queue."

    def __init__(self, decision_interval_s: float = 5.0, min_green_s: float = 5.0, max_green_s: float = 90.0,
                 include_permissive: bool = True, upstream: str = "count", downstream: str = "queue",
                 max_red_s: float | None = 120.0, spillback_guard: float | None = 0.9, normalize: bool = False,
                 maximal_stages: bool = True, cyclic: bool = False, switch_margin: float = 0.0,
                 yellow_s: float = 3.0, all_red_s: float = 2.0, program_yellow: bool = False,
                 transitions: str = "generic", approach_m: float | None = 100.0, switch_cost: bool = True,
                 keep_actuated: bool = True, coupled: bool = True, permissive_weight: float = 1.0) -> None:
        super().__init__(decision_interval_s=decision_interval_s, min_green_s=min_green_s,
                         max_green_s=max_green_s, include_permissive=include_permissive, upstream=upstream,
                         downstream=downstream, max_red_s=max_red_s, spillback_guard=spillback_guard,
                         normalize=normalize, maximal_stages=maximal_stages, cyclic=cyclic,
                         switch_margin=switch_margin, yellow_s=yellow_s, all_red_s=all_red_s,
                         program_yellow=program_yellow, transitions=transitions, approach_m=approach_m,
                         switch_cost=switch_cost, keep_actuated=keep_actuated, coupled=coupled,
                         permissive_weight=permissive_weight)
        if transitions not in ("generic", "program"):
            raise self._param_error("transitions", "'generic' or 'program'", transitions)
        a = approach_m
        if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 < a < float("inf")):
            raise self._param_error("approach_m", "None or a positive number of metres", a)
        g = spillback_guard
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 < g <= 1):
            raise self._param_error("spillback_guard", "None or a fraction in (0, 1]", g)
        for p in ("decision_interval_s", "min_green_s", "max_green_s", "max_red_s"):
            v = self._params[p]
            if p == "max_red_s" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise self._param_error(p, "a positive number of seconds" + (" or None" if p == "max_red_s" else ""), v)
        if max_green_s < min_green_s:
            raise self._param_error("max_green_s", f"at least min_green_s={min_green_s}", max_green_s)
        for b in ("include_permissive", "normalize", "maximal_stages", "cyclic", "program_yellow", "switch_cost",
                  "keep_actuated", "coupled"):
            if not isinstance(self._params[b], bool):
                raise self._param_error(b, "True or False", self._params[b])
        w = permissive_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1:
            raise self._param_error("permissive_weight", "a fraction in [0, 1]", w)
        for p in ("switch_margin", "yellow_s", "all_red_s"):
            m = self._params[p]
            if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < float("inf"):
                raise self._param_error(p, "a number >= 0", m)
        for p in ("upstream", "downstream"):
            if self._params[p] not in ("count", "queue"):
                raise self._param_error(p, "'count' or 'queue'", self._params[p])
        self.decision_interval_s = float(decision_interval_s)
        self._w_in: dict[str, np.ndarray] = {}
        self._w_out: dict[str, np.ndarray] = {}
        self._current: dict[str, int] = {}
        self._lane_served_at: dict[str, np.ndarray] = {}
        #: per junction: (stage × link share matrix, link in-lane index, link out-lane index, out-lane capacity veh)
        self._links: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        #: per junction: storage of each incoming lane (veh), and whether each stage may be chosen
        self._in_cap: dict[str, np.ndarray] = {}
        self._eligible: dict[str, np.ndarray] = {}
        #: per junction: stage × permissive link × link, whether the link yields to that priority link
        #: in that stage (None: no permissive links, or ``permissive_weight=1``)
        self._opposed: dict[str, np.ndarray | None] = {}
        #: per junction: stage × stage transition durations (s), for ``switch_cost``
        self._lost: dict[str, np.ndarray] = {}
        #: junctions left to their own vehicle-actuated program (``keep_actuated``)
        self._kept: set[str] = set()
        #: signals joined by a short link with the same program, deciding together (``coupled``)
        self._groups: list[tuple[str, ...]] = []
        self._follower: dict[str, str] = {}

    def safety(self) -> Safety:
        return Safety(yellow_s=float(self._params["yellow_s"]), all_red_s=float(self._params["all_red_s"]),
                      min_green_s=float(self._params["min_green_s"]), max_green_s=float(self._params["max_green_s"]),
                      program_yellow=bool(self._params["program_yellow"]), transitions=str(self._params["transitions"]))

    def approach_m(self) -> float | None:
        a = self._params["approach_m"]
        return None if a is None else float(a)

    def reset(self, network: SignalNetwork, seed: int) -> None:
        """Build, per junction, the stage × lane weight matrices of the pressure sum."""
        served = "Gg" if self._params["include_permissive"] else "G"
        self._kept = network.vehicle_actuated() if self._params["keep_actuated"] else set()
        self._w_in, self._w_out, self._current, self._lane_served_at = {}, {}, {}, {}
        self._groups = []
        if self._params["coupled"]:
            self._groups, left = short_link_plan(network, self._kept)
            self._kept |= left
        self._follower = {g: grp[0] for grp in self._groups for g in grp[1:]}
        for jid in network.junction_ids:
            j = network.junctions[jid]
            links_of_lane = {lane: sum(lk.in_lane == lane for lk in j.links) for lane in j.incoming_lanes}
            w_in = np.zeros((len(j.green_phases), len(j.incoming_lanes)))
            w_out = np.zeros((len(j.green_phases), len(j.outgoing_lanes)))
            for s, phase in enumerate(j.green_phases):
                state = j.phases[phase].state
                for lk in j.links:
                    if lk.index < len(state) and state[lk.index] in served:
                        share = 1.0 / links_of_lane[lk.in_lane]
                        w_in[s, j.incoming_lanes.index(lk.in_lane)] += share
                        w_out[s, j.outgoing_lanes.index(lk.out_lane)] += share
            self._w_in[jid], self._w_out[jid] = w_in, w_out
            stage_share = np.zeros((len(j.green_phases), len(j.links)))
            priority = np.zeros((len(j.green_phases), len(j.links)), dtype=int)  # 2: 'G', 1: 'g', 0: not green
            # opposed[s, k, f]: in stage s, permissive link k yields to priority link f (a foe)
            opposed = np.zeros((len(j.green_phases), len(j.links), len(j.links)), dtype=bool)
            for s, phase in enumerate(j.green_phases):
                state = j.phases[phase].state
                chars = [state[lk.index] if lk.index < len(state) else "r" for lk in j.links]
                for k, lk in enumerate(j.links):
                    priority[s, k] = 2 if chars[k] == "G" else 1 if chars[k] == "g" else 0
                    if chars[k] in served:
                        stage_share[s, k] = 1.0 / links_of_lane[lk.in_lane]
                    if chars[k] == "g" and self._params["permissive_weight"] < 1:
                        for f, lf in enumerate(j.links):
                            pair = (min(lk.index, lf.index), max(lk.index, lf.index))
                            opposed[s, k, f] = chars[f] == "G" and pair in j.foes
            self._opposed[jid] = opposed if opposed.any() else None
            self._links[jid] = (stage_share, np.array([j.incoming_lanes.index(lk.in_lane) for lk in j.links], dtype=int),
                                np.array([j.outgoing_lanes.index(lk.out_lane) for lk in j.links], dtype=int),
                                np.array([_storage(network.lane_length(lane)) for lane in j.outgoing_lanes]))
            self._in_cap[jid] = np.array([_storage(network.lane_length(lane)) for lane in j.incoming_lanes])
            self._eligible[jid] = _maximal(priority if self._opposed[jid] is not None else np.where(stage_share > 0, 2, 0)) if self._params["maximal_stages"] else np.ones(len(stage_share), bool)
            if self._params["switch_cost"]:
                from ..signals import transition_time_s

                n, safety = len(j.green_phases), self.safety()
                self._lost[jid] = np.array([[transition_time_s(j, a, b, safety) for b in range(n)] for a in range(n)])

    def pressures(self, o: JunctionObservation) -> np.ndarray:
        """Pressure of each stage of junction ``o.junction_id`` (vehicles), in ``green_phases`` order."""
        if self._params["approach_m"] is not None and o.approach_count_veh.size == len(o.lanes):
            up = o.approach_count_veh if self._params["upstream"] == "count" else o.approach_queue_veh
        else:
            up = o.count_veh if self._params["upstream"] == "count" else o.queue_veh
        down = o.out_queue_veh if self._params["downstream"] == "queue" else o.out_count_veh
        guard = self._params["spillback_guard"]
        share, li, lo, cap = self._links[o.junction_id]
        if self._params["normalize"]:
            up, down = up / self._in_cap[o.junction_id], down / cap
        if guard is None:
            return self._w_in[o.junction_id] @ up - self._w_out[o.junction_id] @ down
        per_link = up[li] - down[lo]
        opposed = self._opposed.get(o.junction_id)
        if opposed is not None:  # a permissive link facing vehicles on an opposing priority link
            facing = (opposed & (up[li] > 0)[None, None, :]).any(axis=2)
            share = np.where(facing, share * self._params["permissive_weight"], share)
        return share @ np.where(self.full_exits(o)[lo], np.minimum(per_link, 0.0), per_link)

    def full_exits(self, o: JunctionObservation) -> np.ndarray:
        """Per outgoing lane: no storage left (spillback). A lane is full when its vehicles fill at
        least ``spillback_guard`` of its storage (whole 7.5 m slots, at least one) and one of them
        stands: a short lane with a vehicle driving through it is not full."""
        guard = self._params["spillback_guard"]
        cap = self._links[o.junction_id][3]
        if guard is None:
            return np.zeros(len(cap), dtype=bool)
        return (o.out_count_veh >= guard * cap) & (o.out_queue_veh >= 1)

    def _cyclic(self, p: np.ndarray, q: np.ndarray, current: int) -> int:
        """Cyclic max-pressure (after Le et al., 2015): stages in program order; the current one is
        held while its pressure is positive and within ``switch_margin`` of the largest, then the
        next eligible stage in order with positive pressure is served (an empty stage is skipped)."""
        if p[current] > 0 and p[current] >= q.max() - self._params["switch_margin"] - 1e-9:
            return current
        n = len(p)
        for k in range(1, n + 1):
            nxt = (current + k) % n
            if np.isfinite(q[nxt]) and p[nxt] > 0:
                return nxt
        return current

    def act(self, observation: Observation) -> Mapping[str, Action]:
        t, max_red = observation.time_s, self._params["max_red_s"]
        out: dict[str, Action] = {}
        joint: dict[str, np.ndarray] = {}
        for group in self._groups:  # signals joined by a short link decide together, on their summed pressure
            if all(g in observation.junctions for g in group):
                total = np.sum([self.pressures(observation.junctions[g]) for g in group], axis=0)
                for g in group:
                    joint[g] = total
        for jid in sorted(observation.junctions, key=lambda j: j in self._follower):  # deciders first
            o = observation.junctions[jid]
            if jid in self._kept:
                continue
            p = joint[jid] if jid in joint else self.pressures(o)
            if jid in self._follower:  # the group's first signal decided: same stage
                lead = self._follower[jid]
                if lead in self._current:
                    self._current[jid] = self._current[lead]
                    out[jid] = GreenPhase(self._current[lead])
                    continue
            # the green being served, or the one we are moving to during a transition
            current = o.green if o.green is not None else self._current.get(jid, 0)
            ok = self._eligible[jid]
            q = np.where(ok, p, -np.inf)
            margin = self._params["switch_margin"]
            if self._params["cyclic"]:
                best = self._cyclic(p, q, current)
            elif p[current] >= q.max() - margin - 1e-9:
                best = current
            elif self._params["switch_cost"] and p[current] > 0:
                # a change loses L s; it buys H = L + min green of the new stage against H of the current
                lost = self._lost[jid][current]
                h = lost + self._params["min_green_s"]
                gain = np.where(ok, p * (h - lost) - p[current] * h, -np.inf)
                gain[current] = 0.0
                best = int(np.argmax(gain)) if gain.max() > margin + 1e-9 else current
            else:
                best = int(np.argmax(q))
            if max_red is not None:
                serves = self._w_in[jid] > 0
                served_at = self._lane_served_at.setdefault(jid, np.full(len(o.lanes), t))
                if o.green is not None:
                    served_at[serves[o.green]] = t
                waiting = (o.count_veh > 0) & serves.any(axis=0)
                if self._params["spillback_guard"] is not None:
                    # a lane whose every exit is full waits for the exit, not for this junction's
                    # green: serving it would only push vehicles into the junction (spillback)
                    _, li, lo, _ = self._links[jid]
                    open_exit = np.zeros(len(o.lanes), dtype=bool)
                    np.logical_or.at(open_exit, li, ~self.full_exits(o)[lo])
                    waiting &= open_exit
                waited = np.where(waiting, t - served_at, -np.inf)
                lane = int(np.argmax(waited))
                if waited[lane] >= max_red - 1e-9:  # the longest-waiting lane goes next
                    stages = np.flatnonzero(serves[:, lane])
                    best = int(stages[np.argmax(p[stages])])
            self._current[jid] = best
            out[jid] = GreenPhase(best)
        return out


def _storage(length_m: float) -> float:
    """Standing vehicles a lane can hold: whole 7.5 m slots (5 m car + 2.5 m gap), at least one."""
    return max(1.0, float(np.floor(length_m / 7.5)))


def _maximal(priority: np.ndarray) -> np.ndarray:
    """Stages (rows of a stage × link matrix of right of way: 2 priority green ``'G'``, 1 permissive
    ``'g'``, 0 none) that max-pressure may choose: not dominated by another stage (every link served
    there with at least the same right of way, and one with more) and not a repeat of an earlier one.
    Real programs hold intermediate phases (a 4 s stage that keeps part of the previous green, a
    short copy of the main stages) which a pressure rule would otherwise serve as stages of their
    own, each with a full yellow and red. A protected-turn stage (a turn ``'G'`` that another stage
    serves only as permissive ``'g'``) is not dominated: it is how the real program clears the
    turners waiting inside the junction."""
    n = len(priority)
    keep = np.ones(n, dtype=bool)
    for a in range(n):
        for b in range(n):
            if a == b or not priority[a].any():
                continue
            sub = bool((priority[a] <= priority[b]).all())
            if sub and ((priority[b] > priority[a]).any() or b < a):
                keep[a] = False
                break
    if not keep.any():
        keep[:] = True
    return keep
