"""Per-approach and per-movement results, congestion index and spillback (pure numpy; no SUMO here).

Definitions (also in ``docs/metrics.md``):

Approach
    An incoming edge of a junction (a signal controller) that has at least one signalised link for
    vehicles. **Movement**: an approach and the outgoing edge its vehicles leave the junction by
    (the link groups of :class:`mobility.network.Junction`; pedestrian crossings are neither).

Which approach and movement a vehicle-step belongs to
    The junction zones of :class:`mobility.metrics.ZoneMap` decide the junction; the vehicle's
    *crossing* of that junction decides the approach and movement. A crossing is found in the same
    per-vehicle samples: the first step at which the vehicle is no longer on the junction's incoming
    or internal lanes, after having been on them; its approach is the incoming edge it was on (or the
    approach of the internal lane it crossed by), its movement the outgoing edge it is on then (or that
    of the internal lane). A step in a junction's approach or internal part belongs to the vehicle's
    next crossing of that junction; a step in its exit part to its last one. Steps that have no such
    crossing (a vehicle still queued at the end, or one that turned off in the far approach) belong to
    the approach of the lane they are on and the movement ``(unresolved)`` (on an internal lane: its
    link's movement); exit steps of vehicles
    that did not come through the junction (they departed inside its exit part) belong to the
    approach ``(none)``. So approach rows add up to the junction's totals exactly (vehicles, delay,
    stops, halted and zone time, CO2), and movement rows to their approach's.

Queues
    ``queue_*_veh``: halted vehicles (speed < 0.1 m/s) in the approach and internal parts at each
    step of the window with vehicles on the network (the junction table's sampling), by approach (or
    movement): maximum, mean and 95th percentile over those steps.

Capacity and volume-to-capacity
    ``green_ratio`` (g/C): the share of the window's steps in which the approach (any of its links)
    or the movement (any of its links) showed green (``G`` or ``g``), from the signal states SUMO
    showed at every step. ``capacity_veh_per_h`` = 1800 veh/h per lane (HCM base saturation flow)
    × Σ over the approach's lanes of each lane's own g/C (for a movement: its lanes × its g/C).
    ``vc_ratio`` = ``flow_veh_per_h`` (vehicles served / window length) / capacity.

Congestion index
    Travel time ÷ free-flow travel time, with free-flow time = time − SUMO time loss (what the
    time would have been at the allowed speed): (veh_s) / (veh_s − delay_s) over the vehicle-steps of
    the approach (or network, or corridor trip). 1 = free flow.

Spillback
    A lane is *full* at a step when its halted vehicles form one queue from its downstream end to its
    upstream end: the first within :data:`JAM_GAP_M` of the end, each next within :data:`JAM_GAP_M`
    of the one ahead, the last within :data:`JAM_GAP_M` of the lane's start (positions of the vehicles'
    fronts). An *approach lane* is an incoming lane extended upstream through plain continuations
    (a lane whose only successor it is and which is its only predecessor, no signal in between: nodes
    that only split an edge or renumber lanes), with the internal lanes between (:data:`CHAIN_MAX_M`
    at most). A **spillback event** of an approach is a period of at least :data:`SPILLBACK_MIN_S`
    consecutive steps in which one of its approach lanes is full (the queue reaches the upstream end
    of the approach lane); ``spillback_s`` is the time of those periods. **Blocked green**
    (``blocked_green_s``): the time a movement showed green while the lane it leads into was full
    (nobody can pass); an approach sums its movements, a junction its approaches (movement-seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .metrics import EXIT, HALT_SPEED, INTERNAL, NEAR, ZoneMap, level_of_service, traffic_columns
from .network import SignalNetwork

#: HCM base saturation flow (veh/h per lane)
SATURATION_VEH_PER_H_LANE = 1800.0
#: largest gap (m) between the fronts of consecutive halted vehicles of one queue, and between the
#: queue's ends and the lane's ends, for a lane to count as full
JAM_GAP_M = 15.0
#: a spillback event lasts at least this long (s)
SPILLBACK_MIN_S = 5.0
#: an approach lane is followed upstream through plain continuations up to this length (m)
CHAIN_MAX_M = 1000.0
NONE_APPROACH = "(none)"
UNRESOLVED = "(unresolved)"
_QMAX = 1024  # the 95th percentile counts longer queues as this (the maximum and the mean are exact)


def _key(veh: np.ndarray, t: np.ndarray) -> np.ndarray:
    ms = np.rint(np.clip(t, 0.0, 2.0 ** 36) * 1000.0).astype(np.int64)
    return (veh.astype(np.int64) << 37) | ms


class ApproachMap:
    """Approaches, movements and per-lane lookups of a network's junctions (in a ZoneMap's lane order)."""

    def __init__(self, net: SignalNetwork, zone_map: ZoneMap) -> None:
        lane_ids = zone_map.lane_ids
        index = zone_map.lane_index
        n = len(lane_ids)
        self.junction_ids = list(zone_map.junction_ids)
        edges: dict[str, int] = {}
        self.lane_edge = np.array([edges.setdefault(net.lanes[lid].edge if lid else "", len(edges))
                                   for lid in lane_ids], dtype=np.int64)
        self.n_edges = len(edges)
        self.lane_length = np.array([net.lanes[lid].length if lid else np.inf for lid in lane_ids])
        self.lane_ids = lane_ids
        self.appr_junction: list[int] = []  # junction index per approach
        self.appr_edge: list[str] = []
        self.appr_lanes: list[list[int]] = []
        self.none_appr = np.zeros(len(self.junction_ids), dtype=np.int64)
        self.mov_appr: list[int] = []
        self.mov_edge: list[str] = []
        self.mov_lanes: list[list[int]] = []
        self.unresolved = []  # movement index of each approach's (unresolved)
        self.in_appr = np.full(n, -1, dtype=np.int64)  # approach of an incoming lane
        self.int_appr = np.full(n, -1, dtype=np.int64)  # approach of an internal lane (its link's)
        self.int_mov = np.full(n, -1, dtype=np.int64)
        self.junc_lane = np.full(n, -1, dtype=np.int64)  # junction of an incoming or internal lane
        #: signalised vehicle links: junction index, index into the state string, out lane, movement
        link_j, link_c, link_out, link_mov, link_in = [], [], [], [], []
        mov_of: dict[tuple[int, int], int] = {}
        for ji, jid in enumerate(self.junction_ids):
            junction = net.junctions[jid]
            for lane in (*junction.incoming_lanes, *junction.internal_lanes):
                self.junc_lane[index[lane]] = ji
            appr_of: dict[str, int] = {}
            for lk in junction.links:
                if lk.in_lane.startswith(":") or lk.out_lane.startswith(":"):
                    continue  # pedestrian crossings and walking areas
                e_in, e_out = net.lanes[lk.in_lane].edge, net.lanes[lk.out_lane].edge
                if e_in not in appr_of:
                    appr_of[e_in] = len(self.appr_edge)
                    self.appr_junction.append(ji)
                    self.appr_edge.append(e_in)
                    self.appr_lanes.append([])
                a = appr_of[e_in]
                li = index[lk.in_lane]
                if li not in self.appr_lanes[a]:
                    self.appr_lanes[a].append(li)
                self.in_appr[li] = a
                key = (a, edges.setdefault(e_out, len(edges)))
                if key not in mov_of:
                    mov_of[key] = len(self.mov_edge)
                    self.mov_appr.append(a)
                    self.mov_edge.append(e_out)
                    self.mov_lanes.append([])
                m = mov_of[key]
                if li not in self.mov_lanes[m]:
                    self.mov_lanes[m].append(li)
                for v in lk.via:
                    if self.int_appr[index[v]] < 0:
                        self.int_appr[index[v]], self.int_mov[index[v]] = a, m
                link_j.append(ji)
                link_c.append(lk.index)
                link_out.append(index[lk.out_lane])
                link_mov.append(m)
                link_in.append(li)
            self.none_appr[ji] = len(self.appr_edge)
            self.appr_junction.append(ji)
            self.appr_edge.append(NONE_APPROACH)
            self.appr_lanes.append([])
        self.n_edges = len(edges)
        for a in range(len(self.appr_edge)):
            self.unresolved.append(len(self.mov_edge))
            self.mov_appr.append(a)
            self.mov_edge.append(UNRESOLVED)
            self.mov_lanes.append([])
        self.unresolved_of = np.array(self.unresolved, dtype=np.int64)
        self.n_appr, self.n_mov = len(self.appr_edge), len(self.mov_edge)
        keys = np.array([a * self.n_edges + e for a, e in mov_of], dtype=np.int64)
        order = np.argsort(keys)
        self._mov_keys = keys[order]
        self._mov_vals = np.array(list(mov_of.values()), dtype=np.int64)[order]
        self.link_j, self.link_c = np.array(link_j, dtype=np.int64), np.array(link_c, dtype=np.int64)
        self.link_out, self.link_mov = np.array(link_out, dtype=np.int64), np.array(link_mov, dtype=np.int64)
        self.link_in = np.array(link_in, dtype=np.int64)
        #: lanes links lead into (their fullness blocks the green)
        self.watch = np.zeros(n, dtype=bool)
        self.watch[self.link_out] = True
        #: approach lanes extended upstream through plain continuations (see :meth:`_chains`): per
        #: lane the approach lane whose chain it is in (-1: none) and its start along the chain (m)
        self.chain_of = np.full(n, -1, dtype=np.int64)
        self.chain_off = np.zeros(n)
        self.chain_len = np.zeros(n)
        self._chains(net, index)

    def _chains(self, net: SignalNetwork, index: dict[str, int]) -> None:
        """The *approach lane* of spillback: an incoming lane and, upstream, every lane that continues
        into it one to one (its only successor, the lane's only predecessor, no signal in between: a
        geometry or lane-numbering node, not a junction), with the internal lanes between, up to
        :data:`CHAIN_MAX_M`. The queue must reach the upstream end of the whole chain."""
        for li in np.flatnonzero(self.in_appr >= 0):
            lane = self.lane_ids[li]
            parts = [lane]
            total = net.lanes[lane].length
            while total < CHAIN_MAX_M:
                preds = net.lanes[lane].predecessors
                if len(preds) != 1:
                    break
                via, frm, tls = preds[0]
                if tls or len(net.lanes[frm].successors) != 1 or self.in_appr[index[frm]] >= 0 \
                        or self.chain_of[index[frm]] >= 0 or frm in parts:
                    break
                parts = [frm, *via, *parts]
                total += net.lanes[frm].length + sum(net.lanes[v].length for v in via)
                lane = frm
            off = 0.0
            for part in parts:
                i = index[part]
                self.chain_of[i], self.chain_off[i] = li, off
                off += net.lanes[part].length
            self.chain_len[li] = off

    def movement(self, appr: np.ndarray, lane: np.ndarray) -> np.ndarray:
        """Movement index of leaving approach ``appr`` onto ``lane`` (-1: not one of its movements)."""
        k = appr * self.n_edges + self.lane_edge[lane]
        i = np.clip(np.searchsorted(self._mov_keys, k), 0, max(len(self._mov_keys) - 1, 0))
        if not len(self._mov_keys):
            return np.full(len(k), -1, dtype=np.int64)
        return np.where((self._mov_keys[i] == k) & (appr >= 0), self._mov_vals[i], -1)


class Crossings:
    """First pass over the samples: every junction crossing (vehicle, time, junction, approach,
    movement). Rows in time order, a batch at a time; memory grows with the crossings, not the steps."""

    def __init__(self, amap: ApproachMap) -> None:
        self.amap = amap
        self.prev_lane = np.zeros(0, dtype=np.int64)
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, veh: np.ndarray, t: np.ndarray, lane: np.ndarray) -> None:
        if not len(veh):
            return
        need = int(veh.max()) + 1
        if need > len(self.prev_lane):
            self.prev_lane = np.concatenate([self.prev_lane, np.full(need - len(self.prev_lane), -1, dtype=np.int64)])
        am = self.amap
        order = np.argsort(veh, kind="stable")
        vs, ls = veh[order], lane[order]
        first = np.ones(len(vs), dtype=bool)
        first[1:] = vs[1:] != vs[:-1]
        prev = np.empty_like(ls)
        prev[1:] = ls[:-1]
        prev[first] = self.prev_lane[vs[first]]  # -1: none (indexes the "" lane, in no junction)
        jp = am.junc_lane[prev]
        cross = (jp >= 0) & (am.junc_lane[ls] != jp)
        last = np.ones(len(vs), dtype=bool)
        last[:-1] = vs[1:] != vs[:-1]
        self.prev_lane[vs[last]] = ls[last]
        if not cross.any():
            return
        p, c = prev[cross], ls[cross]
        appr = np.where(am.in_appr[p] >= 0, am.in_appr[p], am.int_appr[p])
        ok = appr >= 0
        mov = am.movement(appr, c)
        mov = np.where(mov >= 0, mov, am.int_mov[p])
        mov = np.where(mov >= 0, mov, am.unresolved_of[np.maximum(appr, 0)])
        self._parts.append((vs[cross][ok], t[order][cross][ok], jp[cross][ok], appr[ok], mov[ok]))

    def finish(self) -> None:
        cols = [np.concatenate(c) if c else np.zeros(0) for c in zip(*self._parts)] if self._parts else \
            [np.zeros(0, dtype=np.int64), np.zeros(0), *(np.zeros(0, dtype=np.int64) for _ in range(3))]
        veh, t, j, a, m = cols
        key = _key(veh.astype(np.int64), t.astype(float))
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.veh, self.junction = veh.astype(np.int64)[order], j.astype(np.int64)[order]
        self.appr, self.mov = a.astype(np.int64)[order], m.astype(np.int64)[order]
        self._parts = []

    def lookup(self, veh: np.ndarray, t: np.ndarray, junction: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(approach, movement) of each row's crossing of ``junction``: its next crossing after ``t``
        where ``after``, else its last one at or before ``t``; -1 where that crossing is not of
        ``junction`` (or there is none)."""
        n = len(self.key)
        if not n:
            return np.full(len(veh), -1, dtype=np.int64), np.full(len(veh), -1, dtype=np.int64)
        i = np.searchsorted(self.key, _key(veh, t), side="right")
        i = np.where(after, i, i - 1)
        ok = (i >= 0) & (i < n)
        ic = np.clip(i, 0, n - 1)
        ok &= (self.veh[ic] == veh) & (self.junction[ic] == junction)
        return np.where(ok, self.appr[ic], -1), np.where(ok, self.mov[ic], -1)


class SignalStates:
    """Signal states over the run from the step loop's change log ((time s, junction, state), in
    time order): green masks per junction, looked up by time."""

    def __init__(self, log: Iterable[tuple[float, str, str]], junction_ids: Sequence[str]) -> None:
        by: dict[str, list[tuple[float, str]]] = {j: [] for j in junction_ids}
        for t, j, st in log:
            if j in by:
                by[j].append((t, st))
        self.times: list[np.ndarray] = []
        self.green: list[np.ndarray] = []  # per junction: (changes, links) bool
        for j in junction_ids:
            rows = by[j]
            width = max((len(s) for _, s in rows), default=0)
            self.times.append(np.array([t for t, _ in rows], dtype=float))
            chars = np.array([s.ljust(width, "r").encode("ascii", "replace") for _, s in rows], dtype=f"S{max(width, 1)}")
            codes = chars.view(np.uint8).reshape(len(rows), max(width, 1))[:, :width]
            self.green.append((codes == ord("G")) | (codes == ord("g")))

    def green_at(self, junction: np.ndarray, char: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether link ``char`` of ``junction`` showed green at time ``t`` (each an array)."""
        out = np.zeros(len(t), dtype=bool)
        for j in np.unique(junction):
            sel = junction == j
            times, g = self.times[j], self.green[j]
            if not len(times) or not g.shape[1]:
                continue
            i = np.searchsorted(times, t[sel], side="right") - 1
            c = char[sel]
            ok = (i >= 0) & (c < g.shape[1])
            res = np.zeros(int(sel.sum()), dtype=bool)
            res[ok] = g[i[ok], c[ok]]
            out[sel] = res
        return out


_SUMS = ("veh_s", "halted_veh_s", "delay_s", "stops", "co2_mg", "served", "arrival_s")


class ApproachStats:
    """Second pass: the same rows :class:`mobility.metrics.Attribution` attributes (it calls
    :meth:`rows` and :meth:`arrive` as its ``listener``), summed per approach and per movement, plus
    the network's congestion index and the spillback and blocked-green steps."""

    def __init__(self, amap: ApproachMap, crossings: Crossings, signals: SignalStates, dt: float) -> None:
        self.amap, self.cross, self.signals, self.dt = amap, crossings, signals, dt
        self.a = {k: np.zeros(amap.n_appr) for k in _SUMS}
        self.m = {k: np.zeros(amap.n_mov) for k in _SUMS}
        # queue samples per step: counts of each non-zero length (zeros follow from the step count),
        # the sum and the maximum
        self.a_hist = np.zeros((amap.n_appr, _QMAX + 1), dtype=np.int32)
        self.m_hist = np.zeros((amap.n_mov, _QMAX + 1), dtype=np.int32)
        self.a_qsum, self.m_qsum = np.zeros(amap.n_appr), np.zeros(amap.n_mov)
        self.a_qmax, self.m_qmax = np.zeros(amap.n_appr, dtype=np.int64), np.zeros(amap.n_mov, dtype=np.int64)
        self.steps = 0
        self.last_a = np.zeros(0, dtype=np.int64)
        self.last_m = np.zeros(0, dtype=np.int64)
        self.net_veh_s = self.net_delay_s = 0.0
        self._spill: list[tuple[np.ndarray, np.ndarray]] = []  # (time, lane) of full watched lanes
        self._blocked: list[tuple[np.ndarray, np.ndarray]] = []  # (time, movement) of blocked greens

    def _grow(self, need: int) -> None:
        if need > len(self.last_a):
            grow = need - len(self.last_a)
            self.last_a = np.concatenate([self.last_a, np.full(grow, -1, dtype=np.int64)])
            self.last_m = np.concatenate([self.last_m, np.full(grow, -1, dtype=np.int64)])

    def assign(self, veh: np.ndarray, t: np.ndarray, lane: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Approach and movement of each row (-1 outside every zone)."""
        am = self.amap
        zone = code >= 0
        j = np.where(zone, code // 4, 0)
        part = code % 4
        a, m = self.cross.lookup(veh, t, j, part != EXIT)
        static = np.where(part == NEAR, am.in_appr[lane], np.where(part == INTERNAL, am.int_appr[lane], -1))
        static = np.where(static >= 0, static, am.none_appr[j])
        a = np.where(a >= 0, a, static)
        # no crossing: on an internal lane its link's movement, else (unresolved)
        m = np.where(m >= 0, m, np.where((part == INTERNAL) & (am.int_mov[lane] >= 0) & (am.int_appr[lane] == a),
                                         am.int_mov[lane], am.unresolved_of[a]))
        return np.where(zone, a, -1), np.where(zone, m, -1)

    def rows(self, veh: np.ndarray, t: np.ndarray, lane: np.ndarray, pos: np.ndarray, speed: np.ndarray,
             code: np.ndarray, prev_code: np.ndarray, stop: np.ndarray, dloss: np.ndarray, co2: np.ndarray,
             counted: np.ndarray, measured: np.ndarray) -> None:
        self._grow(int(veh.max()) + 1)
        c = counted
        veh, t, lane, pos, speed, code, prev_code, stop, dloss, co2, meas = (
            x[c] for x in (veh, t, lane, pos, speed, code, prev_code, stop, dloss, co2, measured))
        if not len(veh):
            return
        a, m = self.assign(veh, t, lane, code)
        rev = len(veh) - 1 - np.unique(veh[::-1], return_index=True)[1]  # each vehicle's last row
        self.last_a[veh[rev]], self.last_m[veh[rev]] = a[rev], m[rev]
        if not meas.any():
            return
        veh, t, lane, pos, speed, code, prev_code, stop, dloss, co2, a, m = (
            x[meas] for x in (veh, t, lane, pos, speed, code, prev_code, stop, dloss, co2, a, m))
        dt = self.dt
        self.net_veh_s += len(veh) * dt
        self.net_delay_s += float(dloss.sum())
        halted = speed < HALT_SPEED
        z = a >= 0
        for idx, sums, n in ((a, self.a, self.amap.n_appr), (m, self.m, self.amap.n_mov)):
            i = idx[z]
            sums["veh_s"] += np.bincount(i, minlength=n) * dt
            sums["halted_veh_s"] += np.bincount(idx[z & halted], minlength=n) * dt
            sums["delay_s"] += np.bincount(i, weights=dloss[z], minlength=n)
            sums["stops"] += np.bincount(idx[z & stop], minlength=n)
            sums["co2_mg"] += np.bincount(i, weights=co2[z], minlength=n) * dt
        # served: left a junction's near approach (the junction table's rule), by that crossing
        served = (prev_code >= 0) & (prev_code % 4 == NEAR) & (code != prev_code)
        if served.any():
            js = prev_code[served] // 4
            cs = code[served]
            after = (cs >= 0) & (cs // 4 == js) & (cs % 4 == INTERNAL)
            sa, sm = self.cross.lookup(veh[served], t[served], js, after)
            am, ls = self.amap, lane[served]
            inner = after & (am.int_appr[ls] >= 0)  # entered the junction, not out of it by the end
            sa, sm = np.where(sa >= 0, sa, np.where(inner, am.int_appr[ls], am.none_appr[js])), \
                np.where(sa >= 0, sm, np.where(inner, am.int_mov[ls], -1))
            sm = np.where(sm >= 0, sm, am.unresolved_of[sa])
            self.a["served"] += np.bincount(sa, minlength=self.amap.n_appr)
            self.m["served"] += np.bincount(sm, minlength=self.amap.n_mov)
        # queues: halted in the approach and internal parts, per step
        step = np.rint((t - t.min()) / dt).astype(np.int64)
        present = np.unique(step)
        self.steps += len(present)
        q = z & halted & (code % 4 != EXIT)
        for idx, hist, qsum, qmax, n in ((a, self.a_hist, self.a_qsum, self.a_qmax, self.amap.n_appr),
                                         (m, self.m_hist, self.m_qsum, self.m_qmax, self.amap.n_mov)):
            if not q.any():
                continue
            key, count = np.unique(step[q] * n + idx[q], return_counts=True)  # (step, bin) -> halted vehicles
            col = key % n
            qsum += np.bincount(col, weights=count, minlength=n)
            np.maximum.at(qmax, col, count)
            cell, k = np.unique(col * (_QMAX + 1) + np.minimum(count, _QMAX), return_counts=True)
            hist.reshape(-1)[cell] += k.astype(np.int32)
        self._full_lanes(t, lane, pos, halted)

    def _full_lanes(self, t: np.ndarray, lane: np.ndarray, pos: np.ndarray, halted: np.ndarray) -> None:
        """Record the steps at which an approach lane (its chain) is full, and the blocked greens:
        links showing green into a full lane (see the module docstring)."""
        am = self.amap
        h = halted & (am.chain_of[lane] >= 0)
        if h.any():
            ch = am.chain_of[lane[h]]
            ft, fc = _full(t[h], ch, am.chain_off[lane[h]] + pos[h], am.chain_len[ch])
            if len(ft):
                self._spill.append((ft, fc))
        h = halted & am.watch[lane]
        if not h.any():
            return
        ft, fl = _full(t[h], lane[h], pos[h], am.lane_length[lane[h]])
        if not len(ft):
            return
        order = np.argsort(am.link_out, kind="stable")
        lo = am.link_out[order]
        lo_start = np.searchsorted(lo, fl, side="left")
        cnt = np.searchsorted(lo, fl, side="right") - lo_start
        if not cnt.sum():
            return
        rep = np.repeat(np.arange(len(fl)), cnt)
        k = order[np.repeat(lo_start, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))]
        green = self.signals.green_at(am.link_j[k], am.link_c[k], ft[rep])
        if green.any():
            self._blocked.append((ft[rep][green], am.link_mov[k][green]))

    def arrive(self, slots: np.ndarray, code: np.ndarray, delay: np.ndarray, co2: np.ndarray) -> None:
        """The estimated final step of vehicles that left the network (see ``Attribution.arrive``),
        attributed where each was last seen."""
        self._grow(int(slots.max()) + 1 if len(slots) else 0)
        dt = self.dt
        self.net_veh_s += len(slots) * dt
        self.net_delay_s += float(delay.sum())
        a, m = self.last_a[slots], self.last_m[slots]
        z = (code >= 0) & (a >= 0)
        for idx, sums, n in ((a, self.a, self.amap.n_appr), (m, self.m, self.amap.n_mov)):
            i = idx[z]
            sums["delay_s"] += np.bincount(i, weights=delay[z], minlength=n)
            sums["co2_mg"] += np.bincount(i, weights=co2[z], minlength=n) * dt
            sums["arrival_s"] += np.bincount(i, minlength=n) * dt

    # -- results ------------------------------------------------------------------------------

    def _spillback(self) -> tuple[np.ndarray, np.ndarray]:
        """Per approach: spillback events and their time (s)."""
        am, dt = self.amap, self.dt
        events, secs = np.zeros(am.n_appr), np.zeros(am.n_appr)
        if not self._spill:
            return events, secs
        t = np.concatenate([x for x, _ in self._spill])
        appr = am.in_appr[np.concatenate([y for _, y in self._spill])]  # chains are named by their approach lane
        keep = appr >= 0
        t, appr = t[keep], appr[keep]
        if not len(t):
            return events, secs
        steps = np.rint(t / dt).astype(np.int64)
        key = np.unique(appr.astype(np.int64) * (1 << 40) + steps)  # a step of an approach counts once
        appr, steps = key >> 40, key & ((1 << 40) - 1)
        new = np.ones(len(key), dtype=bool)
        new[1:] = (appr[1:] != appr[:-1]) | (steps[1:] - steps[:-1] > 1)
        run = np.cumsum(new) - 1
        length = np.bincount(run) * dt
        run_appr = appr[new]
        ok = length >= SPILLBACK_MIN_S - 1e-9
        events += np.bincount(run_appr[ok], minlength=am.n_appr)
        secs += np.bincount(run_appr[ok], weights=length[ok], minlength=am.n_appr)
        return events, secs

    def _blocked_s(self) -> np.ndarray:
        am, dt = self.amap, self.dt
        if not self._blocked:
            return np.zeros(am.n_mov)
        t = np.concatenate([x for x, _ in self._blocked])
        mov = np.concatenate([y for _, y in self._blocked]).astype(np.int64)
        key = np.unique(mov * (1 << 40) + np.rint(t / dt).astype(np.int64))  # a step of a movement counts once
        return np.bincount(key >> 40, minlength=am.n_mov) * dt

    def tables(self, measure_from: float, t_end: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The ``approaches`` and ``movements`` tables (one row per approach / movement that saw
        anything, plus every signalised one), units in column names."""
        am, dt = self.amap, self.dt
        window_s = max(t_end - measure_from, dt)
        grid = measure_from + dt * np.arange(1, int(round(window_s / dt)) + 1)
        n_grid = max(len(grid), 1)
        # green ratios: per approach lane (any of its links) and per movement (any of its links)
        lane_g: dict[int, float] = {}
        mov_g = np.full(am.n_mov, np.nan)
        for ji in range(len(am.junction_ids)):
            sel = np.flatnonzero(am.link_j == ji)
            if not len(sel):
                continue
            times, g = self.signals.times[ji], self.signals.green[ji]
            if not len(times) or not g.shape[1]:
                continue
            i = np.searchsorted(times, grid, side="right") - 1
            shown = g[np.maximum(i, 0)] & (i >= 0)[:, None]  # (steps, links)
            chars = np.minimum(am.link_c[sel], g.shape[1] - 1)
            for lane in np.unique(am.link_in[sel]):
                cs = chars[am.link_in[sel] == lane]
                lane_g[int(lane)] = float(shown[:, cs].any(axis=1).sum() / n_grid)
            for mv in np.unique(am.link_mov[sel]):
                cs = chars[am.link_mov[sel] == mv]
                mov_g[mv] = float(shown[:, cs].any(axis=1).sum() / n_grid)
        appr_cap = np.array([SATURATION_VEH_PER_H_LANE * sum(lane_g.get(ln, 0.0) for ln in ls) if ls else np.nan
                             for ls in am.appr_lanes])
        appr_g = np.array([np.mean([lane_g.get(ln, 0.0) for ln in ls]) if ls else np.nan for ls in am.appr_lanes])
        mov_cap = np.array([SATURATION_VEH_PER_H_LANE * len(ls) * mov_g[i] if ls else np.nan
                            for i, ls in enumerate(am.mov_lanes)])
        events, spill_s = self._spillback()
        blocked = self._blocked_s()
        appr_blocked = np.bincount(np.array(am.mov_appr, dtype=np.int64), weights=blocked, minlength=am.n_appr)
        jids = np.asarray(am.junction_ids, dtype=object)

        def frame(sums: dict[str, np.ndarray], hist: np.ndarray, qsum: np.ndarray, qmax: np.ndarray,
                  cap: np.ndarray, green: np.ndarray,
                  lanes: list[list[int]]) -> pd.DataFrame:
            served = sums["served"]
            hours = window_s / 3600.0
            with np.errstate(divide="ignore", invalid="ignore"):
                hist = hist.astype(np.int64)
                hist[:, 0] = np.maximum(self.steps - hist[:, 1:].sum(axis=1), 0)  # steps with no queue
                cdf = np.cumsum(hist, axis=1) / np.maximum(hist.sum(axis=1, keepdims=True), 1)
                p95 = (cdf < 0.95 - 1e-12).sum(axis=1)
                tt = sums["veh_s"] + sums["arrival_s"]
                flow = served / hours
                return pd.DataFrame({
                    "lanes": [len(ls) for ls in lanes],
                    **traffic_columns(sums, qmax, qsum, self.steps),
                    "queue_p95_veh": p95.astype(np.int64),
                    "flow_veh_per_h": flow,
                    "green_ratio": green,
                    "capacity_veh_per_h": cap,
                    "vc_ratio": np.where(cap > 0, flow / cap, np.nan),
                    "congestion_index": np.where(tt - sums["delay_s"] > 0, tt / (tt - sums["delay_s"]), np.nan),
                    "co2_kg": sums["co2_mg"] / 1e6,
                })

        appr_j = np.array(am.appr_junction, dtype=np.int64)
        adf = frame(self.a, self.a_hist, self.a_qsum, self.a_qmax, appr_cap, appr_g, am.appr_lanes)
        adf.insert(0, "approach", am.appr_edge)
        adf.insert(0, "junction_id", jids[appr_j])
        adf.insert(adf.columns.get_loc("delay_s_per_veh") + 1, "hcm_los",
                   [level_of_service(x) for x in adf["delay_s_per_veh"]])
        adf["spillback_events"] = events.astype(np.int64)
        adf["spillback_s"] = spill_s
        adf["blocked_green_s"] = appr_blocked
        mov_a = np.array(am.mov_appr, dtype=np.int64)
        mdf = frame(self.m, self.m_hist, self.m_qsum, self.m_qmax, mov_cap, mov_g, am.mov_lanes)
        mdf.insert(0, "to_edge", am.mov_edge)
        mdf.insert(0, "approach", np.asarray(am.appr_edge, dtype=object)[mov_a])
        mdf.insert(0, "junction_id", jids[appr_j[mov_a]])
        mdf.insert(mdf.columns.get_loc("delay_s_per_veh") + 1, "hcm_los",
                   [level_of_service(x) for x in mdf["delay_s_per_veh"]])
        mdf["blocked_green_s"] = blocked
        # pseudo rows ((none), (unresolved)) only when they hold something
        busy = lambda df: (df[["vehicles", "veh_s", "delay_s", "co2_kg", "stops"]].abs().sum(axis=1) > 0)  # noqa: E731
        adf = adf[(adf["approach"] != NONE_APPROACH) | busy(adf)].reset_index(drop=True)
        mdf = mdf[(mdf["to_edge"] != UNRESOLVED) | busy(mdf)].reset_index(drop=True)
        return adf, mdf

    @property
    def network_congestion_index(self) -> float:
        """Network travel time ÷ free-flow travel time over the window (every vehicle-step)."""
        free = self.net_veh_s - self.net_delay_s
        return self.net_veh_s / free if free > 0 else float("nan")


def _full(t: np.ndarray, group: np.ndarray, pos: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(time, group) of the groups (lanes or chains of lanes, ``length`` m each, per row) whose halted
    vehicles (rows at positions ``pos`` m from the group's start) form one queue from end to start:
    gaps of at most :data:`JAM_GAP_M` between the end, each vehicle's front and the start."""
    order = np.lexsort((-pos, group, t))
    tt, gg, pp, ln = t[order], group[order], pos[order], length[order]
    start = np.ones(len(tt), dtype=bool)
    start[1:] = (tt[1:] != tt[:-1]) | (gg[1:] != gg[:-1])
    gap = np.zeros(len(pp))
    gap[1:] = pp[:-1] - pp[1:]
    gap[start] = 0.0
    s = np.flatnonzero(start)
    e = np.r_[s[1:], len(tt)] - 1
    full = (ln[s] - pp[s] <= JAM_GAP_M) & (np.maximum.reduceat(gap, s) <= JAM_GAP_M) & (pp[e] <= JAM_GAP_M)
    return tt[s][full], gg[s][full]


def junction_columns(approaches: pd.DataFrame) -> pd.DataFrame:
    """Per junction: ``spillback_events``, ``spillback_s``, ``blocked_green_s`` (sums over its approaches)."""
    cols = ["spillback_events", "spillback_s", "blocked_green_s"]
    return approaches.groupby("junction_id", sort=False)[cols].sum()


def corridor_congestion_index(corridor: pd.DataFrame) -> pd.Series:
    """Per corridor direction: mean travel time ÷ mean free-flow travel time (travel time − delay)."""
    free = corridor["travel_time_s_mean"] - corridor["delay_s_per_veh"]
    return (corridor["travel_time_s_mean"] / free.where(free > 0)).astype(float)


def read_crossings(amap: ApproachMap, batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Crossings:
    """The first pass: every crossing of the (vehicle, time, lane) batches."""
    c = Crossings(amap)
    for veh, t, lane in batches:
        c.add(veh, t, lane)
    c.finish()
    return c


def attach(attribution: Any, amap: ApproachMap, crossings: Crossings, signal_log: Iterable[tuple[float, str, str]]) -> ApproachStats:
    """An :class:`ApproachStats` listening to ``attribution``."""
    stats = ApproachStats(amap, crossings, SignalStates(signal_log, amap.junction_ids), attribution.dt)
    attribution.listener = stats
    return stats


def format_approaches(approaches: pd.DataFrame, network: pd.DataFrame | None = None) -> str:
    """The per-approach lines ``mobility run`` prints (one run): vehicles, delay and LOS, v/c, queue,
    spillback and blocked green, and the network's congestion index."""
    if approaches.empty:
        return ""
    a = approaches[approaches["approach"] != NONE_APPROACH]
    w = min(30, max(10, *(len(str(x)) for x in a["junction_id"]))) + 2
    e = min(30, max(10, *(len(str(x)) for x in a["approach"]))) + 2
    head = (f"{'junction':<{w}}{'approach':<{e}}{'veh':>6}{'delay s/veh LOS':>17}{'v/c':>6}{'queue p95/max':>15}"
            f"{'CI':>6}{'spillback n/s':>15}{'blocked green s':>17}")
    lines = ["Per approach (queue in vehicles; CI: congestion index = travel time / free-flow time):", head,
             "-" * len(head)]
    for r in a.itertuples(index=False):
        jid = str(r.junction_id) if len(str(r.junction_id)) <= w - 2 else str(r.junction_id)[: w - 3] + "…"
        ap = str(r.approach) if len(str(r.approach)) <= e - 2 else str(r.approach)[: e - 3] + "…"
        lines.append(f"{jid:<{w}}{ap:<{e}}{r.vehicles:>6}{r.delay_s_per_veh:>13.1f} {r.hcm_los:<3}{r.vc_ratio:>6.2f}"
                     f"{f'{r.queue_p95_veh}/{r.queue_max_veh}':>15}{r.congestion_index:>6.2f}"
                     f"{f'{r.spillback_events}/{r.spillback_s:.0f}':>15}{r.blocked_green_s:>17.0f}")
    if network is not None and "congestion_index" in network.columns and len(network):
        lines.append(f"\nNetwork congestion index: {float(network['congestion_index'].iloc[0]):.2f}")
    return "\n".join(lines)
