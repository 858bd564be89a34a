"""Cyclic flow profiles along an arterial (pure numpy, no SUMO): stops and delay of a coordinated plan.

The model is TRANSYT's (D. I. Robertson 1969, "TRANSYT: a traffic network study tool", RRL Report
LR 253), reduced to the arterial:

* Time is one cycle of the common cycle ``C``, cut into ``T = round(C)`` cells of ``dt = C / T``
  seconds (about one second). Every flow is a *cyclic flow profile*: vehicles per cell, the same in
  every cycle (the steady state of a fixed-time plan).
* At each corridor signal, per direction, the **lane group** of the arterial through movement (every
  lane that carries it, with the right turns that share those lanes) is a vertical queue served at
  its saturation flow while green:
  ``Q_t = max(0, Q_{t-1} + A_t - s g_t)`` (Lindley's recursion, solved with cumulative minima over
  three cycles so that the last one is the steady state). ``g_t`` is the green share of the cell.
* An arriving vehicle waits, first in first out, until the capacity after its arrival has served
  the queue ahead of it. It **stops** if that wait is at least ``full_stop_delay_s`` (the delay of a
  stop from cruising speed); a shorter wait counts as that fraction of a stop (TRANSYT-7F's partial
  stops; with ``full_stop_delay_s = 0`` any wait is a stop). **Delay** is the queue integrated over
  the cycle (veh·s).
* Vehicles that leave a queue from standstill reach the next stop line ``startup_s`` later than
  moving ones (the time lost accelerating).
* The departures of a lane group travel to the next signal in ``travel_s`` (distance / design speed)
  and disperse on the way by Robertson's platoon dispersion, ``A'_{t+βτ} = F A_t + (1 - F) A'_{t+βτ-1}``
  with ``F = 1 / (1 + α β τ)`` (``τ``: travel time in cells; TRANSYT's ``α = 0.35``, ``β = 0.8``),
  solved exactly on the cycle (a geometric kernel, circular convolution by FFT).
* Vehicles that turn into the arterial at the upstream signal (from the side streets) join with the
  departure profile of their own lanes (uniform arrivals at a vertical queue served while their
  movement is green). The arrivals at a lane group are the profile of everything that enters its link,
  scaled to the group's demand (the left turners go to their bay).
* The entry signal of each direction sees uniform arrivals.

:meth:`ArterialModel.evaluate` scores many offset vectors at once (a batch axis), so
:func:`optimise_offsets` (TRANSYT's hill-climb: each signal in turn moved to its best offset,
sweeps until nothing improves) costs milliseconds per sweep.

Units: seconds, vehicles, vehicles per second inside the model; :class:`Score` reports vehicles per
hour (stops) and vehicle-hours per hour (delay).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Robertson's platoon dispersion factor and travel-time factor (TRANSYT defaults)
ALPHA = 0.35
BETA = 0.8


@dataclass(frozen=True)
class Window:
    """A movement's green in its signal's cycle: starts ``start_s`` after the cycle start, lasts
    ``green_s`` seconds."""

    start_s: float
    green_s: float


@dataclass(frozen=True)
class Inflow:
    """Vehicles that join the link to the next signal from a non-corridor lane of the upstream signal:
    ``vph`` of them, from a lane that carries ``lane_vph`` in all, discharging at ``saturation_vph``
    while ``window`` is green."""

    vph: float
    lane_vph: float
    saturation_vph: float
    window: Window


@dataclass(frozen=True)
class Stage:
    """The arterial through lane group of one direction at one signal.

    ``signal``: index of the signal in corridor (outbound) order; ``window``: the through green;
    ``vph``: the demand of the lane group (through plus shared right turns); ``saturation_vph``: its
    saturation flow (lanes × per-lane saturation flow); ``travel_s``: travel time from the previous
    stop line of this direction (0 at the entry); ``inflows``: vehicles that turned into the link at
    the previous signal; ``link_vph``: everything that enters the link from upstream (through and
    turning in; 0 at the entry); ``alt_window``: the through green if the signal runs its
    alternative program (mode 1, e.g. the other arterial left turn leading), None if it has none."""

    signal: int
    window: Window
    vph: float
    saturation_vph: float
    travel_s: float = 0.0
    inflows: tuple[Inflow, ...] = ()
    link_vph: float = 0.0
    alt_window: Window | None = None


@dataclass(frozen=True)
class Score:
    """Modelled performance of the arterial through traffic (batch arrays, one row per offset vector).

    ``stops_vph``: stops per hour of the through lane groups, both directions; ``delay_veh_h_per_h``:
    their delay (vehicle-hours per hour); ``stop_share``: per direction (``outbound``,
    ``inbound``), ``(B, stages)``: the stop share of each lane group's arrivals, stages in travel
    order."""

    stops_vph: np.ndarray
    delay_veh_h_per_h: np.ndarray
    stop_share: dict[str, np.ndarray]

    @property
    def stops_per_veh(self) -> dict[str, np.ndarray]:
        """Per direction, the expected stops of a vehicle that drives the whole corridor (the sum of
        the stop shares over the signals)."""
        return {d: v.sum(axis=1) for d, v in self.stop_share.items()}


def green_share(window: Window, cycle_s: float, cells: int) -> np.ndarray:
    """Share (0..1) of each of ``cells`` equal cells of the cycle during which ``window`` is green."""
    dt = cycle_s / cells
    edges = np.arange(cells + 1) * dt
    share = np.zeros(cells)
    start = window.start_s % cycle_s
    for a in (start - cycle_s, start, start + cycle_s):  # the window may wrap around the cycle end
        b = a + min(window.green_s, cycle_s)
        share += np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0.0, None)
    return np.clip(share / dt, 0.0, 1.0)


def queue(arrivals: np.ndarray, capacity: np.ndarray, full_stop_delay_cells: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A vertical FIFO queue in the steady state of a cyclic profile.

    ``arrivals`` and ``capacity`` (vehicles per cell) have shape ``(B, T)``. Returns, each
    ``(B, T)``: departures per cell, stops per cell, the queue at the end of each cell, and the
    departures of vehicles that were already queued at the start of the cell (they leave from
    standstill). The last of three cycles run from an empty queue is the steady state.

    Stops: a vehicle arriving in cell ``t`` waits ``w_t`` cells (FIFO: until the cumulative capacity
    after ``t`` has served the queue ahead of it and half its own cell); it counts as
    ``min(1, w_t / full_stop_delay_cells)`` of a stop (TRANSYT-7F's partial stops: a vehicle held
    for less than the delay of a stop from cruising speed slows down but need not halt), or as a
    full stop whenever ``w_t > 0`` if ``full_stop_delay_cells`` is 0."""
    B, T = arrivals.shape
    a3 = np.tile(arrivals, 3)
    c3 = np.tile(capacity, 3)
    x = np.cumsum(a3 - c3, axis=1)
    q = x - np.minimum(np.minimum.accumulate(x, axis=1), 0.0)
    prev = np.concatenate([np.zeros((B, 1)), q[:, :-1]], axis=1)
    dep = a3 + prev - q
    last = slice(2 * T, 3 * T)
    # FIFO wait of the vehicles arriving in each cell of the last cycle (capacity of a 4th cycle
    # appended so that every vehicle is served)
    c4 = np.concatenate([c3, capacity], axis=1)
    cum = np.cumsum(c4, axis=1)
    start = np.concatenate([np.zeros((B, 1)), cum[:, :-1]], axis=1)[:, last]  # capacity before cell t
    need = start + prev[:, last] + 0.5 * arrivals  # served once this much capacity has passed
    rows = np.arange(B)[:, None]
    big = cum[:, -1:].max() + need.max() + 1.0
    flat = (cum + rows * big).ravel()
    pos = np.searchsorted(flat, (need + rows * big).ravel() - 1e-12).reshape(B, T) - rows * cum.shape[1]
    # fractional position inside the serving cell
    pos = np.clip(pos, 0, cum.shape[1] - 1)
    before = np.take_along_axis(cum, pos, axis=1) - np.take_along_axis(c4, pos, axis=1)
    inside = np.take_along_axis(c4, pos, axis=1)
    frac = np.where(inside > 0, (need - before) / np.where(inside > 0, inside, 1.0), 0.0)
    t_arr = np.arange(2 * T, 3 * T)[None, :] + 0.5
    wait = np.maximum(pos + frac - t_arr, 0.0)
    if full_stop_delay_cells > 0:
        share = np.minimum(1.0, wait / full_stop_delay_cells)
    else:
        share = (wait > 1e-9).astype(float)
    from_queue = np.minimum(dep[:, last], prev[:, last])
    return dep[:, last], arrivals * share, q[:, last], from_queue


def disperse(profile: np.ndarray, travel_cells: float, alpha: float = ALPHA, beta: float = BETA) -> np.ndarray:
    """Robertson's platoon dispersion of cyclic profiles ``(B, T)`` over ``travel_cells`` cells of
    travel: a lag of ``β τ`` cells and the geometric kernel ``F (1 - F)^j``, summed around the cycle."""
    T = profile.shape[1]
    if travel_cells <= 0:
        return profile
    spectrum = _kernel_spectrum(T, round(float(travel_cells), 6), float(alpha), float(beta))
    return np.fft.irfft(np.fft.rfft(profile, axis=1) * spectrum[None, :], n=T, axis=1)


@functools.lru_cache(maxsize=4096)
def _kernel_spectrum(T: int, travel_cells: float, alpha: float, beta: float) -> np.ndarray:
    F = 1.0 / (1.0 + alpha * beta * travel_cells)
    kernel = F * (1.0 - F) ** np.arange(T) / (1.0 - (1.0 - F) ** T)
    spectrum = np.fft.rfft(np.roll(kernel, int(round(beta * travel_cells))))
    spectrum.flags.writeable = False
    return spectrum


@dataclass(frozen=True)
class ArterialModel:
    """The arterial through traffic of a corridor under a common cycle (see the module docstring).

    ``directions``: name → stages in travel order; ``signals``: number of corridor signals (offsets
    are indexed in corridor order); ``cycle_s``: the common cycle (s); ``alpha``, ``beta``:
    Robertson's dispersion parameters; ``full_stop_delay_s``: a vehicle held this long counts as one
    full stop, less as a partial stop (0: any wait is a stop); ``startup_s``: extra travel time to
    the next stop line of a vehicle that left from standstill (the time lost accelerating)."""

    cycle_s: float
    signals: int
    directions: dict[str, tuple[Stage, ...]]
    alpha: float = ALPHA
    beta: float = BETA
    full_stop_delay_s: float = 0.0
    startup_s: float = 0.0

    @property
    def cells(self) -> int:
        return max(int(round(self.cycle_s)), 1)

    @property
    def dt(self) -> float:
        return self.cycle_s / self.cells

    def modes(self) -> list[bool]:
        """Per signal, whether it has an alternative program (mode 1)."""
        alt = [False] * self.signals
        for stages in self.directions.values():
            for st in stages:
                alt[st.signal] = alt[st.signal] or st.alt_window is not None
        return alt

    @functools.cached_property
    def _local(self) -> dict[str, list[tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]]]:
        """What does not depend on the offsets, per direction and stage, in the stage's signal time:
        the green share of its through window and of its alternative window (None without one),
        and the departures of the side-street vehicles turning into the link to the *next* stage
        (those that left moving, those that left from standstill; zeros at the last stage)."""
        T, dt = self.cells, self.dt
        out: dict[str, list[tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]]] = {}
        for name, stages in self.directions.items():
            rows = []
            for k, st in enumerate(stages):
                moving, standing = np.zeros(T), np.zeros(T)
                for inf in stages[k + 1].inflows if k + 1 < len(stages) else ():
                    gi = green_share(inf.window, self.cycle_s, T)[None, :]
                    lane = inf.lane_vph / 3600.0 * self.cycle_s
                    d_in, _, _, q_in = queue(np.full((1, T), lane / T), gi * inf.saturation_vph / 3600.0 * dt)
                    share = inf.vph / inf.lane_vph if inf.lane_vph > 0 else 0.0
                    moving += (d_in - q_in)[0] * share
                    standing += q_in[0] * share
                alt = None if st.alt_window is None else green_share(st.alt_window, self.cycle_s, T)
                rows.append((green_share(st.window, self.cycle_s, T), alt, moving, standing))
            out[name] = rows
        return out

    def evaluate(self, offsets_s: np.ndarray, modes: np.ndarray | None = None) -> Score:
        """Score offset vectors ``(B, signals)`` in seconds (signal ``i``'s cycle starts when
        ``(time - offset_i) % cycle == 0``; offsets are rounded to whole cells) with, optionally, the
        program mode of every signal ``(B, signals)`` (0: as given, 1: its alternative)."""
        off = np.atleast_2d(np.asarray(offsets_s, dtype=float))
        B, T, dt = off.shape[0], self.cells, self.dt
        mode = np.zeros(off.shape, dtype=int) if modes is None else np.broadcast_to(np.asarray(modes, dtype=int), off.shape)
        shift = np.rint(off / dt).astype(int) % T  # (B, n)
        t = np.arange(T)
        per_h = 3600.0 / self.cycle_s
        full = self.full_stop_delay_s / dt
        stops = np.zeros(B)
        delay = np.zeros(B)
        shares: dict[str, np.ndarray] = {}

        def at(local: np.ndarray, i: int) -> np.ndarray:
            """A signal-local cyclic profile ``(T,)`` in corridor time for each offset vector."""
            return local[(t[None, :] - shift[:, i:i + 1]) % T]

        for name, stages in self.directions.items():
            share = np.zeros((B, len(stages)))
            moving: np.ndarray | None = None  # departures towards the next stage, left while moving
            standing: np.ndarray | None = None  # … and left from standstill
            for k, (st, (g0, g1, in_moving, in_standing)) in enumerate(zip(stages, self._local[name])):
                g = at(g0, st.signal)
                if g1 is not None and mode[:, st.signal].any():
                    g = np.where(mode[:, st.signal:st.signal + 1] == 1, at(g1, st.signal), g)
                cap = g * st.saturation_vph / 3600.0 * dt
                demand = st.vph / 3600.0 * self.cycle_s  # vehicles per cycle
                if k == 0 or st.link_vph <= 0 or moving is None or standing is None:
                    arr = np.full((B, T), demand / T)
                else:
                    arr = disperse(moving, st.travel_s / dt, self.alpha, self.beta)
                    arr = arr + disperse(standing, (st.travel_s + self.startup_s) / dt, self.alpha, self.beta)
                    arr = np.clip(arr, 0.0, None)
                    total = arr.sum(axis=1, keepdims=True)
                    arr = np.where(total > 0, arr * demand / np.where(total > 0, total, 1.0), demand / T)
                dep, stp, q, from_q = queue(arr, cap, full)
                stops += stp.sum(axis=1) * per_h
                delay += q.sum(axis=1) * dt * per_h / 3600.0
                share[:, k] = stp.sum(axis=1) / max(demand, 1e-12)
                # towards the next stage: this group's departures and the side-street vehicles turning in
                moving = dep - from_q + at(in_moving, st.signal)
                standing = from_q + at(in_standing, st.signal)
            shares[name] = share
        return Score(stops, delay, shares)

    def objective(self, offsets_s: np.ndarray, modes: np.ndarray | None = None) -> np.ndarray:
        """Modelled stops per hour of the arterial through traffic, one value per offset vector."""
        return self.evaluate(offsets_s, modes).stops_vph


def optimise_offsets(model: ArterialModel, starts: Sequence[Sequence[float]],
                     start_modes: Sequence[Sequence[int]] | None = None, *, max_sweeps: int = 20
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """TRANSYT's hill-climb on the offsets (and the program modes): from each start (offsets in s;
    signal 0 keeps its offset as the reference), move one signal at a time to its best offset over
    the whole cycle, in each of its program modes at once, and sweep until a sweep changes nothing.
    ``start_modes``: the modes of each start (default all 0). Returns the best offsets (s, in
    ``[0, C)``), their modes and their objective. Deterministic: a move must strictly improve."""
    T, dt = model.cells, model.dt
    alt = model.modes()
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for k, start in enumerate(starts):
        x = np.rint(np.asarray(start, dtype=float) / dt).astype(int) % T
        m = np.zeros(model.signals, dtype=int) if start_modes is None else np.asarray(start_modes[k], dtype=int)
        m = np.where(alt, m, 0)
        f = float(model.objective(x[None, :] * dt, m[None, :])[0])
        for _ in range(max_sweeps):
            changed = False
            for i in range(model.signals):
                options = [0, 1] if alt[i] else [0]
                if i == 0 and len(options) == 1:
                    continue
                span = 1 if i == 0 else T  # signal 0 keeps its offset (the reference)
                cx = np.repeat(x[None, :], span * len(options), axis=0)
                cm = np.repeat(m[None, :], span * len(options), axis=0)
                for o in options:
                    cm[o * span:(o + 1) * span, i] = o
                    if i > 0:
                        cx[o * T:(o + 1) * T, i] = np.arange(T)
                vals = model.objective(cx * dt, cm)
                j = int(np.argmin(vals))
                if vals[j] < f - 1e-9 * max(1.0, abs(f)):
                    x, m, f, changed = cx[j], cm[j], float(vals[j]), True
            if not changed:
                break
        if best is None or f < best[2] - 1e-9 * max(1.0, abs(best[2])):
            best = (x * dt, m, f)
    if best is None:
        raise ValueError("optimise_offsets: no start given")
    return best
