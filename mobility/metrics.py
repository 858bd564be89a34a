"""Attribution zones and per-junction aggregation (pure numpy; no SUMO here).

Definitions (also in ``docs/metrics.md``):

Zone of a junction (a signal controller)
    * **approach**: each incoming lane from the stop line back ``upstream_m`` metres, continuing onto
      the lanes (and internal lanes) that feed it through *unsignalised* junctions, never through
      another signal. The incoming lanes themselves are the *near* approach, the lanes further
      upstream the *far* approach.
    * **internal**: the junction's internal lanes (the paths across the junction box).
    * **exit**: each outgoing lane from the junction ``downstream_m`` metres on, continuing through
      unsignalised junctions, stopping at the next signal.

    Precedence, so that each vehicle-second lies in at most one zone: internal > near approach >
    far approach > exit. Where the exit of one junction meets the approach of the next on a short
    link, the approach wins (a queue belongs to the signal it waits for). Vehicle-seconds in no zone
    are *unattributed*; junctions + unattributed = network total, always.

Per junction, over the measurement window (after warm-up), for vehicle-steps in its zone:
    * ``vehicles``: vehicles *served*: they left the near approach into the junction.
    * ``delay_s``: time lost against free flow, SUMO's ``timeLoss`` definition: per step
      ``dt * (1 - v / v_max)``, ``v_max`` the allowed speed for that vehicle on its lane. Increments
      of each vehicle's cumulative timeLoss are attributed to the zone it is in.
    * ``stops``: transitions from moving to halted (speed >= 0.1 m/s at the previous step,
      < 0.1 m/s now); a vehicle inserted at rest has not stopped.
    * ``halted_veh_s``: vehicle-seconds spent halted (idling) in the zone.
    * ``queue_max_veh`` / ``queue_mean_veh``: halted vehicles on the approach and internal lanes, the
      maximum and the mean over the steps of the window.
    * ``co2_kg``, ``co2_idle_kg``, ``fuel_kg``, ``nox_g``: SUMO's per-vehicle emission model
      (mg/s of the step) × step length; ``co2_idle_kg`` is the part emitted while halted.
    * CO2 by driving mode: ``co2_idle_kg`` (speed < 0.1 m/s), ``co2_accel_kg`` (acceleration
      > 0.1 m/s²), ``co2_decel_kg`` (acceleration < −0.1 m/s²), ``co2_cruise_kg`` (the rest); the four
      add up to ``co2_kg``. Acceleration is the speed change over the step (SUMO's definition); a
      vehicle's first step counts as cruising.
    * Scopes: ``co2_kg`` is tailpipe CO2 (scope 1, what SUMO's CO2 output reports);
      ``energy_kwh`` is SUMO's electricity consumption of electric vehicles (recuperation counts
      negative); ``co2_scope2_kg`` = ``energy_kwh`` × the scenario's grid factor (kg CO2/kWh);
      ``co2_total_kg`` = scope 1 + scope 2. Driving-mode columns split scope 1.
    * Kinematics (:class:`Kinematics`): vehicle-steps per junction, vehicle type, speed and
      acceleration cell — the basis of fleet what-ifs without re-simulating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .network import SignalNetwork
from .scenario import ZoneSpec

#: SUMO's halting threshold (m/s): below it a vehicle is halted.
HALT_SPEED = 0.1
#: |acceleration| (m/s²) above which a moving vehicle is accelerating or decelerating, not cruising
MODE_ACCEL = 0.1

NEAR, FAR, INTERNAL, EXIT = 0, 1, 2, 3
PARTS = ("approach", "approach-far", "internal", "exit")
_RANK = {INTERNAL: 3, NEAR: 2, FAR: 1}


@dataclass
class ZoneMap:
    """Lookup from (lane, position) to a zone code ``junction * 4 + part`` (or -1)."""

    junction_ids: list[str]
    lane_index: dict[str, int]
    lane_ids: list[str]
    up_start: np.ndarray  # approach/internal part of the lane starts here (m); inf = none
    up_code: np.ndarray
    down_end: np.ndarray  # exit part of the lane ends here (m); 0 = none
    down_code: np.ndarray
    lane_speed: np.ndarray | None = None  # speed limit per lane (m/s); inf off the network

    @classmethod
    def build(cls, net: SignalNetwork, zones: ZoneSpec, junction_ids: list[str] | None = None) -> ZoneMap:
        jids = list(junction_ids or net.junction_ids)
        lane_ids = [*net.lanes, ""]  # "": off the network (teleporting), never in a zone
        index = {lid: i for i, lid in enumerate(lane_ids)}
        n = len(lane_ids)
        up_start = np.full(n, np.inf)
        up_code = np.full(n, -1, dtype=np.int64)
        up_rank = np.zeros(n, dtype=np.int64)
        down_end = np.zeros(n)
        down_code = np.full(n, -1, dtype=np.int64)

        def claim_up(lane: str, start: float, ji: int, part: int) -> None:
            i = index[lane]
            rank = _RANK[part]
            same = up_code[i] >= 0 and up_code[i] // 4 == ji
            if rank > up_rank[i] or (rank == up_rank[i] and same and start < up_start[i]):
                up_start[i], up_code[i], up_rank[i] = start, ji * 4 + part, rank

        def claim_down(lane: str, end: float, ji: int) -> None:
            i = index[lane]
            if down_code[i] < 0 or (down_code[i] // 4 == ji and end > down_end[i]):
                down_end[i], down_code[i] = end, ji * 4 + EXIT

        for ji, jid in enumerate(jids):
            junction = net.junctions[jid]
            for lane in junction.internal_lanes:
                claim_up(lane, 0.0, ji, INTERNAL)
            # approach: walk upstream
            best: dict[str, float] = {}
            stack = [(lane, zones.upstream_m, NEAR) for lane in junction.incoming_lanes]
            while stack:
                lane, d, part = stack.pop()
                if d <= best.get(lane, 0.0) and part == FAR:
                    continue
                best[lane] = max(best.get(lane, 0.0), d)
                length = net.lanes[lane].length
                claim_up(lane, max(0.0, length - d), ji, part)
                rem = d - length
                if rem <= 0:
                    continue
                for via, frm, tls in net.lanes[lane].predecessors:
                    if tls:
                        continue  # a signal upstream: its own zone starts there
                    r = rem
                    for v in reversed(via):
                        vlen = net.lanes[v].length
                        claim_up(v, max(0.0, vlen - r), ji, FAR)
                        r -= vlen
                        if r <= 0:
                            break
                    if r > 0:
                        stack.append((frm, r, FAR))
            # exit: walk downstream
            seen: dict[str, float] = {}
            dstack = [(lane, zones.downstream_m) for lane in junction.outgoing_lanes]
            while dstack:
                lane, d = dstack.pop()
                if d <= seen.get(lane, 0.0):
                    continue
                seen[lane] = d
                length = net.lanes[lane].length
                claim_down(lane, min(length, d), ji)
                rem = d - length
                if rem <= 0:
                    continue
                for via, to, tls in net.lanes[lane].successors:
                    if tls:
                        continue
                    r = rem
                    for v in via:
                        vlen = net.lanes[v].length
                        claim_down(v, min(vlen, r), ji)
                        r -= vlen
                        if r <= 0:
                            break
                    if r > 0:
                        dstack.append((to, r))
        lane_speed = np.array([net.lanes[lid].speed if lid else np.inf for lid in lane_ids])
        return cls(jids, index, lane_ids, up_start, up_code, down_end, down_code, lane_speed)

    @property
    def n_junctions(self) -> int:
        return len(self.junction_ids)

    def classify(self, lane: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Zone codes for vehicles at lane indices ``lane`` and positions ``pos`` (m from lane start)."""
        return np.where(pos >= self.up_start[lane], self.up_code[lane],
                        np.where(pos < self.down_end[lane], self.down_code[lane], -1))

    def table(self) -> pd.DataFrame:
        """The zones as a table: one row per (junction, lane, part) with the covered range in m."""
        rows = []
        for i, lane in enumerate(self.lane_ids):
            if self.up_code[i] >= 0:
                rows.append((self.junction_ids[self.up_code[i] // 4], lane, PARTS[self.up_code[i] % 4],
                             float(self.up_start[i]), np.nan))
            if self.down_code[i] >= 0:
                rows.append((self.junction_ids[self.down_code[i] // 4], lane, "exit", 0.0, float(self.down_end[i])))
        return pd.DataFrame(rows, columns=["junction_id", "lane", "part", "from_m", "to_m"])


#: accumulated per junction (and in the last bin, unattributed)
_SUMS = ("veh_s", "halted_veh_s", "delay_s", "stops", "co2_mg", "co2_idle_mg", "co2_accel_mg", "co2_cruise_mg",
         "co2_decel_mg", "fuel_mg", "nox_mg", "energy_wh", "served")

#: kinematics cells (see :class:`Kinematics`): speed bin width (m/s), acceleration bin width (m/s²)
#: and the lowest acceleration of the grid (m/s²)
KIN_SPEED_BIN = 0.5
KIN_ACCEL_BIN = 0.25
KIN_ACCEL_MIN = -10.0
_KIN_NV, _KIN_NA, _KIN_NT = 1024, 128, 4096  # key packing limits (speed bins, accel bins, types)


class Kinematics:
    """Vehicle-steps counted per (junction bin, vehicle type, speed cell, acceleration cell).

    ``speed_bin = floor(v / 0.5 m/s)``, ``accel_bin = floor((a + 10 m/s²) / 0.25 m/s²)`` with ``a`` the
    speed change over the step / step length (0 on a vehicle's first step). Each cell keeps its count
    and the exact mean speed and acceleration of its samples, so emissions can be re-evaluated for
    another emission class (a fleet what-if) without re-simulating. Samples are buffered and merged
    with ``np.unique`` every ~260,000 samples: memory grows with the number of occupied cells only.
    """

    def __init__(self) -> None:
        self._buf: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._n = 0
        self.keys = np.zeros(0, dtype=np.int64)
        self.count: np.ndarray = np.zeros(0)
        self.sum_v: np.ndarray = np.zeros(0)
        self.sum_a: np.ndarray = np.zeros(0)

    def add(self, b: np.ndarray, vtype: np.ndarray, speed: np.ndarray, accel: np.ndarray) -> None:
        vb = np.clip((speed / KIN_SPEED_BIN).astype(np.int64), 0, _KIN_NV - 1)
        ab = np.clip(np.floor((accel - KIN_ACCEL_MIN) / KIN_ACCEL_BIN).astype(np.int64), 0, _KIN_NA - 1)
        key = ((b.astype(np.int64) * _KIN_NT + vtype) * _KIN_NV + vb) * _KIN_NA + ab
        self._buf.append((key, speed.copy(), accel.copy()))
        self._n += len(key)
        if self._n >= 1 << 18:  # buffered samples: memory stays bounded, unique() runs rarely
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        key = np.concatenate([self.keys, *(k for k, _, _ in self._buf)])
        cnt = np.concatenate([self.count, *(np.ones(len(k)) for k, _, _ in self._buf)])
        sv = np.concatenate([self.sum_v, *(v for _, v, _ in self._buf)])
        sa = np.concatenate([self.sum_a, *(a for _, _, a in self._buf)])
        self._buf, self._n = [], 0
        self.keys, inv = np.unique(key, return_inverse=True)
        n = len(self.keys)
        self.count = np.bincount(inv, weights=cnt, minlength=n)
        self.sum_v = np.bincount(inv, weights=sv, minlength=n)
        self.sum_a = np.bincount(inv, weights=sa, minlength=n)

    def table(self, bin_names: list[str], type_names: list[str], type_classes: list[str]) -> pd.DataFrame:
        """Tidy table: junction_id, vtype, emission_class, speed_bin, accel_bin, veh_steps,
        speed_mps_mean, accel_mps2_mean."""
        self.flush()
        k = self.keys
        ab = k % _KIN_NA
        vb = (k // _KIN_NA) % _KIN_NV
        t = (k // (_KIN_NA * _KIN_NV)) % _KIN_NT
        b = k // (_KIN_NA * _KIN_NV * _KIN_NT)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame({
                "junction_id": np.asarray(bin_names, dtype=object)[b],
                "vtype": np.asarray(type_names, dtype=object)[t],
                "emission_class": np.asarray(type_classes, dtype=object)[t],
                "speed_bin": vb.astype(np.int32),
                "accel_bin": ab.astype(np.int32),
                "veh_steps": self.count.astype(np.int64),
                "speed_mps_mean": self.sum_v / self.count,
                "accel_mps2_mean": self.sum_a / self.count,
            })


class Attribution:
    """Streams per-vehicle samples into per-junction sums.

    Vehicles are identified by small integers (*slots*, or a run's vehicle index) so that state from
    the previous sample (speed, zone, time) and per-vehicle constants (speed factor, maximum speed,
    type) live in numpy arrays. Two ways in, one arithmetic:

    * :meth:`add_rows`: many steps at once, rows of (vehicle, time, lane, position, speed,
      emissions) in time order, as SUMO's FCD output holds them (what :mod:`mobility.sim` uses);
      a vehicle's first row is its insertion step, which only sets its state;
    * :meth:`add_step`: one step of every vehicle on the road (slot-indexed; unit tests).
    """

    def __init__(self, zone_map: ZoneMap, step_length_s: float, capacity: int = 1024,
                 grid_kg_co2_per_kwh: float = 0.0) -> None:
        self.zones = zone_map
        self.dt = step_length_s
        self.grid_kg_co2_per_kwh = grid_kg_co2_per_kwh
        self.kinematics = Kinematics()
        #: optional receiver of every batch of rows and arrivals as attributed here (duck-typed:
        #: ``rows(...)`` and ``arrive(...)``; see :class:`mobility.approaches.ApproachStats`)
        self.listener: Any = None
        self.nbins = zone_map.n_junctions + 1  # last bin: unattributed
        self.sums = {k: np.zeros(self.nbins) for k in _SUMS}
        self.queue_max = np.zeros(self.nbins)
        self.queue_sum = np.zeros(self.nbins)
        self.steps = 0
        self.prev_speed = np.full(capacity, np.nan)
        self.speed_factor = np.ones(capacity)
        self.max_speed = np.full(capacity, np.inf)
        self.prev_code = np.full(capacity, -1, dtype=np.int64)
        self.seen = np.zeros(capacity, dtype=bool)  # counted in the window's vehicle total
        self.vtype = np.zeros(capacity, dtype=np.int64)  # index of the vehicle's type
        self.prev_accel = np.zeros(capacity)
        self.last_t = np.full(capacity, np.nan)  # time of the vehicle's last row (s); NaN: none yet
        self.last = np.zeros((capacity, 5))  # last step's time loss increment and CO2/fuel/NOx/electricity rates
        self.depart_allowed = np.full(capacity, np.nan)  # SUMO's allowed speed at departure (m/s), if known
        self.vehicles_seen = 0

    _STATE = (("prev_speed", np.nan), ("speed_factor", 1.0), ("max_speed", np.inf), ("prev_code", -1),
              ("seen", False), ("vtype", 0), ("prev_accel", 0.0), ("last_t", np.nan), ("last", 0.0),
              ("depart_allowed", np.nan))

    def _grow(self, need: int) -> None:
        have = len(self.prev_speed)
        if need <= have:
            return
        grow = max(need, 2 * have) - have
        for name, fill in self._STATE:
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full((grow, *old.shape[1:]), fill, dtype=old.dtype)]))

    def new_slot_state(self, slots: np.ndarray, speed_factor: np.ndarray | None = None,
                       max_speed: np.ndarray | None = None, vtype: np.ndarray | None = None,
                       depart_speed: np.ndarray | None = None, depart_allowed: np.ndarray | None = None) -> None:
        """Reset state for slots just given to newly departed vehicles, with their speed factor,
        maximum speed (m/s), vehicle type index and speed at insertion (m/s) if known. With the
        insertion speed, the first observed step's acceleration (and a stop right after insertion)
        is known; without it the first step counts as cruising. ``depart_allowed``: SUMO's allowed
        speed for the vehicle on its departure lane (m/s; see :meth:`add_rows`)."""
        self._grow(int(slots.max()) + 1 if len(slots) else 0)
        self.prev_speed[slots] = np.nan if depart_speed is None else depart_speed
        self.last[slots] = 0.0
        self.speed_factor[slots] = 1.0 if speed_factor is None else speed_factor
        self.max_speed[slots] = np.inf if max_speed is None else max_speed
        self.prev_code[slots] = -1
        self.seen[slots] = False
        self.vtype[slots] = 0 if vtype is None else vtype
        self.prev_accel[slots] = 0.0
        self.last_t[slots] = np.nan
        self.depart_allowed[slots] = np.nan if depart_allowed is None else depart_allowed

    def step_loss(self, slots: np.ndarray, lane: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """Time lost in this step (s), SUMO's timeLoss formula: ``dt * (1 - v / v_max)`` with
        ``v_max`` the lane's limit × the vehicle's speed factor, capped by its maximum speed."""
        assert self.zones.lane_speed is not None
        v_max = np.minimum(self.zones.lane_speed[lane] * self.speed_factor[slots], self.max_speed[slots])
        return self.dt * (1.0 - speed / v_max)

    def add_step(self, slots: np.ndarray, lane: np.ndarray, pos: np.ndarray, speed: np.ndarray,
                 dloss: np.ndarray, co2: np.ndarray, fuel: np.ndarray, nox: np.ndarray,
                 measure: bool, elec: np.ndarray | None = None) -> np.ndarray:
        """One simulation step. ``dloss``: time lost in the step (s, see :meth:`step_loss`);
        emissions are SUMO's mg/s for the step, ``elec`` its electricity consumption in Wh/s (None:
        no electric vehicles). State always advances; sums only when ``measure``.
        Returns whether each vehicle stopped in this step."""
        if elec is None:
            elec = np.zeros_like(co2)
        code = self.zones.classify(lane, pos)
        prev_speed = self.prev_speed[slots]
        prev_code = self.prev_code[slots]
        accel = np.nan_to_num((speed - prev_speed) / self.dt)  # first step (NaN): 0, cruising
        stop = (speed < HALT_SPEED) & (prev_speed >= HALT_SPEED)  # NaN (new vehicle) compares False
        self.prev_speed[slots] = speed
        self.prev_code[slots] = code
        self.prev_accel[slots] = accel
        self.last[slots] = np.column_stack((dloss, co2, fuel, nox, elec))
        if measure:
            self._accumulate(slots, np.zeros(len(slots), dtype=np.int64), code, prev_code, speed, accel, stop,
                             dloss, co2, fuel, nox, elec)
        return stop

    def add_rows(self, veh: np.ndarray, t: np.ndarray, lane: np.ndarray, pos: np.ndarray, speed: np.ndarray,
                 co2: np.ndarray, fuel: np.ndarray, nox: np.ndarray, elec: np.ndarray,
                 measure_from: float, scheduled: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Many steps at once. Rows in time order (every vehicle at most once per time ``t`` in s),
        ``veh`` a vehicle index set up with :meth:`new_slot_state`, ``lane`` indices of the
        ZoneMap (its ``""`` entry: off the network, e.g. teleporting), ``pos`` m from the lane
        start, ``speed`` m/s, emissions SUMO's mg/s (electricity Wh/s). A step after a batch's
        last time may follow in the next batch; a step must not be split between batches.

        A vehicle's first row ever is its insertion step: it gives the speed the first step's
        acceleration is measured from and is otherwise not counted (SUMO's emission device and
        tripinfo count from the first move). A vehicle missing for more than one step (it was
        teleported) restarts without a previous sample. Rows with ``t > measure_from`` are summed.

        ``scheduled`` (optional, per row): the vehicle is at a scheduled stop (a bus or tram stop,
        a parking stop, a ``<stop>`` of its route). As in SUMO's tripinfo ``timeLoss``, such a step
        loses no time, and halting there is not a stop (the halt is planned, not caused by traffic);
        its emissions (idling) are counted as usual.

        Returns per row: whether it was counted as a step (not an insertion), its time loss (s)
        and whether the vehicle stopped in it."""
        n = len(veh)
        if not n:
            return np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0, dtype=bool)
        self._grow(int(veh.max()) + 1)
        dt = self.dt
        off = self.zones.lane_index.get("", -1)
        hidden = lane == off
        if hidden.any():
            speed, co2, fuel, nox, elec, pos = (np.where(hidden, 0.0, a) for a in (speed, co2, fuel, nox, elec, pos))
        code = self.zones.classify(lane, pos)
        # previous sample of each row: the vehicle's row before it (rows sorted by vehicle, stable in time)
        order = np.argsort(veh, kind="stable")
        vs = veh[order]
        first = np.ones(n, dtype=bool)
        first[1:] = vs[1:] != vs[:-1]
        def shifted(a: np.ndarray, carried: np.ndarray) -> np.ndarray:
            s = a[order]
            out = np.empty_like(s)
            out[1:] = s[:-1]
            out[first] = carried[vs[first]]
            res = np.empty_like(out)
            res[order] = out
            return res
        prev_t = shifted(t, self.last_t)
        insertion = np.isnan(prev_t)
        code = np.where(insertion, -1, code)  # the insertion step is in no zone: nothing is served from it
        prev_speed = shifted(speed, self.prev_speed)
        prev_code = shifted(code, self.prev_code)
        gap = ~insertion & (t - prev_t > 1.5 * dt)
        prev_speed[gap] = np.nan
        prev_code[gap] = -1
        if insertion.any():
            self._cap_desired_speed(veh[insertion], lane[insertion])
        accel = np.where(insertion, 0.0, np.nan_to_num((speed - prev_speed) / dt))
        planned = np.zeros(n, dtype=bool) if scheduled is None else scheduled
        stop = ~insertion & ~planned & (speed < HALT_SPEED) & (prev_speed >= HALT_SPEED)
        assert self.zones.lane_speed is not None  # ZoneMap.build always fills it
        v_max = np.minimum(self.zones.lane_speed[lane] * self.speed_factor[veh], self.max_speed[veh])
        dloss = np.where(hidden | insertion | planned, 0.0, dt * (1.0 - speed / v_max))
        # state: each vehicle's last row in this batch
        last = np.ones(n, dtype=bool)
        last[:-1] = vs[1:] != vs[:-1]
        i = order[last]
        v = vs[last]
        self.prev_speed[v] = speed[i]
        self.prev_code[v] = code[i]
        self.prev_accel[v] = accel[i]
        self.last_t[v] = t[i]
        ins = insertion[i][:, None]
        self.last[v] = np.where(ins, 0.0, np.column_stack((dloss[i], co2[i], fuel[i], nox[i], elec[i])))
        counted = ~insertion
        m = counted & (t > measure_from + 1e-9)
        if self.listener is not None:  # per-approach tables (mobility.approaches): the same rows, classified
            self.listener.rows(veh, t, lane, pos, speed, code, prev_code, stop, dloss, co2, counted, m)
        if m.any():
            step = np.rint((t[m] - t[m].min()) / dt).astype(np.int64)
            self._accumulate(veh[m], step, code[m], prev_code[m], speed[m], accel[m], stop[m], dloss[m], co2[m],
                             fuel[m], nox[m], elec[m])
        return counted, dloss, stop

    def _cap_desired_speed(self, veh: np.ndarray, lane: np.ndarray) -> None:
        """A vehicle whose allowed speed at departure is below its speed factor × its lane's limit is
        capped by its type (SUMO's ``desiredMaxSpeed``, e.g. bicycles' 20 km/h, or a low
        ``maxSpeed``): that cap is its maximum speed for the time loss from then on."""
        allowed = self.depart_allowed[veh]
        assert self.zones.lane_speed is not None  # ZoneMap.build always fills it
        lane_limit = self.speed_factor[veh] * self.zones.lane_speed[lane]
        capped = np.isfinite(allowed) & (allowed < lane_limit - 1e-6)
        v = veh[capped]
        self.max_speed[v] = np.minimum(self.max_speed[v], allowed[capped])

    def _accumulate(self, veh: np.ndarray, step: np.ndarray, code: np.ndarray, prev_code: np.ndarray,
                    speed: np.ndarray, accel: np.ndarray, stop: np.ndarray, dloss: np.ndarray, co2: np.ndarray,
                    fuel: np.ndarray, nox: np.ndarray, elec: np.ndarray) -> None:
        """Sums of measured vehicle-steps; ``step`` numbers the steps (0, 1, …) for queue statistics."""
        nj = self.zones.n_junctions
        b = np.where(code >= 0, code // 4, nj)
        halted = speed < HALT_SPEED
        dt = self.dt
        n = self.nbins
        s = self.sums
        s["veh_s"] += np.bincount(b, minlength=n) * dt
        s["halted_veh_s"] += np.bincount(b[halted], minlength=n) * dt
        s["delay_s"] += np.bincount(b, weights=dloss, minlength=n)
        s["stops"] += np.bincount(b[stop], minlength=n)
        s["co2_mg"] += np.bincount(b, weights=co2, minlength=n) * dt
        s["co2_idle_mg"] += np.bincount(b[halted], weights=co2[halted], minlength=n) * dt
        moving = ~halted
        for key, mask in (("co2_accel_mg", moving & (accel > MODE_ACCEL)),
                          ("co2_decel_mg", moving & (accel < -MODE_ACCEL)),
                          ("co2_cruise_mg", moving & (np.abs(accel) <= MODE_ACCEL))):
            s[key] += np.bincount(b[mask], weights=co2[mask], minlength=n) * dt
        s["fuel_mg"] += np.bincount(b, weights=fuel, minlength=n) * dt
        s["nox_mg"] += np.bincount(b, weights=nox, minlength=n) * dt
        s["energy_wh"] += np.bincount(b, weights=elec, minlength=n) * dt
        self.kinematics.add(b, self.vtype[veh], speed, accel)
        served = (prev_code >= 0) & (prev_code % 4 == NEAR) & (code != prev_code)
        s["served"] += np.bincount(prev_code[served] // 4, minlength=n)
        queued = halted & (code >= 0) & (code % 4 != EXIT)
        steps = int(step.max()) + 1
        q = np.bincount(step[queued] * n + b[queued], minlength=steps * n).reshape(steps, n)
        q[:, nj] = 0
        present = np.bincount(step, minlength=steps) > 0  # steps with vehicles (the mean is over these)
        np.maximum(self.queue_max, q.max(axis=0), out=self.queue_max)
        self.queue_sum += q.sum(axis=0)
        self.steps += int(present.sum())
        new = ~self.seen[veh]
        if new.any():
            self.vehicles_seen += len(np.unique(veh[new]))
            self.seen[veh] = True

    def arrive(self, slots: np.ndarray, measure: bool | np.ndarray) -> None:
        """Vehicles that left the network during the last step (``measure``: per vehicle or for all).

        Their final step is not observable (SUMO removes them within the step), yet SUMO's own
        outputs count it. It is estimated as a repeat of the vehicle's previous step (a vehicle
        leaving the network is cruising) and attributed where the vehicle was last seen. (SUMO
        counts the part of that step before the vehicle reaches its arrival point, at the step's
        own speed and acceleration: per vehicle the estimate is off by a fraction of one step's
        emissions: +0.7 % of the CO2 of a fleet of 45 s trips, see ``tests/test_sim.py``.)"""
        slots = slots[np.broadcast_to(np.asarray(measure, dtype=bool), slots.shape)]
        if not len(slots):
            return
        code = self.prev_code[slots]
        b = np.where(code >= 0, code // 4, self.zones.n_junctions)
        last = self.last[slots]
        n, dt = self.nbins, self.dt
        self.sums["delay_s"] += np.bincount(b, weights=last[:, 0], minlength=n)
        self.sums["co2_mg"] += np.bincount(b, weights=last[:, 1], minlength=n) * dt
        self.sums["co2_cruise_mg"] += np.bincount(b, weights=last[:, 1], minlength=n) * dt  # estimated as cruising
        self.sums["fuel_mg"] += np.bincount(b, weights=last[:, 2], minlength=n) * dt
        self.sums["nox_mg"] += np.bincount(b, weights=last[:, 3], minlength=n) * dt
        self.sums["energy_wh"] += np.bincount(b, weights=last[:, 4], minlength=n) * dt
        self.kinematics.add(b, self.vtype[slots], self.prev_speed[slots], self.prev_accel[slots])
        if self.listener is not None:
            self.listener.arrive(slots, code, last[:, 0], last[:, 1])

    def arrive_rows(self, t_end: float, measure_from: float) -> np.ndarray:
        """After :meth:`add_rows` has seen a whole run ending at ``t_end`` (s): every vehicle whose
        last row is before ``t_end`` left the network one step later (:meth:`arrive`). Returns
        their indices."""
        gone = np.flatnonzero(np.isfinite(self.last_t) & (self.last_t < t_end - 0.5 * self.dt))
        self.arrive(gone, self.last_t[gone] + self.dt > measure_from + 1e-9)
        return gone

    def junction_table(self) -> pd.DataFrame:
        """Per-junction results with units in column names, plus an ``(unattributed)`` row."""
        s = self.sums
        served = s["served"]
        with np.errstate(divide="ignore", invalid="ignore"):
            per = lambda x: np.where(served > 0, x / served, np.nan)  # noqa: E731
            df = pd.DataFrame({
                "junction_id": [*self.zones.junction_ids, UNATTRIBUTED],
                **traffic_columns(s, self.queue_max, self.queue_sum, self.steps),
                "co2_kg": s["co2_mg"] / 1e6,
                "co2_idle_kg": s["co2_idle_mg"] / 1e6,
                "co2_accel_kg": s["co2_accel_mg"] / 1e6,
                "co2_cruise_kg": s["co2_cruise_mg"] / 1e6,
                "co2_decel_kg": s["co2_decel_mg"] / 1e6,
                "co2_g_per_veh": per(s["co2_mg"] / 1e3),
                "fuel_kg": s["fuel_mg"] / 1e6,
                "nox_g": s["nox_mg"] / 1e3,
                "energy_kwh": s["energy_wh"] / 1e3,
                "co2_scope2_kg": s["energy_wh"] / 1e3 * self.grid_kg_co2_per_kwh,
                "co2_total_kg": s["co2_mg"] / 1e6 + s["energy_wh"] / 1e3 * self.grid_kg_co2_per_kwh,
            })
        df.insert(df.columns.get_loc("delay_s_per_veh") + 1, "los",
                  [level_of_service(x) for x in df["delay_s_per_veh"]])
        unattr = df["junction_id"] == UNATTRIBUTED
        for col in ("vehicles", "delay_s_per_veh", "stops_per_veh", "co2_g_per_veh", "queue_max_veh", "queue_mean_veh"):
            df.loc[unattr, col] = np.nan if df[col].dtype.kind == "f" else 0
        return df

    def network_totals(self) -> dict[str, float]:
        """Sums over all junctions and the unattributed remainder (the network total)."""
        s = self.sums
        return {
            "vehicles_seen": self.vehicles_seen,
            "delay_s": float(s["delay_s"].sum()),
            "stops": int(s["stops"].sum()),
            "halted_veh_s": float(s["halted_veh_s"].sum()),
            "veh_s": float(s["veh_s"].sum()),
            "co2_kg": float(s["co2_mg"].sum() / 1e6),
            "co2_idle_kg": float(s["co2_idle_mg"].sum() / 1e6),
            "co2_accel_kg": float(s["co2_accel_mg"].sum() / 1e6),
            "co2_cruise_kg": float(s["co2_cruise_mg"].sum() / 1e6),
            "co2_decel_kg": float(s["co2_decel_mg"].sum() / 1e6),
            "fuel_kg": float(s["fuel_mg"].sum() / 1e6),
            "nox_g": float(s["nox_mg"].sum() / 1e3),
            "energy_kwh": float(s["energy_wh"].sum() / 1e3),
            "co2_scope2_kg": float(s["energy_wh"].sum() / 1e3 * self.grid_kg_co2_per_kwh),
            "co2_total_kg": float(s["co2_mg"].sum() / 1e6 + s["energy_wh"].sum() / 1e3 * self.grid_kg_co2_per_kwh),
            "unattributed_co2_kg": float(s["co2_mg"][-1] / 1e6),
            "unattributed_delay_s": float(s["delay_s"][-1]),
        }


UNATTRIBUTED = "(unattributed)"


def traffic_columns(sums: dict[str, np.ndarray], queue_max: np.ndarray, queue_sum: np.ndarray,
                    steps: int) -> dict[str, np.ndarray]:
    """The traffic columns every result table (junctions, approaches, movements) shares, in order:
    ``vehicles`` served, ``delay_s`` and ``delay_s_per_veh``, ``stops`` and ``stops_per_veh``,
    ``halted_veh_s``, ``veh_s``, ``queue_max_veh``, ``queue_mean_veh`` (definitions in
    docs/metrics.md). ``sums`` holds per-row totals under ``served``, ``delay_s``, ``stops``,
    ``halted_veh_s`` and ``veh_s``; ``queue_sum`` is the queue summed over the ``steps`` recorded.
    Per-vehicle values are NaN where no vehicle was served."""
    served = sums["served"]
    with np.errstate(divide="ignore", invalid="ignore"):
        def per(x: np.ndarray) -> np.ndarray:
            return np.where(served > 0, x / served, np.nan)

        return {
            "vehicles": served.astype(np.int64),
            "delay_s": sums["delay_s"],
            "delay_s_per_veh": per(sums["delay_s"]),
            "stops": sums["stops"].astype(np.int64),
            "stops_per_veh": per(sums["stops"]),
            "halted_veh_s": sums["halted_veh_s"],
            "veh_s": sums["veh_s"],
            "queue_max_veh": queue_max.astype(np.int64),
            "queue_mean_veh": queue_sum / max(steps, 1),
        }

#: HCM (6th ed., Exhibit 19-8) level of service of a signalised intersection by control delay (s/veh)
LOS_BANDS = ((10.0, "A"), (20.0, "B"), (35.0, "C"), (55.0, "D"), (80.0, "E"))


def level_of_service(delay_s_per_veh: float) -> str:
    """HCM level of service A–F for a signalised intersection from its control delay per vehicle.

    Our zone delay (time lost in the approach, junction and exit parts) stands in for HCM control
    delay: it includes the deceleration, stopped and acceleration delay the HCM counts."""
    if not np.isfinite(delay_s_per_veh):
        return ""
    for limit, grade in LOS_BANDS:
        if delay_s_per_veh <= limit:
            return grade
    return "F"
