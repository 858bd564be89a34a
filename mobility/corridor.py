"""Corridor metrics and time–space data: what a green wave is judged by.

A corridor is an ordered list of signalised junctions (scenario field ``corridor``). Its two
directions are ``outbound`` (first → last junction) and ``inbound`` (last → first). For each
direction the *path* runs from the approach edge into the first junction, along the corridor of
:func:`mobility.greenwave.corridor_path` through those junctions (the shortest way between
consecutive ones that crosses no other signal; inbound, the straight-on chain back where there is
one), to the exit edge of the last junction: the same path a green wave is planned on.

A **corridor trip** is a vehicle that enters the path on its first edge and reaches its last edge
without leaving the path (through traffic on the arterial). Per direction, over trips that enter
after the warm-up:

* ``vehicles``: complete trips;
* ``travel_time_s_mean``: time from the first step on the entry edge to the last step on the exit
  edge;
* ``delay_s_per_veh``, ``stops_per_veh``, ``co2_g_per_veh``: SUMO timeLoss, stops (moving →
  halted, < 0.1 m/s) and CO2 accumulated while on the path, per trip.

Time–space data (optional): every step of every tracked vehicle on the path as (time, trip,
direction, distance along the path in m, speed), and every change of the through-movement signal
state of each corridor junction per direction as (time, junction, direction, distance, state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ControllerError, ScenarioError
from .metrics import HALT_SPEED
from .network import SignalNetwork

DIRECTIONS = ("outbound", "inbound")


@dataclass
class CorridorMap:
    """Per-lane lookup of corridor direction, path index and distance along the path."""

    junctions: tuple[str, ...]
    paths: tuple[tuple[str, ...], tuple[str, ...]]  # edge ids per direction
    lane_dir: np.ndarray  # -1 or direction index, per lane of the ZoneMap's lane index
    lane_step: np.ndarray  # index along the path (internal lanes: index of the edge they leave)
    lane_dist: np.ndarray  # distance of the lane start from the path start (m)
    last_step: tuple[int, int]
    length_m: tuple[float, float]
    through_links: dict[tuple[str, int], int]  # (junction, direction) -> link index of the through movement
    junction_dist: dict[tuple[str, int], float]  # (junction, direction) -> distance of its stop line

    @classmethod
    def build(cls, net: SignalNetwork, junctions: tuple[str, ...] | list[str], lane_index: dict[str, int],
              source: str = "scenario") -> CorridorMap:
        jids = tuple(junctions)
        for j in jids:
            if j not in net.junctions:
                raise ScenarioError(f"{source}: field 'corridor': '{j}' is not a signalised junction of {net.path.name}")
        if len(jids) < 2:
            raise ScenarioError(f"{source}: field 'corridor': expected at least 2 junctions, got {len(jids)}")
        n = len(lane_index)
        lane_dir = np.full(n, -1, dtype=np.int64)
        lane_step = np.full(n, -1, dtype=np.int64)
        lane_dist = np.zeros(n)
        paths, last, lengths = [], [], []
        through: dict[tuple[str, int], int] = {}
        jdist: dict[tuple[str, int], float] = {}
        edge_lanes: dict[str, list[str]] = {}
        for lid, info in net.lanes.items():
            edge_lanes.setdefault(info.edge, []).append(lid)
        both = _paths(net, jids, source)
        for d, order in enumerate((jids, jids[::-1])):
            path = both[d]
            paths.append(tuple(path))
            dist = 0.0
            starts = []
            for k, e in enumerate(path):
                starts.append(dist)
                gap = 0.0  # length across the junction between this edge and the next
                for lid in edge_lanes[e]:
                    lane_dir[lane_index[lid]], lane_step[lane_index[lid]] = d, k
                    lane_dist[lane_index[lid]] = dist
                    # internal lanes of connections continuing along the path
                    if k + 1 < len(path):
                        for via, to, _ in net.lanes[lid].successors:
                            if net.lanes[to].edge == path[k + 1]:
                                off = net.lanes[lid].length
                                for v in via:
                                    lane_dir[lane_index[v]], lane_step[lane_index[v]] = d, k
                                    lane_dist[lane_index[v]] = dist + off
                                    off += net.lanes[v].length
                                gap = max(gap, off - net.lanes[lid].length)
                dist += net.graph.nodes[e]["length"] + gap
            last.append(len(path) - 1)
            lengths.append(dist)
            # through link and stop-line distance of each junction in this direction
            pos = {e: i for i, e in enumerate(path)}
            for j in order:
                cands = [lk for lk in net.junctions[j].links
                         if net.lanes[lk.in_lane].edge in pos and net.lanes[lk.out_lane].edge in pos
                         and pos[net.lanes[lk.out_lane].edge] == pos[net.lanes[lk.in_lane].edge] + 1]
                if not cands:
                    raise ScenarioError(f"{source}: field 'corridor': no through movement at '{j}' along the path")
                cands.sort(key=lambda lk: (lk.direction != "s", lk.index))
                through[(j, d)] = cands[0].index
                e_in = net.lanes[cands[0].in_lane].edge
                jdist[(j, d)] = starts[pos[e_in]] + net.graph.nodes[e_in]["length"]
        return cls(jids, (paths[0], paths[1]), lane_dir, lane_step, lane_dist, (last[0], last[1]),
                   (lengths[0], lengths[1]), through, jdist)


def _paths(net: SignalNetwork, jids: tuple[str, ...], source: str) -> tuple[list[str], list[str]]:
    """Edges of both directions, from the approach into the first junction to the exit of the last:
    the corridor of :func:`mobility.greenwave.corridor_path` through ``jids`` (the path a green wave
    on these signals is planned on), :func:`mobility.greenwave.travel_edges` of each direction."""
    from .controllers.coordination.greenwave import corridor_path, travel_edges

    try:
        c = corridor_path(net, list(jids), owner="corridor")
        if c.inbound is None:
            raise ScenarioError(f"{source}: field 'corridor': '{jids[0]}' cannot be reached from '{jids[-1]}'")
        return list(travel_edges(net, c.outbound, "corridor")), list(travel_edges(net, c.inbound, "corridor"))
    except ControllerError as e:  # "controller 'corridor': parameter 'path': <what>"
        raise ScenarioError(f"{source}: field 'corridor': {str(e).split(': ', 2)[-1]}") from None


class CorridorTracker:
    """Follows vehicles along the corridor paths (slot-indexed state, numpy)."""

    def __init__(self, cmap: CorridorMap, dt: float, trajectories: bool = False, capacity: int = 1024) -> None:
        self.c = cmap
        self.dt = dt
        self.keep_traj = trajectories
        self._alloc(capacity)
        self.trips: list[np.ndarray] = []  # rows: dir, start, end, delay, stops, co2_mg
        self.traj: list[np.ndarray] = []  # rows: t, trip, dir, dist, speed
        self.next_trip = 0

    def _alloc(self, n: int) -> None:
        self.dir = np.full(n, -1, dtype=np.int64)
        self.start = np.zeros(n)
        self.last_t = np.zeros(n)
        self.exit_seen = np.zeros(n, dtype=bool)
        self.sums = np.zeros((n, 3))  # delay, stops, co2_mg
        self.trip = np.zeros(n, dtype=np.int64)

    def grow(self, need: int) -> None:
        if need <= len(self.dir):
            return
        old = (self.dir, self.start, self.last_t, self.exit_seen, self.sums, self.trip)
        self._alloc(max(need, 2 * len(self.dir)))
        for new, o in zip((self.dir, self.start, self.last_t, self.exit_seen, self.sums, self.trip), old):
            new[: len(o)] = o

    def reset_slots(self, slots: np.ndarray) -> None:
        self.grow(int(slots.max()) + 1 if len(slots) else 0)
        self.dir[slots] = -1

    def step(self, t: float, slots: np.ndarray, lane: np.ndarray, pos: np.ndarray, speed: np.ndarray,
             dloss: np.ndarray, stop: np.ndarray, co2: np.ndarray) -> None:
        c = self.c
        ldir = c.lane_dir[lane]
        lstep = c.lane_step[lane]
        cur = self.dir[slots]
        # vehicles that left their path (or never were on one) finish
        leaving = (cur >= 0) & (ldir != cur)
        if leaving.any():
            self._finish(slots[leaving])
        # vehicles on a path's entry edge start a trip
        starting = (ldir >= 0) & (lstep == 0) & ((cur < 0) | leaving)
        if starting.any():
            s = slots[starting]
            self.dir[s] = ldir[starting]
            self.start[s] = t - self.dt
            self.exit_seen[s] = False
            self.sums[s] = 0.0
            self.trip[s] = np.arange(self.next_trip, self.next_trip + len(s))
            self.next_trip += len(s)
        on = (self.dir[slots] >= 0) & (ldir == self.dir[slots])
        if not on.any():
            return
        s = slots[on]
        self.last_t[s] = t
        self.sums[s, 0] += dloss[on]
        self.sums[s, 1] += stop[on]
        self.sums[s, 2] += co2[on] * self.dt
        last = np.where(ldir[on] == 0, c.last_step[0], c.last_step[1])
        self.exit_seen[s] |= lstep[on] == last
        if self.keep_traj:
            self.traj.append(np.column_stack((np.full(len(s), t), self.trip[s], ldir[on],
                                              c.lane_dist[lane[on]] + pos[on], speed[on])))

    def _finish(self, slots: np.ndarray) -> None:
        done = self.exit_seen[slots]
        if done.any():
            s = slots[done]
            self.trips.append(np.column_stack((self.dir[s], self.start[s], self.last_t[s], self.sums[s])))
        self.dir[slots] = -1

    def arrive(self, slots: np.ndarray) -> None:
        if len(slots):
            tracked = slots[self.dir[slots] >= 0]
            if len(tracked):
                self._finish(tracked)

    def table(self, measure_from: float) -> pd.DataFrame:
        rows = np.concatenate(self.trips) if self.trips else np.zeros((0, 6))
        rows = rows[rows[:, 1] >= measure_from - 1e-9]
        out = []
        for d, name in enumerate(DIRECTIONS):
            r = rows[rows[:, 0] == d]
            n = len(r)
            order = self.c.junctions if d == 0 else self.c.junctions[::-1]
            tt = r[:, 2] - r[:, 1]
            out.append({
                "direction": name, "from_junction": order[0], "to_junction": order[-1],
                "length_m": self.c.length_m[d], "vehicles": n,
                "travel_time_s_mean": float(tt.mean()) if n else np.nan,
                "delay_s_per_veh": float(r[:, 3].mean()) if n else np.nan,
                "stops_per_veh": float(r[:, 4].mean()) if n else np.nan,
                "co2_g_per_veh": float(r[:, 5].mean() / 1e3) if n else np.nan,
                "co2_kg": float(r[:, 5].sum() / 1e6),
            })
        return pd.DataFrame(out)

    def trajectories(self) -> pd.DataFrame:
        rows = np.concatenate(self.traj) if self.traj else np.zeros((0, 5))
        df = pd.DataFrame(rows, columns=["time_s", "trip", "direction", "distance_m", "speed_m_s"])
        df["trip"] = df["trip"].astype(np.int64)
        df["direction"] = np.asarray(DIRECTIONS)[df["direction"].astype(int)] if len(df) else df["direction"]
        return df


def signal_rows(cmap: CorridorMap, t: float, states: dict[str, str], last: dict[tuple[str, int], str]) -> list[tuple]:
    """Changes of the through-movement signal state of each corridor junction and direction."""
    rows = []
    for (j, d), idx in cmap.through_links.items():
        st = states.get(j)
        if st is None or idx >= len(st):
            continue
        ch = st[idx]
        ch = "G" if ch in "Gg" else ("y" if ch in "yY" else "r")
        if last.get((j, d)) != ch:
            last[(j, d)] = ch
            rows.append((t, j, DIRECTIONS[d], cmap.junction_dist[(j, d)], ch))
    return rows


# halting threshold re-exported for callers computing stops consistently
__all__ = ["DIRECTIONS", "HALT_SPEED", "CorridorMap", "CorridorTracker", "signal_rows"]
