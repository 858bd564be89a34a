"""Arterial coordination (pure, no SUMO): the corridor of a network and MAXBAND offsets.

* :func:`corridor_path` finds the ordered signals along an arterial and the stop-line-to-stop-line
  distances between consecutive signals, in both directions, on the network's edge graph (or along a
  path the user gives as signal ids or edge ids).
* :func:`through_green` reads, from a signal program timed by a :class:`~mobility.controllers.TimingPlan`,
  when the corridor's through movement is green within the cycle (so a leading left / lead-lag stage
  layout shifts the outbound green against the inbound green, as it does in the field).
* :func:`maxband` solves MAXBAND (Little, Kelson & Gartner 1981, "MAXBAND: a program for setting
  signals on arteries and triangular networks", TRR 795) as a mixed-integer program with
  :func:`scipy.optimize.milp`: the offsets that maximise ``b_out + k * b_in``, the widths (s) of the
  green bands through every signal in each direction.

Times are seconds, distances metres, speeds m/s. An offset follows :class:`TimingPlan` semantics: the
signal's cycle starts when ``(time - offset) % cycle == 0``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import ControllerError
from ...network import Junction, Link, Phase, SignalNetwork, states_problem

_GREEN = "Gg"


@dataclass(frozen=True)
class Direction:
    """One direction of travel along a corridor.

    ``junctions``: signals in travel order; ``approaches``: per signal, the edge that ends at its stop
    line; ``links``: per signal, the link indices of the corridor movement (from the approach towards
    the next signal, straight on at the last one); ``distances_m``: stop line ``i`` → stop line ``i+1``
    along the path (``len(junctions) - 1`` values); ``free_flow_s``: the same segments driven at the
    speed limits; ``edges``: the edge path from the first approach to the last approach.
    """

    junctions: tuple[str, ...]
    approaches: tuple[str, ...]
    links: tuple[tuple[int, ...], ...]
    distances_m: tuple[float, ...]
    free_flow_s: tuple[float, ...]
    edges: tuple[str, ...]

    @property
    def speed_limit_m_s(self) -> float:
        """The distance-weighted speed limit along the direction (m/s)."""
        return sum(self.distances_m) / sum(self.free_flow_s) if self.free_flow_s else math.nan


@dataclass(frozen=True)
class Corridor:
    """Signals along an arterial, in outbound order, and both directions of travel.

    ``inbound`` visits the same signals in reverse order (``None`` for a one-way arterial).
    """

    junctions: tuple[str, ...]
    outbound: Direction
    inbound: Direction | None

    def distances_in_m(self) -> tuple[float, ...]:
        """Inbound distances indexed like the outbound ones: value ``i`` is stop line ``i+1`` → ``i``."""
        return tuple(reversed(self.inbound.distances_m)) if self.inbound else ()


@dataclass(frozen=True)
class Bandwidth:
    """The MAXBAND solution.

    ``offsets_s``: per signal (corridor order), the :class:`TimingPlan` offset relative to the first
    signal, in ``[0, cycle_s)``; ``b_out_s`` / ``b_in_s``: widths of the outbound and inbound green
    bands (s); ``travel_out_s`` / ``travel_in_s``: the travel times between consecutive stop lines used
    (indexed in outbound order: value ``i`` is between signals ``i`` and ``i+1``); ``band_out_s`` /
    ``band_in_s``: per signal (corridor order), when the band's first vehicle passes, in seconds after
    the start of that direction's through green.
    """

    offsets_s: dict[str, float]
    b_out_s: float
    b_in_s: float
    cycle_s: float
    travel_out_s: tuple[float, ...]
    travel_in_s: tuple[float, ...]
    band_out_s: tuple[float, ...] = ()
    band_in_s: tuple[float, ...] = ()

    @property
    def efficiency(self) -> float:
        """Mean of the two band widths as a fraction of the cycle (0..1)."""
        return (self.b_out_s + self.b_in_s) / (2 * self.cycle_s)


# --------------------------------------------------------------------------------------------
# corridor


class _Graph:
    """Edge-level helpers over a :class:`SignalNetwork`."""

    def __init__(self, net: SignalNetwork, owner: str) -> None:
        self.net = net
        self.g = net.graph
        self.owner = owner
        self.lanes_of: dict[str, list[str]] = {}
        for lane, info in net.lanes.items():
            if not info.internal:
                self.lanes_of.setdefault(info.edge, []).append(lane)
        #: approach edge -> (signal id, links from that edge)
        self.approach: dict[str, tuple[str, list[Link]]] = {}
        for jid in net.junction_ids:
            for lk in net.junctions[jid].links:
                e = net.lanes[lk.in_lane].edge
                if e in self.g:  # pedestrian crossings are signal links, but not roads of the graph
                    self.approach.setdefault(e, (jid, []))[1].append(lk)

    def error(self, msg: str) -> ControllerError:
        return ControllerError(f"controller '{self.owner}': parameter 'path': {msg}")

    def length(self, e: str) -> float:
        return float(self.g.nodes[e]["length"])

    def time(self, e: str) -> float:
        return self.length(e) / float(self.g.nodes[e]["speed"])

    def u_turn(self, e: str, f: str) -> bool:
        a, b = self.g.nodes[e], self.g.nodes[f]
        return a["from_node"] == b["to_node"] and a["to_node"] == b["from_node"]

    def via(self, e: str, f: str) -> tuple[float, float]:
        """(length m, time s) across the node from edge ``e`` to edge ``f`` (shortest connection)."""
        best = (math.inf, math.inf)
        for lane in self.lanes_of.get(e, ()):
            for via, to, _ in self.net.lanes[lane].successors:
                if self.net.lanes[to].edge == f:
                    d = sum(self.net.lanes[v].length for v in via)
                    t = sum(self.net.lanes[v].length / self.net.lanes[v].speed for v in via)
                    best = min(best, (d, t))
        return best if best[0] < math.inf else (0.0, 0.0)

    def links(self, e: str, f: str | None) -> tuple[int, ...]:
        """Link indices from approach ``e`` to edge ``f``; with ``f`` None, the straight-on links."""
        lks = self.approach[e][1]
        if f is not None:
            return tuple(lk.index for lk in lks if self.net.lanes[lk.out_lane].edge == f)
        straight = tuple(lk.index for lk in lks if lk.direction == "s")
        return straight or tuple(lk.index for lk in lks)

    def straight_exit(self, e: str) -> str | None:
        """The edge most straight-on links of approach ``e`` lead to."""
        outs = [self.net.lanes[lk.out_lane].edge for lk in self.approach[e][1] if lk.direction == "s"]
        return max(sorted(set(outs)), key=outs.count) if outs else None

    def main_road(self, f: str) -> list[str] | None:
        """From exit edge ``f``, follow the main road (no U-turns; most lanes, then highest speed)
        across unsignalised nodes to the next signal approach; None at a dead end or a loop."""
        path, seen = [f], {f}
        while path[-1] not in self.approach:
            cur = path[-1]
            nxt = [s for s in self.g.successors(cur) if not self.u_turn(cur, s)]
            if not nxt:
                return None
            best = max(sorted(nxt), key=lambda s: (len(self.lanes_of.get(s, ())), self.g.nodes[s]["speed"]))
            if best in seen:
                return None
            path.append(best)
            seen.add(best)
        return path

    def shortest(self, exits: Sequence[tuple[str, str]], targets: set[str]) -> list[str] | None:
        """Shortest edge path (by length) from one of the (approach, exit) moves to an approach edge in
        ``targets``, crossing no other signal: returns [approach, exit, ..., target] or None."""
        heap: list[tuple[float, int, list[str]]] = []
        for k, (e, f) in enumerate(exits):
            heapq.heappush(heap, (self.via(e, f)[0] + self.length(f), k, [e, f]))
        done: set[str] = set()
        counter = len(exits)
        while heap:
            d, _, path = heapq.heappop(heap)
            cur = path[-1]
            if cur in targets:
                return path
            if cur in done or cur in self.approach:
                continue
            done.add(cur)
            for s in self.g.successors(cur):
                if s not in done and not self.u_turn(cur, s):
                    counter += 1
                    heapq.heappush(heap, (d + self.via(cur, s)[0] + self.length(s), counter, [*path, s]))
        return None

    def direction(self, edges: Sequence[str]) -> Direction:
        """The :class:`Direction` along an edge path (signals where an edge is an approach)."""
        jids: list[str] = []
        apps: list[str] = []
        links: list[tuple[int, ...]] = []
        marks: list[tuple[float, float]] = []  # (distance, free-flow time) of each stop line
        d = t = 0.0
        for i, e in enumerate(edges):
            d, t = d + self.length(e), t + self.time(e)
            nxt = edges[i + 1] if i + 1 < len(edges) else None
            if e in self.approach:
                jid = self.approach[e][0]
                lks = self.links(e, nxt)
                if nxt is None or lks:
                    if jid in jids:
                        raise self.error(f"signal '{jid}' is visited twice")
                    jids.append(jid)
                    apps.append(e)
                    links.append(lks)
                    marks.append((d, t))
            if nxt is not None:
                vd, vt = self.via(e, nxt)
                d, t = d + vd, t + vt
        if not jids:
            raise self.error(f"no signal on the path {edges[0]} … {edges[-1]}")
        if any(not lk for lk in links):
            raise self.error(f"signal '{jids[links.index(())]}' has no movement along the path")
        first = edges.index(apps[0])
        return Direction(tuple(jids), tuple(apps), tuple(links),
                         tuple(b[0] - a[0] for a, b in zip(marks, marks[1:])),
                         tuple(b[1] - a[1] for a, b in zip(marks, marks[1:])), tuple(edges[first:]))

    def route_signals(self, jids: Sequence[str]) -> list[str] | None:
        """The edge path through signals ``jids`` in order (shortest between consecutive ones, entering
        the first straight on where possible), or None if there is none."""
        approaches = {j: {e for e, (jj, _) in self.approach.items() if jj == j} for j in jids}
        path: list[str] = []
        cur: str | None = None
        for a, b in zip(jids, jids[1:]):
            starts = [cur] if cur is not None else sorted(approaches[a])
            moves = [(e, self.net.lanes[lk.out_lane].edge) for e in starts for lk in self.approach[e][1]]
            moves = [(e, f) for e, f in dict.fromkeys(moves) if not self.u_turn(e, f)]
            seg = self.shortest(moves, approaches[b])
            if seg is None:
                return None
            if cur is None:  # choose the first approach: straight on into the segment if possible
                into = seg[1]
                cands = [e for e in starts if any(self.net.lanes[lk.out_lane].edge == into and lk.direction == "s"
                                                  for lk in self.approach[e][1])]
                seg[0] = cands[0] if cands else seg[0]
                path.append(seg[0])
            path.extend(seg[1:])
            cur = seg[-1]
        if not path:  # a single signal: its approach with the most straight-on links
            if cur is None:
                cur = max(sorted(approaches[jids[0]]),
                          key=lambda e: sum(lk.direction == "s" for lk in self.approach[e][1]))
            path = [cur]
        return path

    def chain(self, e: str, limit: int) -> list[str]:
        """Straight-on chain of edges from approach ``e``: through each signal on its straight-on
        movement, along the main road between signals, until a dead end or a repeated signal."""
        path, seen = [e], {self.approach[e][0]}
        while len(seen) < limit:
            f = self.straight_exit(path[-1])
            seg = self.main_road(f) if f is not None else None
            if seg is None or self.approach[seg[-1]][0] in seen:
                break
            path.extend(seg)
            seen.add(self.approach[seg[-1]][0])
        return path


def corridor_path(net: SignalNetwork, path: Sequence[str] | None = None, *, owner: str = "green-wave") -> Corridor:
    """The corridor: signals in order along an arterial, with distances in both directions.

    ``path`` None: the candidates are the straight-on chains of signals from every signal approach
    (at each signal the straight movement, between signals the main road: most lanes, then highest
    speed). When the network carries the run's demand (``net.demand``, measured from the scenario's
    routes), the chain with the most *through vehicles × signals passed* wins
    (:func:`through_load`: at each signal of the chain, the vehicles on the chain's movement there,
    summed); without demand (or when every chain carries none) the longest chain by signal count
    wins. Remaining ties go to more signals, then the longer distance, then the smaller signal ids. ``path`` a list of signal ids: consecutive
    signals joined by the shortest path that crosses no other signal. ``path`` a list of edge ids: a
    connected edge path; the signals are those whose approaches it uses. The inbound direction runs
    through the same signals in reverse order (``None`` if there is no way back).

    Raises :class:`ControllerError` (``controller '<owner>': parameter 'path': …``) if the path is not
    connected or names unknown ids.
    """
    gr = _Graph(net, owner)
    if not gr.approach:
        raise gr.error(f"{net.path.name} has no signals")
    if path is None:
        chains = [gr.direction(gr.chain(e, len(net.junctions))) for e in sorted(gr.approach)]
        load = [through_load(net, d) for d in chains]
        outbound = min(zip(chains, load), key=lambda t: (-round(t[1], 3), -len(t[0].junctions),
                                                         -round(sum(t[0].distances_m), 3), t[0].junctions))[0]
    else:
        items = [path] if isinstance(path, str) else list(path)
        if not items or not all(isinstance(p, str) for p in items):
            raise gr.error(f"expected a list of signal ids or edge ids, got {path!r}")
        if all(p in net.junctions for p in items):
            if len(set(items)) != len(items):
                raise gr.error(f"a signal is listed twice in {items}")
            edges = gr.route_signals(items)
            if edges is None:
                bad = next(f"'{a}' to '{b}'" for a, b in zip(items, items[1:]) if gr.route_signals([a, b]) is None)
                raise gr.error(f"no connection from {bad} that avoids other signals; "
                               "give signals in the order a vehicle meets them")
            outbound = gr.direction(edges)
            if outbound.junctions != tuple(items):
                raise gr.error(f"the route through {items} meets signals {list(outbound.junctions)}; "
                               "list every signal on the way")
        elif all(p in gr.g for p in items):
            for a, b in zip(items, items[1:]):
                if not gr.g.has_edge(a, b):
                    raise gr.error(f"edge '{a}' is not connected to edge '{b}'")
            outbound = gr.direction(items)
        else:
            unknown = [p for p in items if p not in net.junctions and p not in gr.g]
            what = (f"'{unknown[0]}' is neither a signal nor an edge of {net.path.name}" if unknown
                    else "mixes signal ids and edge ids")
            raise gr.error(f"{what}; give only signal ids or only edge ids")
    back = list(reversed(outbound.junctions))
    inbound = None
    if len(back) > 1:
        start = [e for e in sorted(gr.approach) if gr.approach[e][0] == back[0]]
        for e in start:  # the straight-on chain back first, else the shortest way back
            edges = gr.chain(e, len(back))
            if gr.direction(edges).junctions == tuple(back):
                inbound = gr.direction(edges)
                break
        if inbound is None:
            edges = gr.route_signals(back)
            if edges is not None and gr.direction(edges).junctions == tuple(back):
                inbound = gr.direction(edges)
    return Corridor(outbound.junctions, outbound, inbound)


def through_load(net: SignalNetwork, direction: Direction) -> float:
    """Demand weight of a corridor direction: the sum, over its signals, of the demand on the links
    it drives through there (vehicles/hour, summed over ``net.demand``'s periods, each weighted by
    its length in hours), i.e. through vehicles × signals passed. 0 when the network carries no
    demand (:attr:`SignalNetwork.demand` None)."""
    demand = net.demand
    if demand is None:
        return 0.0
    hours = [(p.end_s - p.begin_s) / 3600.0 for p in demand.periods]
    total = 0.0
    for jid, lks in zip(direction.junctions, direction.links):
        vph = demand.link_vph.get(jid)
        if vph is None:
            continue
        wanted = set(lks)
        cols = [k for k, lk in enumerate(net.junctions[jid].links) if lk.index in wanted]
        total += float(sum(h * float(vph[i, cols].sum()) for i, h in enumerate(hours)))
    return total


def travel_edges(net: SignalNetwork, direction: Direction, owner: str = "green-wave") -> tuple[str, ...]:
    """The edges a vehicle drives along ``direction``: from the approach into its first signal to
    the exit of its last (the straight-on exit, else the one most of its links lead to). The one
    path a green wave is planned on (:func:`corridor_path`) and its corridor metrics are measured on
    (:mod:`mobility.corridor`)."""
    gr = _Graph(net, owner)
    last = direction.approaches[-1]
    exit_edge = gr.straight_exit(last)
    if exit_edge is None:
        outs = [net.lanes[lk.out_lane].edge for lk in gr.approach[last][1] if net.lanes[lk.out_lane].edge in gr.g]
        if not outs:
            raise gr.error(f"signal '{direction.junctions[-1]}' has no exit from '{last}'")
        exit_edge = max(sorted(set(outs)), key=outs.count)
    return (*direction.edges, exit_edge)


def downstream_paths(net: SignalNetwork, moves: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str] | None]:
    """For each (approach edge, exit edge) movement of a signal, the edge path ``[approach, exit, …,
    next approach]`` to the nearest signal approach downstream (shortest, crossing no other signal),
    or None if the movement leaves the signalised network."""
    gr = _Graph(net, "")
    return {(e, f): gr.shortest([(e, f)], set(gr.approach)) if e in gr.approach and f in gr.g else None
            for e, f in dict.fromkeys(moves)}


# --------------------------------------------------------------------------------------------
# signal timing along the corridor


def plan_phases(junction: Junction, greens_s: Sequence[float]) -> list[Phase]:
    """The junction's phases under a :class:`TimingPlan` with ``greens_s`` (as :mod:`mobility.signals`
    applies it: the green stages get the plan's durations, the other phases keep theirs)."""
    phases = list(junction.phases)
    for gi, dur in zip(junction.green_phases, greens_s):
        p = phases[gi]
        phases[gi] = Phase(p.state, float(dur), float(dur), float(dur))
    return phases


def through_green(phases: Sequence[Phase], links: Sequence[int]) -> tuple[float, float]:
    """(start s after the cycle start, duration s) of the longest run of consecutive phases (cyclic)
    in which every link of ``links`` shows green (``G`` or ``g``).

    Raises :class:`ControllerError` if the links never share a green."""
    n = len(phases)
    on = [all(p.state[k] in _GREEN for k in links) for p in phases]
    if not any(on):
        raise ControllerError(f"links {list(links)} are never green together")
    starts = np.cumsum([0.0] + [p.duration for p in phases])
    if all(on):
        return 0.0, float(starts[-1])
    best = (-1.0, 0.0)
    for i in range(n):
        if on[i] and not on[i - 1]:
            dur, k = 0.0, i
            while on[k % n]:
                dur += phases[k % n].duration
                k += 1
            best = max(best, (dur, -float(starts[i])))
    return -best[1], best[0]


# --------------------------------------------------------------------------------------------
# MAXBAND


def maxband(corridor: Corridor, cycle_s: float, red_out: Sequence[float], red_in: Sequence[float],
            green_start_out_s: Sequence[float], green_start_in_s: Sequence[float], *,
            speed_m_s: float | tuple[float, float], weight_in: float = 1.0,
            queue_out_s: Sequence[float] | None = None, queue_in_s: Sequence[float] | None = None,
            target_ratio: bool = True, time_limit_s: float = 30.0) -> Bandwidth:
    """Offsets that maximise the green bands along ``corridor`` (MAXBAND, Little et al. 1981).

    Per signal ``i`` (corridor order): ``red_out[i]`` / ``red_in[i]`` is the red of the through
    movement in each direction as a fraction of the cycle, and ``green_start_*_s[i]`` when that
    movement's green starts, in seconds after the signal's cycle start (the internal offset between
    the two directions' greens comes from the difference). ``speed_m_s`` is the design speed, or a
    (low, high) range within which the program may choose a speed per link and direction.
    ``queue_*_s[i]`` (default 0) is MAXBAND's queue clearance time: the band reaches signal ``i`` at
    least that long after its green starts, so that vehicles which turned into the arterial upstream
    and wait at the stop line are gone before the platoon arrives. ``target_ratio`` (MAXBAND's
    constraint ``b_in >= k b_out`` for ``k < 1``) can be dropped: the program then maximises the
    weighted sum alone, giving the heavier direction as much band as the geometry allows.

    The mixed-integer program (``w``: time from the start of green to the band's edge, ``t``: travel
    time between stop lines, ``Δ_i = green_start_out - green_start_in``)::

        max   b_out + k b_in + ε min(b_out, b_in)                (k = weight_in; ε breaks ties)
        s.t.  w_out_i + b_out <= (1 - red_out_i) C,   w_in_i + b_in <= (1 - red_in_i) C
              w_out_i >= queue_out_i,   w_in_i >= queue_in_i
              w_out_{i+1} - w_out_i + w_in_i - w_in_{i+1} + n_i C = t_out_i + t_in_i + Δ_i - Δ_{i+1}
              (1 - k) b_in >= (1 - k) k b_out,   n_i integer,   all other variables >= 0

    The offsets follow from the outbound band: ``θ_{i+1} = θ_i + t_out_i - (start_out_{i+1} -
    start_out_i) - (w_out_{i+1} - w_out_i)``, modulo the cycle.
    """
    n = len(corridor.junctions)
    q_out = list(queue_out_s) if queue_out_s is not None else [0.0] * n
    q_in = list(queue_in_s) if queue_in_s is not None else [0.0] * n
    for name, seq in (("red_out", red_out), ("red_in", red_in), ("green_start_out_s", green_start_out_s),
                      ("green_start_in_s", green_start_in_s), ("queue_out_s", q_out), ("queue_in_s", q_in)):
        if len(seq) != n:
            raise ControllerError(f"maxband: {name} has {len(seq)} values for {n} signals")
    if not cycle_s > 0:
        raise ControllerError(f"maxband: cycle_s must be positive, got {cycle_s!r}")
    if not all(0 <= r < 1 for r in (*red_out, *red_in)):
        raise ControllerError("maxband: red fractions must be in [0, 1)")
    lo, hi = (speed_m_s, speed_m_s) if isinstance(speed_m_s, (int, float)) else speed_m_s
    if not 0 < lo <= hi:
        raise ControllerError(f"maxband: speed_m_s must be positive (low <= high), got {speed_m_s!r}")
    from scipy.optimize import Bounds, LinearConstraint, milp

    C = float(cycle_s)
    two_way = corridor.inbound is not None
    g_out = [(1 - r) * C for r in red_out]
    g_in = [(1 - r) * C for r in red_in] if two_way else [C] * n
    d_out = corridor.outbound.distances_m
    d_in = corridor.distances_in_m() if two_way else d_out
    m = n - 1
    # variable layout: b_out, b_in, z (= min of the two), w_out[n], w_in[n], loop n[m], t_out[m], t_in[m]
    B, BI, Z, WO, WI, N, TO, TI = 0, 1, 2, 3, 3 + n, 3 + 2 * n, 3 + 2 * n + m, 3 + 2 * n + 2 * m
    nv = 3 + 2 * n + 3 * m
    lb, ub = np.zeros(nv), np.full(nv, np.inf)
    ub[WO:WO + n], ub[WI:WI + n] = g_out, g_in
    lb[WO:WO + n] = np.minimum(np.maximum(q_out, 0.0), g_out)
    lb[WI:WI + n] = np.minimum(np.maximum(q_in, 0.0), g_in) if two_way else 0.0
    ub[B] = min(g - q for g, q in zip(g_out, lb[WO:WO + n]))
    ub[BI] = min(g - q for g, q in zip(g_in, lb[WI:WI + n])) if two_way else 0.0
    delta = [so - si for so, si in zip(green_start_out_s, green_start_in_s)]
    for i in range(m):
        lb[TO + i], ub[TO + i] = d_out[i] / hi, d_out[i] / lo
        lb[TI + i], ub[TI + i] = d_in[i] / hi, d_in[i] / lo
        # n_i C = t_out + t_in + Δ_i - Δ_{i+1} - (w terms), and the w terms lie within ±2C
        rhs = (lb[TO + i] + lb[TI + i] + delta[i] - delta[i + 1], ub[TO + i] + ub[TI + i] + delta[i] - delta[i + 1])
        lb[N + i], ub[N + i] = (math.floor(rhs[0] / C) - 2, math.ceil(rhs[1] / C) + 2) if two_way else (0, 0)
    k = float(weight_in)
    c = np.zeros(nv)
    c[B], c[BI], c[Z] = -1.0, -k if two_way else 0.0, -1e-3 if two_way else 0.0
    rows: list[np.ndarray] = []
    rlo: list[float] = []
    rhi: list[float] = []

    def row(coefs: dict[int, float], low: float, high: float) -> None:
        r = np.zeros(nv)
        for j, v in coefs.items():
            r[j] += v
        rows.append(r)
        rlo.append(low)
        rhi.append(high)

    for i in range(n):
        row({WO + i: 1, B: 1}, -np.inf, g_out[i])
        row({WI + i: 1, BI: 1}, -np.inf, g_in[i])
    row({Z: 1, B: -1}, -np.inf, 0.0)
    row({Z: 1, BI: -1}, -np.inf, 0.0)
    if two_way:
        for i in range(m):
            row({WO + i + 1: 1, WO + i: -1, WI + i: 1, WI + i + 1: -1, N + i: C, TO + i: -1, TI + i: -1},
                delta[i] - delta[i + 1], delta[i] - delta[i + 1])
        if target_ratio:
            row({BI: 1 - k, B: -(1 - k) * k}, 0.0, np.inf)
    integrality = np.zeros(nv)
    integrality[N:N + m] = 1
    res = milp(c, constraints=LinearConstraint(np.array(rows), rlo, rhi), integrality=integrality,
               bounds=Bounds(lb, ub), options={"time_limit": time_limit_s})
    if res.x is None:
        raise ControllerError(f"maxband: the MILP found no solution ({res.message})")
    x = res.x
    wo, to = x[WO:WO + n], x[TO:TO + m]
    theta = [0.0]
    for i in range(m):
        theta.append(theta[-1] + to[i] - (green_start_out_s[i + 1] - green_start_out_s[i]) - (wo[i + 1] - wo[i]))
    offsets = {j: float(round(th % C, 6) % C) for j, th in zip(corridor.junctions, theta)}
    return Bandwidth(offsets, float(x[B]), float(x[BI]), C, tuple(float(v) for v in to),
                     tuple(float(v) for v in x[TI:TI + m]) if two_way else (),
                     tuple(float(v) for v in wo), tuple(float(v) for v in x[WI:WI + n]) if two_way else ())


def achieved_band(corridor: Corridor, cycle_s: float, out_windows: Sequence[tuple[float, float]],
                  in_windows: Sequence[tuple[float, float]], offsets_s: dict[str, float],
                  travel_out_s: Sequence[float], travel_in_s: Sequence[float], resolution_s: float = 0.05
                  ) -> Bandwidth:
    """The green bands that given offsets achieve (the inverse of :func:`maxband`).

    ``*_windows``: per signal (corridor order), (green start s after the cycle start, green s) of the
    through movement in each direction; ``travel_*_s``: travel times between consecutive stop lines
    in outbound indexing (value ``i``: between signals ``i`` and ``i+1``). A band is the longest
    interval of times at which a vehicle passing the first signal of its direction at the design
    travel times meets green at every signal; its width is found on a ``resolution_s`` grid."""
    C = float(cycle_s)
    x = np.arange(0.0, C, resolution_s)
    n = len(corridor.junctions)
    phi = np.array([offsets_s[j] for j in corridor.junctions], dtype=float)

    def band(order: Sequence[int], windows: Sequence[tuple[float, float]], travel: Sequence[float]
             ) -> tuple[float, tuple[float, ...]]:
        at = np.zeros(n)
        for a, b in zip(order, order[1:]):  # arrival time at each signal after passing the first
            at[b] = at[a] + travel[min(a, b)]
        ok = np.ones_like(x, dtype=bool)
        into = {}
        for i in order:
            s, g = windows[i]
            into[i] = (x[None, :] + at[i] - phi[i] - s) % C
            ok &= into[i][0] < g - 1e-9
        if ok.all():
            return C, tuple(0.0 for _ in order)
        if not ok.any():
            return 0.0, ()
        first = int(np.argmin(ok))  # a red instant: runs are read cyclically from there
        rolled = np.roll(ok, -first)
        best, run, end = 0, 0, 0
        for k, v in enumerate(rolled):
            run = run + 1 if v else 0
            if run > best:
                best, end = run, k
        start = (first + end - best + 1) % len(x)
        return best * resolution_s, tuple(float(into[i][0][start]) for i in range(n))

    b_out, pos_out = band(list(range(n)), out_windows, travel_out_s)
    if corridor.inbound is not None:
        b_in, pos_in = band(list(range(n - 1, -1, -1)), in_windows, travel_in_s)
    else:
        b_in, pos_in = 0.0, ()
    return Bandwidth({j: float(phi[i] % C) for i, j in enumerate(corridor.junctions)}, float(b_out), float(b_in), C,
                     tuple(float(t) for t in travel_out_s), tuple(float(t) for t in travel_in_s), pos_out, pos_in)


def mirror_states(net: SignalNetwork, corridor: Corridor, junction_id: str) -> tuple[str, ...] | None:
    """The signal program of a corridor signal with its two arterial approaches exchanged: what the
    outbound approach showed, the inbound one shows, and the reverse, phase by phase (a leading
    left turn of one direction becomes the other direction's; side streets are unchanged).

    The links of the two approaches are paired in link-index order and must have the same turning
    directions. Returns None if they do not, if the mirror is the program itself (nothing to lead or
    lag), or if it breaks a rule of :func:`mobility.network.states_problem` (SUMO's foes)."""
    if corridor.inbound is None:
        return None
    i = corridor.junctions.index(junction_id)
    j = net.junctions[junction_id]
    a_edge, b_edge = corridor.outbound.approaches[i], corridor.inbound.approaches[corridor.inbound.junctions.index(junction_id)]
    a = [lk for lk in j.links if net.lanes[lk.in_lane].edge == a_edge]
    b = [lk for lk in j.links if net.lanes[lk.in_lane].edge == b_edge]
    if not a or len(a) != len(b) or [lk.direction for lk in a] != [lk.direction for lk in b]:
        return None
    pairs = [(x.index, y.index) for x, y in zip(a, b)]
    out = []
    for p in j.phases:
        st = list(p.state)
        for x, y in pairs:
            st[x], st[y] = p.state[y], p.state[x]
        out.append("".join(st))
    states = tuple(out)
    if states == tuple(p.state for p in j.phases) or states_problem(j, states):
        return None
    return states
