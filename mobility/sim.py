"""The SUMO session: the only module that imports libsumo or traci.

One libsumo simulation per process: libsumo is a process-wide singleton, and SUMO does not reset
all of its state when a libsumo simulation is closed, so a second simulation in the same process can
give other numbers than the same run in a fresh process (measured: RESCO's cologne1 under
``max-pressure`` seed 4 gives 21.92 s/veh fresh, 23.15 after a cologne3 ``actuated`` run in the same
process; docs/benchmarks.md). :class:`Session` therefore starts libsumo at most once per process
(:func:`libsumo_fresh`); any later simulation runs SUMO as a process of its own over TraCI (the
same numbers, slower; ``compare``, ``sweep`` and the CLI give every run a fresh process). A run has
four parts:

* the **session** (:class:`Session`, the :class:`SumoSession` protocol): start, step, stop, and the
  signal port the actuator writes to;
* the **observation builder** (:func:`junction_observation`, :class:`ObservationBuilder`): what a
  controller sees, from lane / signal / detector subscriptions (``mobility.controllers.check`` can build the same
  observations from synthetic readings);
* the **step loop** (:func:`step_loop`): steps SUMO, lets the controller act, and records each
  departing vehicle's constants once (speed factor, type); no per-vehicle work in a step;
* the **attribution reader** (:func:`attribute_fcd`): per-vehicle samples never pass through Python
  objects. SUMO writes them itself, in C++, as FCD output in Parquet restricted to the attributes the
  metrics need (lane, position, speed, CO2, fuel, NOx, electricity when the fleet has electric
  classes); after the run they are read one row group (~1 M vehicle-steps) at a time and attributed
  vectorised, so memory is bounded by the row group, not by the run's length. See
  ``docs/data-path.md`` for the measured alternatives.
"""

from __future__ import annotations

import gzip
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
import pandas as pd

from .controllers.base import Controller, JunctionObservation, Observation
from .errors import MobilityError, SimulationError, controller_failure
from .carbon.emissions import is_electric
from .metrics import UNATTRIBUTED, Attribution, ZoneMap
from .network import Phase, SignalNetwork
from .scenario import Scenario, sumo_command
from .signals import Actuator
from .tools import sumo_binary, sumo_version  # noqa: F401  (re-exported: mobility.sim.sumo_version)

BACKENDS = ("libsumo", "traci")


@dataclass
class RunOutput:
    """What one simulation produced, before provenance is added."""

    junctions: pd.DataFrame  # one row per junction + unattributed
    network: dict[str, Any]  # network totals (floats) and vehicle_classes (text)
    stats: dict[str, Any] = field(default_factory=dict)
    corridor: pd.DataFrame = field(default_factory=pd.DataFrame)  # per direction, if the scenario has a corridor
    timespace: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: vehicle-steps per (junction, vehicle type, speed cell, acceleration cell); see metrics.Kinematics
    kinematics: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per (junction, approach) and (junction, approach, outgoing edge); see mobility.approaches
    approaches: pd.DataFrame = field(default_factory=pd.DataFrame)
    movements: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one row per transit trip (buses, trams...; see mobility.transit)
    transit: pd.DataFrame = field(default_factory=pd.DataFrame)


class SumoSession(Protocol):
    """What the step loop and the actuator need of a running simulation."""

    api: Any  # the libsumo or traci module (subscriptions, simulation queries)

    def start(self, cmd: list[str]) -> None: ...
    def close(self) -> None: ...
    def step(self) -> float: ...  # advance one step; the new simulation time (s)
    def set_state(self, tls: str, state: str) -> None: ...
    def get_state(self, tls: str) -> str: ...
    def set_program(self, tls: str, program_id: str, kind: str, phases: list[Phase],
                    params: Mapping[str, str], phase_index: int, remaining_s: float | None) -> None: ...


_libsumo_started = False  # set when this process first starts a libsumo simulation
_fallback_told = False  # the TraCI fallback is told once per process


class TraciFallbackWarning(UserWarning):
    """A simulation asked for libsumo ran over TraCI, because this process had already run libsumo."""


def libsumo_fresh() -> bool:
    """True while this process has not started a libsumo simulation: the next one would run on a
    clean SUMO, as in a process of its own (see the module docstring)."""
    return not _libsumo_started


def _tell_fallback() -> None:
    global _fallback_told
    if not _fallback_told:
        _fallback_told = True
        warnings.warn("this process has already run a libsumo simulation, so this and later ones run SUMO over "
                      "TraCI: the same numbers, about 2.7x slower (mobility.sim); for many runs at libsumo speed "
                      "use mobility.compare, sweep or the CLI, which give every run a fresh process",
                      TraciFallbackWarning, stacklevel=2)


class Session:
    """A running SUMO simulation (libsumo by default, TraCI on request, sumo-gui via TraCI);
    implements :class:`SumoSession`. ``backend`` is the backend actually used: ``"traci"`` also when
    libsumo was asked for in a process that has already run a libsumo simulation (its state is not
    clean, :func:`libsumo_fresh`)."""

    def __init__(self, backend: str = "libsumo", gui: bool = False) -> None:
        if backend not in BACKENDS:
            raise MobilityError(f"backend '{backend}': expected one of {', '.join(BACKENDS)}")
        self.backend = "traci" if gui or (backend == "libsumo" and not libsumo_fresh()) else backend
        if backend == "libsumo" and not gui and self.backend == "traci":
            _tell_fallback()
        self.gui = gui
        self.api: Any = None

    def start(self, cmd: list[str]) -> None:
        global _libsumo_started
        if self.backend == "libsumo":
            import libsumo as api

            _libsumo_started = True  # also if the start fails: SUMO's state may be half-built
        else:
            import traci as api
        self.api = api
        try:
            api.start(cmd)
        except Exception as e:
            raise SimulationError(f"SUMO failed to start: {_first_line(e)}") from None

    def close(self) -> None:
        if self.api is not None:
            try:
                self.api.close()
            except Exception:  # noqa: BLE001 - closing a failed session must not mask the error
                pass
            self.api = None

    def step(self) -> float:
        self.api.simulationStep()
        return self.api.simulation.getTime()

    # -- SignalPort for the actuator -----------------------------------------------------
    def set_state(self, tls: str, state: str) -> None:
        self.api.trafficlight.setRedYellowGreenState(tls, state)

    def get_state(self, tls: str) -> str:
        return self.api.trafficlight.getRedYellowGreenState(tls)

    def set_program(self, tls: str, program_id: str, kind: str, phases: list[Phase],
                    params: Mapping[str, str], phase_index: int, remaining_s: float | None) -> None:
        tl = self.api.trafficlight
        from traci import constants as tc

        type_code = {"static": tc.TRAFFICLIGHT_TYPE_STATIC, "actuated": tc.TRAFFICLIGHT_TYPE_ACTUATED}[kind]
        sumo_phases = [tl.Phase(p.duration, p.state, p.min_dur, p.max_dur) for p in phases]
        logic = tl.Logic(program_id, type_code, phase_index, sumo_phases, dict(params))
        tl.setProgramLogic(tls, logic)
        tl.setProgram(tls, program_id)
        tl.setPhase(tls, phase_index)
        if remaining_s is not None:
            tl.setPhaseDuration(tls, remaining_s)

    def get_phase_spent(self, tls: str) -> float:
        return float(self.api.trafficlight.getSpentDuration(tls))

    def set_phase_remaining(self, tls: str, remaining_s: float) -> None:
        self.api.trafficlight.setPhaseDuration(tls, remaining_s)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def place_detectors(controller: Controller, net: SignalNetwork, jids: Sequence[str], scenario: Scenario,
                    workdir: Path, cmd: list[str]) -> dict[str, tuple[str, ...]]:
    """If the controller declares :meth:`~Controller.detectors`, write the induction loops (E1) of
    every incoming lane of the junctions into ``workdir`` and add the file to the SUMO command ``cmd``
    (in place): one loop on the lane, or, on a lane shorter than the distance, one on each unsignalised
    lane feeding it (:meth:`SignalNetwork.detector_sites`; at the lane's start for stop-line detectors,
    :meth:`Controller.stop_line_detectors`). Returns lane id → its loop ids (empty: no detectors); a
    lane's reading is that of the loop passed last."""
    import math
    import xml.etree.ElementTree as ET

    dist = controller.detectors() if controller.decision_interval_s is not None else None
    if dist is None:
        return {}
    if isinstance(dist, bool) or not isinstance(dist, (int, float)) or not math.isfinite(dist) or dist <= 0:
        raise SimulationError(f"controller '{controller.name}': detectors() returned {dist!r}; "
                              "expected a positive distance in m, or None for no detectors")
    root = ET.Element("additional")
    loops: dict[str, tuple[str, ...]] = {}
    site_id: dict[tuple[str, float], str] = {}
    for lane in dict.fromkeys(lane for j in jids for lane in net.junctions[j].incoming_lanes):
        ids = []
        on_lane = [(lane, max(0.0, net.lane_length(lane) - float(dist)))]
        for site in on_lane if controller.stop_line_detectors() else net.detector_sites(lane, float(dist)):
            if site not in site_id:  # a lane feeding several short lanes holds one loop for all
                site_id[site] = f"mobility_e1_{lane}" if site[0] == lane else f"mobility_e1_{site[0]}@{site[1]!r}"
                ET.SubElement(root, "inductionLoop", id=site_id[site], lane=site[0], pos=repr(site[1]),
                              period="86400", file="NUL")
            ids.append(site_id[site])
        loops[lane] = tuple(ids)
    path = workdir / "mobility_detectors.add.xml"
    ET.indent(root)
    path.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
    # SUMO rejects a repeated -a: extend the one already there; a -c configuration's own additional
    # files are replaced by a command-line -a, so name them again
    for i, arg in enumerate(cmd):
        if arg in ("-a", "--additional-files", "--additional") and i + 1 < len(cmd):
            cmd[i + 1] += f",{path}"
            return loops
        if arg.startswith(("--additional-files=", "--additional=")):
            cmd[i] += f",{path}"
            return loops
    own = [str(p) for p in scenario.additional_files] if scenario.sumocfg is not None else []
    cmd += ["-a", ",".join([*own, str(path)])]
    return loops



# ------------------------------------------------------------------------------------------------
# per-vehicle samples: SUMO's FCD output as Parquet

#: FCD attributes the attribution needs (plus ``electricity`` when the fleet has electric classes)
FCD_ATTRIBUTES = ("lane", "pos", "speed", "CO2", "fuel", "NOx")
_EMISSION_CLASS = re.compile(rb'emissionClass\s*=\s*["\']([^"\']+)["\']')


def fleet_has_electric(scenario: Scenario, sumo_args: Sequence[str] = ()) -> bool:
    """Whether any vehicle type of the scenario may report electricity: a declared type with an
    electric class, or an ``emissionClass`` in its route / additional files (scanned as bytes;
    unreadable files count as "may")."""
    if any(is_electric(v.emission_class) for v in scenario.vehicle_types):
        return True
    args = [*scenario.sumo_args, *sumo_args]
    if any(is_electric(a) for a in args):  # e.g. --default.emissions / a vType given on the command line
        return True
    for path in (*scenario.route_files, *scenario.additional_files):
        try:
            opener = gzip.open if str(path).endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
        except OSError:
            return True
        if any(is_electric(m.decode("utf-8", "replace")) for m in set(_EMISSION_CLASS.findall(data))):
            return True
    return False


def fcd_args(path: Path, electric: bool) -> list[str]:
    """SUMO options that write the per-vehicle samples to ``path`` (Parquet). Persons and containers
    go to no file (they are not vehicles)."""
    attrs = [*FCD_ATTRIBUTES, *(["electricity"] if electric else [])]
    return ["--fcd-output", str(path), "--fcd-output.attributes", ",".join(attrs), "--person-fcd-output", "NUL",
            "--fcd-output.skip-empty", "true"]


#: SUMO options the run sets itself (for its samples)
_OWN_OPTIONS = ("--fcd-output", "--fcd-output.attributes", "--person-fcd-output", "--fcd-output.skip-empty",
                "--fcd-output.filter-edges.input-file", "--fcd-output.filter-shapes")


@dataclass
class Departures:
    """Constants of every vehicle that departed, read once at departure, in departure order: the
    vehicle's index is its position here."""

    index: dict[str, int] = field(default_factory=dict)
    speed_factor: list[float] = field(default_factory=list)
    max_speed: list[float] = field(default_factory=list)
    allowed_speed: list[float] = field(default_factory=list)  # on the departure lane (m/s)
    vtype: list[int] = field(default_factory=list)
    type_ids: dict[str, int] = field(default_factory=dict)
    type_class: list[str] = field(default_factory=list)
    type_max_speed: list[float] = field(default_factory=list)
    type_vclass: list[str] = field(default_factory=list)

    def record(self, api: Any, ids: Sequence[str]) -> None:
        for v in ids:
            vt = api.vehicle.getTypeID(v)
            ti = self.type_ids.get(vt)
            if ti is None:
                ti = self.type_ids[vt] = len(self.type_ids)
                self.type_class.append(api.vehicletype.getEmissionClass(vt))
                self.type_max_speed.append(api.vehicletype.getMaxSpeed(vt))
                self.type_vclass.append(api.vehicletype.getVehicleClass(vt))
            self.index[v] = len(self.vtype)
            self.vtype.append(ti)
            self.speed_factor.append(api.vehicle.getSpeedFactor(v))
            self.max_speed.append(self.type_max_speed[ti])
            self.allowed_speed.append(api.vehicle.getAllowedSpeed(v))

    def vehicle_classes(self) -> str:
        """``vclass=count,…`` of the vehicles that departed, most frequent first."""
        counts = np.bincount(np.asarray(self.vtype, dtype=np.int64), minlength=len(self.type_vclass))
        by_class: dict[str, int] = {}
        for vclass, c in zip(self.type_vclass, counts):
            by_class[vclass] = by_class.get(vclass, 0) + int(c)
        return ",".join(f"{k}={v}" for k, v in sorted(by_class.items(), key=lambda kv: (-kv[1], kv[0])) if v)

    @property
    def any_electric(self) -> bool:
        return any(is_electric(c) for c in self.type_class)


def _batches(path: Path, columns: list[str], rows: int = 1 << 16) -> Iterator[Any]:
    """The FCD file in record batches of about ``rows`` rows (streamed: memory is bounded by the
    batch), cut so that no time step is split between batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    carry = None
    for rb in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
        table = pa.Table.from_batches([rb])
        if carry is not None and carry.num_rows:
            table = pa.concat_tables([carry, table]).combine_chunks()
        times = table.column("timestep_time").to_numpy()
        cut = int(np.searchsorted(times, times[-1], side="left")) if len(times) else 0
        carry = table.slice(cut)
        yield table.slice(0, cut)
    if carry is not None and carry.num_rows:
        yield carry


def _codes(column: Any, lookup: Callable[[str], int]) -> np.ndarray:
    """Integer codes of a string column: dictionary-encoded by pyarrow, each distinct value looked up once."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(column).combine_chunks()
    table = np.fromiter((lookup(x) for x in enc.dictionary.to_pylist()), np.int64, len(enc.dictionary))
    return table[enc.indices.to_numpy(zero_copy_only=False)]


def _scheduled_mask(stops: Sequence[tuple[int, float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``f(veh, t)``: whether vehicle ``veh`` (index) is at a scheduled stop at time ``t`` (s,
    libsumo's clock: from the step the stop began, up to the step it ended), vectorised over rows.
    Stops of one vehicle never overlap; they are found by one ``searchsorted`` on a (vehicle,
    time in ms) key."""
    if not stops:
        return lambda veh, t: np.zeros(len(veh), dtype=bool)
    who = np.array([v for v, _, _ in stops], dtype=np.int64)
    start = np.array([b for _, b, _ in stops], dtype=float)
    end = np.array([e for _, _, e in stops], dtype=float)

    def key(v: np.ndarray, t: np.ndarray) -> np.ndarray:
        ms = np.rint(np.clip(np.nan_to_num(t, neginf=0.0), 0.0, 2.0 ** 36) * 1000.0).astype(np.int64)
        return (v << 37) | ms

    k = key(who, start)
    order = np.argsort(k, kind="stable")
    k, who, end = k[order], who[order], end[order]

    def mask(veh: np.ndarray, t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(k, key(veh, t), side="right") - 1  # the vehicle's last stop begun by t
        out = np.zeros(len(veh), dtype=bool)
        ok = i >= 0
        out[ok] = (who[i[ok]] == veh[ok]) & (t[ok] < end[i[ok]] - 1e-9)
        return out

    return mask


def attribute_fcd(path: Path, attribution: Attribution, departures: Departures, measure_from: float,
                  t_end: float, tracker: Any = None, electric: bool = False,
                  stops: Sequence[tuple[str, float, float]] = ()) -> np.ndarray:
    """Attribute every vehicle-step of the FCD file at ``path`` (see :meth:`Attribution.add_rows`),
    feed the corridor ``tracker`` step by step if given, and account for the vehicles that left the
    network before ``t_end`` (s). Returns the indices of the vehicles that left.

    ``stops``: scheduled stops (vehicle id, begin, end in s) from the step loop; steps spent there
    lose no time and are no stop (SUMO's timeLoss rule, see :meth:`Attribution.add_rows`).

    Times are those of the step loop: SUMO's FCD row for the step from ``t`` to ``t + dt`` is the
    state libsumo reports at ``t + dt`` (and SUMO writes no row for the step starting at its end)."""
    n = len(departures.vtype)
    attribution.new_slot_state(np.arange(n), np.asarray(departures.speed_factor, dtype=float),
                               np.asarray(departures.max_speed, dtype=float),
                               np.asarray(departures.vtype, dtype=np.int64),
                               depart_allowed=np.asarray(departures.allowed_speed, dtype=float))
    lane_index = attribution.zones.lane_index
    off = lane_index[""]
    if tracker is not None:
        tracker.grow(n)
    cols = ["timestep_time", "vehicle_id", "vehicle_lane", "vehicle_pos", "vehicle_speed", "vehicle_CO2",
            "vehicle_fuel", "vehicle_NOx", *(["vehicle_electricity"] if electric else [])]

    def vehicle(v: str) -> int:
        try:
            return departures.index[v]
        except KeyError:
            raise SimulationError(f"{path.name}: vehicle '{v}' has samples but was never reported as "
                                  "departed") from None

    at_stop = _scheduled_mask([(departures.index[v], b, e) for v, b, e in stops if v in departures.index])
    if not path.exists():
        raise SimulationError(f"{path}: SUMO wrote no vehicle samples (is --fcd-output overridden by the "
                              "configuration or the SUMO arguments?)")
    for batch in _batches(path, cols):
        if batch.column("vehicle_id").null_count:  # a step with no vehicle
            import pyarrow.compute as pc

            batch = batch.filter(pc.is_valid(batch.column("vehicle_id")))
        if not batch.num_rows:
            continue
        f64 = lambda name: batch.column(name).to_numpy().astype(np.float64)  # noqa: E731
        t = f64("timestep_time") + attribution.dt  # SUMO labels a step by its start, libsumo's clock by its end
        veh = _codes(batch.column("vehicle_id"), vehicle)
        lane = _codes(batch.column("vehicle_lane"), lambda x: lane_index.get(x, off))
        pos, speed = f64("vehicle_pos"), f64("vehicle_speed")
        co2, fuel, nox = f64("vehicle_CO2"), f64("vehicle_fuel"), f64("vehicle_NOx")
        elec = f64("vehicle_electricity") if electric else np.zeros(len(t))
        counted, dloss, stop = attribution.add_rows(veh, t, lane, pos, speed, co2, fuel, nox, elec, measure_from,
                                                    scheduled=at_stop(veh, t))
        if tracker is not None:
            idx = np.flatnonzero(counted)
            cuts = np.flatnonzero(np.diff(t[idx])) + 1
            for rows in np.split(idx, cuts):
                if len(rows):
                    tracker.step(float(t[rows[0]]), veh[rows], lane[rows], pos[rows], speed[rows], dloss[rows],
                                 stop[rows], co2[rows])
    gone = attribution.arrive_rows(t_end, measure_from)
    if tracker is not None:
        tracker.arrive(gone)
    return gone


def fcd_lanes(path: Path, departures: Departures, lane_index: Mapping[str, int],
              dt: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(vehicle index, time s on libsumo's clock, lane index) of every row of the FCD file, a batch at a
    time (the first pass of :mod:`mobility.approaches`: only three columns are read)."""
    off = lane_index[""]
    for batch in _batches(path, ["timestep_time", "vehicle_id", "vehicle_lane"]):
        if batch.column("vehicle_id").null_count:
            import pyarrow.compute as pc

            batch = batch.filter(pc.is_valid(batch.column("vehicle_id")))
        if not batch.num_rows:
            continue
        yield (_codes(batch.column("vehicle_id"), lambda v: departures.index.get(v, -1)),
               batch.column("timestep_time").to_numpy().astype(np.float64) + dt,
               _codes(batch.column("vehicle_lane"), lambda x: lane_index.get(x, off)))


# ------------------------------------------------------------------------------------------------
# observations


def junction_observation(net: SignalNetwork, jid: str, t: float, actuator: Actuator, queue: np.ndarray,
                         count: np.ndarray, speed: np.ndarray, out_count: np.ndarray, out_queue: np.ndarray,
                         gap: np.ndarray, program_phase: Callable[[], tuple[int, float]]) -> JunctionObservation:
    """One junction's observation from its lane readings (incoming lanes: halted vehicles, vehicles,
    mean speed in m/s; outgoing lanes: vehicles, halted), detector gaps (s) and the signal status:
    the actuator's when it controls the junction, else SUMO's program phase and time in it
    (``program_phase()`` → (phase index, s))."""
    j = net.junctions[jid]
    greens = j.green_phases
    status = actuator.phase_status(jid, t)
    if status is not None:
        green, in_phase = status
        phase = greens[green] if green is not None else -1
    else:
        phase, in_phase = program_phase()
        green = greens.index(phase) if phase in greens else None
    return JunctionObservation(jid, j.incoming_lanes, queue, count, speed, phase, green, in_phase,
                               j.outgoing_lanes, out_count, out_queue, gap)


class ObservationBuilder:
    """Builds controllers' observations from SUMO's lane, signal and detector subscriptions
    (:meth:`subscribe` once, :meth:`build` at each decision). Not ``live`` (a controller that acts
    once, at the start): no subscriptions, empty lanes."""

    def __init__(self, net: SignalNetwork, jids: Sequence[str], actuator: Actuator,
                 detector_of: Mapping[str, tuple[str, ...]],
                 begin_s: float, live: bool = True, transit: TransitTracker | None = None,
                 approach_m: float | None = None) -> None:
        self.net, self.jids, self.actuator = net, list(jids), actuator
        self.detector_of, self.begin_s = detector_of, begin_s
        self.live = live
        #: transit sightings and the running programs, for controllers that ask (transit priority)
        self.transit = transit
        self._programs: dict[tuple[str, str], tuple[Phase, ...]] = {}
        #: per junction: (upstream lanes, incoming lane × upstream lane weights) for approach readings
        self.approach: dict[str, tuple[list[str], np.ndarray]] = {}
        if approach_m is not None and live:
            for j in self.jids:
                ins = net.junctions[j].incoming_lanes
                ws = [net.approach(lane, approach_m) for lane in ins]
                ups = list(dict.fromkeys(u for w in ws for u in w))
                m = np.zeros((len(ins), len(ups)))
                for i, w in enumerate(ws):
                    for u, x in w.items():
                        m[i, ups.index(u)] = x
                self.approach[j] = (ups, m)

    def _program(self, api: Any, tls: str, program_id: str) -> tuple[Phase, ...]:
        """The phases of the SUMO program ``program_id`` of ``tls`` (read once per program)."""
        key = (tls, program_id)
        if key not in self._programs:
            logic = next((lg for lg in api.trafficlight.getAllProgramLogics(tls) if lg.programID == program_id), None)
            self._programs[key] = tuple(Phase(p.state, float(p.duration), float(p.minDur), float(p.maxDur))
                                        for p in logic.phases) if logic is not None else ()
        return self._programs[key]

    def subscribe(self, api: Any) -> None:
        from traci import constants as tc

        # one subscription per signal (a second subscribe of the same object would replace it): its
        # state always (per-approach capacity, blocked green, time-space), phase and time in phase for
        # live controllers, next switch and program for transit priority
        extra = [tc.TL_NEXT_SWITCH, tc.TL_CURRENT_PROGRAM] if self.transit and self.live else []
        for j in self.jids:
            api.trafficlight.subscribe(j, [*([tc.TL_CURRENT_PHASE, tc.TL_SPENT_DURATION] if self.live else []),
                                           tc.TL_RED_YELLOW_GREEN_STATE, *extra])
        if not self.live:
            return
        lanes = dict.fromkeys(lane for j in self.jids for lane in (*self.net.junctions[j].incoming_lanes,
                                                                     *self.net.junctions[j].outgoing_lanes))
        for lane in lanes:
            api.lane.subscribe(lane, [tc.LAST_STEP_VEHICLE_HALTING_NUMBER, tc.LAST_STEP_VEHICLE_NUMBER,
                                      tc.LAST_STEP_MEAN_SPEED])
        for lane in dict.fromkeys(u for ups, _ in self.approach.values() for u in ups):
            if lane not in lanes:
                api.lane.subscribe(lane, [tc.LAST_STEP_VEHICLE_HALTING_NUMBER, tc.LAST_STEP_VEHICLE_NUMBER])
        for det in dict.fromkeys(d for dets in self.detector_of.values() for d in dets):
            api.inductionloop.subscribe(det, [tc.LAST_STEP_TIME_SINCE_DETECTION])

    def build(self, api: Any, t: float) -> Observation:
        from traci import constants as tc

        net = self.net
        lane_res = api.lane.getAllSubscriptionResults() if self.live else {}
        tl_res = api.trafficlight.getAllSubscriptionResults() if self.live else {}
        det_res = api.inductionloop.getAllSubscriptionResults() if self.detector_of and self.live else {}
        obs: dict[str, JunctionObservation] = {}
        for j in self.jids:
            lanes, outs = net.junctions[j].incoming_lanes, net.junctions[j].outgoing_lanes
            rows = [lane_res.get(lane, {}) for lane in lanes]
            q = np.array([r.get(tc.LAST_STEP_VEHICLE_HALTING_NUMBER, 0) for r in rows], dtype=float)
            c = np.array([r.get(tc.LAST_STEP_VEHICLE_NUMBER, 0) for r in rows], dtype=float)
            v = np.array([r.get(tc.LAST_STEP_MEAN_SPEED, net.lanes[lane].speed) for r, lane in zip(rows, lanes)])
            orow = [lane_res.get(lane, {}) for lane in outs]
            oc = np.array([r.get(tc.LAST_STEP_VEHICLE_NUMBER, 0) for r in orow], dtype=float)
            oq = np.array([r.get(tc.LAST_STEP_VEHICLE_HALTING_NUMBER, 0) for r in orow], dtype=float)
            gap = np.array([min(det_res.get(d, {}).get(tc.LAST_STEP_TIME_SINCE_DETECTION, np.inf)
                                for d in self.detector_of[lane])
                            for lane in lanes] if self.detector_of else [], dtype=float)
            gap[gap > t - self.begin_s + 1e-6] = np.inf  # no vehicle yet (SUMO reports 3600 s + t)
            tr = tl_res.get(j, {})
            obs[j] = junction_observation(net, j, t, self.actuator, q, c, v, oc, oq, gap,
                                          lambda tr=tr: (int(tr.get(tc.TL_CURRENT_PHASE, 0)),  # type: ignore[misc]
                                                         float(tr.get(tc.TL_SPENT_DURATION, 0.0))))
            if j in self.approach:
                ups, m = self.approach[j]
                urow = [lane_res.get(u, {}) for u in ups]
                obs[j].approach_count_veh = c + m @ np.array([r.get(tc.LAST_STEP_VEHICLE_NUMBER, 0) for r in urow], dtype=float)
                obs[j].approach_queue_veh = q + m @ np.array([r.get(tc.LAST_STEP_VEHICLE_HALTING_NUMBER, 0) for r in urow],
                                                             dtype=float)
            if self.transit is not None and tr:
                o = obs[j]
                o.state = str(tr.get(tc.TL_RED_YELLOW_GREEN_STATE, ""))
                o.next_switch_s = float(tr.get(tc.TL_NEXT_SWITCH, np.inf)) - t
                if self.actuator.phase_status(j, t) is None:  # a SUMO program drives it
                    o.program = self._program(api, j, str(tr.get(tc.TL_CURRENT_PROGRAM, "")))
                    o.phase = int(tr.get(tc.TL_CURRENT_PHASE, 0))
        return Observation(t, obs, self.transit.sightings(api) if self.transit is not None else ())


# ------------------------------------------------------------------------------------------------
# progress


class Progress:
    """One status line on a terminal (simulated time, vehicles, ETA), rewritten at most every
    ``interval_s`` of wall time; silent when the stream is not a terminal."""

    def __init__(self, begin_s: float, end_s: float | None, stream: TextIO | None = None,
                 interval_s: float = 0.5, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:  # a single run in the main process, on a terminal (not a pool worker)
            import multiprocessing

            enabled = _isatty(self.stream) and _isatty(sys.stdout) and multiprocessing.parent_process() is None
        self.enabled = enabled
        self.begin_s, self.end_s, self.interval_s = begin_s, end_s, interval_s
        self.t0 = time.perf_counter()
        self.next_wall = self.t0 + interval_s
        self.shown = False

    def due(self) -> bool:
        """Cheap check for the step loop: is an update due?"""
        return self.enabled and time.perf_counter() >= self.next_wall

    def update(self, now_s: float, vehicles: int) -> None:
        wall = time.perf_counter()
        self.next_wall = wall + self.interval_s
        self.stream.write("\r" + self.line(now_s, vehicles, wall - self.t0) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def line(self, now_s: float, vehicles: int, elapsed_s: float) -> str:
        text = f"simulated {_clock(now_s)}"
        if self.end_s is not None:
            done = (now_s - self.begin_s) / max(self.end_s - self.begin_s, 1e-9)
            text += f" of {_clock(self.end_s)} ({100 * done:.0f} %)"
            if 0 < done < 1:
                text += f", ETA {_clock(elapsed_s * (1 - done) / done)}"
        return text + f", {vehicles} vehicles on the road, {elapsed_s:.0f} s elapsed"

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


# ------------------------------------------------------------------------------------------------
# transit vehicles (few: one subscription each, from departure to arrival)


class TransitTracker:
    """Buses, trams... (vehicles of the given SUMO ``classes``): each is subscribed once, when it
    departs, to its next signal, speed, stop state and time loss, so per step Python only sees the
    transit vehicles (:meth:`step`). Gives the controllers' :attr:`Observation.transit` and the
    ``transit`` table (:mod:`mobility.transit`)."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = frozenset(classes)
        self.trips: dict[str, dict[str, Any]] = {}
        self.active: set[str] = set()
        self.current: dict[str, Any] = {}

    def depart(self, api: Any, ids: Sequence[str], departures: Departures) -> None:
        from traci import constants as tc

        for v in ids:
            vclass = departures.type_vclass[departures.vtype[departures.index[v]]]
            if vclass not in self.classes:
                continue
            api.vehicle.subscribe(v, [tc.VAR_SPEED, tc.VAR_STOPSTATE, tc.VAR_TIMELOSS])
            self.trips[v] = {"vehicle_id": v, "line": api.vehicle.getLine(v), "vtype": api.vehicle.getTypeID(v),
                             "vclass": vclass, "depart_s": float(api.simulation.getTime()), "arrival_s": np.nan,
                             "time_loss_s": 0.0, "halts": 0, "_halted": False}
            self.active.add(v)

    def step(self, api: Any, now: float) -> None:
        from traci import constants as tc

        if not self.active:
            return
        self.current = api.vehicle.getAllSubscriptionResults()
        arrived: set[str] | None = None
        for v in list(self.active):
            r = self.current.get(v)
            trip = self.trips[v]
            if r is None:  # arrived in this step, or off the road for now (teleporting)
                if arrived is None:
                    arrived = set(api.simulation.getArrivedIDList())
                if v in arrived:
                    trip["arrival_s"] = now
                    self.active.discard(v)
                continue
            trip["time_loss_s"] = float(r[tc.VAR_TIMELOSS])
            halted = r[tc.VAR_SPEED] < 0.1 and not (int(r[tc.VAR_STOPSTATE]) & 1)
            if halted and not trip["_halted"]:
                trip["halts"] += 1
            trip["_halted"] = halted

    def sightings(self, api: Any) -> tuple[Any, ...]:
        """The transit vehicles approaching a signal now (:class:`TransitVehicle`). Their next signal
        is asked per transit vehicle (libsumo's subscription result for it cannot be read)."""
        from traci import constants as tc

        from .controllers.base import TransitVehicle

        out = []
        for v in sorted(self.active):
            r = self.current.get(v)
            nxt = api.vehicle.getNextTLS(v) if r else ()
            if not nxt or r is None:
                continue
            tls, link, dist, _state = nxt[0]
            stopped = bool(int(r[tc.VAR_STOPSTATE]) & 1)
            out.append(TransitVehicle(v, self.trips[v]["vclass"], tls, int(link), float(dist), float(r[tc.VAR_SPEED]),
                                      stopped, stopped or self._stop_before(api, v, float(dist))))
        return tuple(out)

    @staticmethod
    def _stop_before(api: Any, v: str, dist: float) -> bool:
        """Whether the vehicle's next scheduled stop lies before the signal ``dist`` m ahead."""
        stops = api.vehicle.getStops(v, 1)
        if not stops:
            return False
        lane = stops[0].lane
        edge, _, index = lane.rpartition("_")
        try:
            d = api.vehicle.getDrivingDistance(v, edge, stops[0].endPos, int(index))
        except Exception:  # noqa: BLE001 - a stop on an edge SUMO cannot route to: not before the signal
            return False
        return 0.0 <= d < dist

    def table(self) -> pd.DataFrame:
        """One row per transit trip (see :mod:`mobility.transit`)."""
        rows = [{k: x for k, x in t.items() if not k.startswith("_")} for t in self.trips.values()]
        return pd.DataFrame(rows, columns=["vehicle_id", "line", "vtype", "vclass", "depart_s", "arrival_s",
                                           "time_loss_s", "halts"])


# ------------------------------------------------------------------------------------------------
# the step loop


@dataclass
class LoopResult:
    """What the step loop saw (the per-vehicle samples are in the FCD file)."""

    t_end: float
    departures: Departures
    teleports: int = 0
    arrived_in_window: int = 0
    backlog: int = 0
    running: int = 0
    at_cap: bool = False  # a run with no end stopped by the safety cap before the network was empty
    signal_log: list[tuple] = field(default_factory=list)
    #: scheduled stops: vehicle id, time the stop began, time it ended (s, libsumo's clock; inf: still
    #: stopped at the end), from SUMO's stop-starting/ending events (no per-vehicle call per step)
    stops: list[tuple[str, float, float]] = field(default_factory=list)
    #: every change of a junction's signal state: (time s, junction id, state), the first at the first step
    signal_states: list[tuple[float, str, str]] = field(default_factory=list)
    #: transit vehicles seen (None: not tracked)
    transit: TransitTracker | None = None


def step_loop(session: SumoSession, controller: Controller, actuator: Actuator, builder: ObservationBuilder,
              begin_s: float, end_s: float | None, measure_from: float, *, stop_s: float | None = None,
              cmap: Any = None,
              record_signals: bool = False, progress: Progress | None = None,
              transit: TransitTracker | None = None) -> LoopResult:
    """Step SUMO from ``begin_s`` to ``end_s`` (None: until no vehicle is on the road or waiting to
    be inserted, SUMO's own rule, but never past ``stop_s``, the safety cap), letting the controller
    act every ``decision_interval_s``.
    Per step: one simulation subscription (departed ids, arrival and teleport counts); per
    departing vehicle, once: its constants (:class:`Departures`)."""
    from traci import constants as tc

    api = session.api
    api.simulation.subscribe([tc.VAR_DEPARTED_VEHICLES_IDS, tc.VAR_ARRIVED_VEHICLES_NUMBER,
                              tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER, tc.VAR_STOP_STARTING_VEHICLES_IDS,
                              tc.VAR_STOP_ENDING_VEHICLES_IDS])
    stopped_since: dict[str, float] = {}
    builder.subscribe(api)
    signals_of: list[str] = []
    if record_signals and cmap is not None:
        signals_of = list(dict.fromkeys(cmap.junctions))
        for j in set(signals_of) - set(builder.jids):  # the builder subscribed its own signals' states
            api.trafficlight.subscribe(j, [tc.TL_RED_YELLOW_GREEN_STATE])
    state_last: dict[str, str] = {}
    out = LoopResult(begin_s, Departures(), transit=transit)
    signal_last: dict[tuple[str, int], str] = {}
    interval = controller.decision_interval_s

    def decide(t: float) -> None:
        try:
            actions = controller.act(builder.build(api, t))
        except Exception as e:
            raise controller_failure(e, f"controller '{controller.name}' failed in act() at t={t:g}") from e
        actuator.apply(t, actions or {})

    now = begin_s
    decide(now)
    next_decision = now + interval if interval is not None else np.inf

    def running(t: float) -> bool:  # the one end condition
        if end_s is None:
            if stop_s is not None and t >= stop_s - 1e-9:
                return False  # the cap: flagged (LoopResult.at_cap)
            return t <= begin_s or api.simulation.getMinExpectedNumber() > 0
        return t < end_s - 1e-9

    while running(now):
        now = session.step()
        res = api.simulation.getSubscriptionResults()
        departed = res[tc.VAR_DEPARTED_VEHICLES_IDS]
        if departed:
            out.departures.record(api, departed)
            if transit is not None:
                transit.depart(api, departed, out.departures)
        if transit is not None:
            transit.step(api, now)
        for v in res[tc.VAR_STOP_ENDING_VEHICLES_IDS]:
            out.stops.append((v, stopped_since.pop(v, -np.inf), now))
        for v in res[tc.VAR_STOP_STARTING_VEHICLES_IDS]:
            stopped_since[v] = now
        if now > measure_from + 1e-9:
            out.arrived_in_window += res[tc.VAR_ARRIVED_VEHICLES_NUMBER]
        out.teleports += res[tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER]
        tl = api.trafficlight.getAllSubscriptionResults()
        for j in builder.jids:
            st = tl[j][tc.TL_RED_YELLOW_GREEN_STATE] if j in tl else ""
            if st != state_last.get(j):
                state_last[j] = st
                out.signal_states.append((now, j, st))
        if signals_of:
            from .corridor import signal_rows

            states = {j: tl[j][tc.TL_RED_YELLOW_GREEN_STATE] for j in signals_of if j in tl}
            out.signal_log.extend(signal_rows(cmap, now, states, signal_last))
        actuator.tick(now)
        if now >= next_decision - 1e-9:
            decide(now)
            next_decision += interval  # type: ignore[operator]
        if progress is not None and progress.due():
            progress.update(now, api.vehicle.getIDCount())
    out.t_end = now
    out.stops.extend((v, t0, np.inf) for v, t0 in stopped_since.items())
    out.backlog = len(api.simulation.getPendingVehicles())
    out.running = api.vehicle.getIDCount()
    out.at_cap = end_s is None and api.simulation.getMinExpectedNumber() > 0  # stopped by the cap
    return out


# ------------------------------------------------------------------------------------------------
# one run


def prepare_network(scenario: Scenario, controller: Controller, workdir: Path,
                    network: SignalNetwork | None = None) -> SignalNetwork:
    """The signal network, with the demand estimate attached if the controller needs it (computed
    before the run, from the scenario's routes), and protected-turn tails as stages if it asks for
    them (:meth:`Controller.protected_turn_stages`)."""
    net = network or SignalNetwork.load(scenario.net_file)
    if controller.protected_turn_stages():
        net = net.with_turn_stages()
    if controller.needs_demand:
        from .inputs.demand import estimate_demand

        net = net.with_demand(estimate_demand(scenario, net, workdir))
    return net


def simulate(scenario: Scenario, controller: Controller, seed: int, workdir: Path, *,
             network: SignalNetwork | None = None, backend: str = "libsumo", gui: bool = False,
             sumo_args: Sequence[str] | str = (), timespace: bool = False,
             progress: bool | None = None) -> RunOutput:
    """Run one simulation of ``scenario`` under ``controller`` and return per-junction metrics.

    ``progress``: a status line on stderr (None: only when stderr and stdout are terminals).
    Raises :class:`SimulationError` (with the time and the cause) if SUMO or the controller fails.
    """
    if isinstance(sumo_args, str):
        sumo_args = shlex.split(sumo_args)
    taken = [a for a in (*scenario.sumo_args, *sumo_args) if a.split("=")[0] in _OWN_OPTIONS]
    if taken:
        raise MobilityError(f"SUMO option {taken[0]}: mobility writes SUMO's FCD output itself (its per-vehicle "
                            "samples); drop the option from the SUMO arguments")
    net = prepare_network(scenario, controller, workdir, network)
    jids = list(scenario.junctions) or net.junction_ids
    zone_map = ZoneMap.build(net, scenario.zones, jids)
    dt = scenario.step_length_s
    attribution = Attribution(zone_map, dt, grid_kg_co2_per_kwh=scenario.grid.kg_co2_per_kwh)
    tracker = cmap = None
    if scenario.corridor:
        from .corridor import CorridorMap, CorridorTracker

        cmap = CorridorMap.build(net, scenario.corridor, zone_map.lane_index, str(scenario.source))
        tracker = CorridorTracker(cmap, dt, trajectories=timespace)
    try:
        controller.reset(net, seed)
    except MobilityError:
        raise
    except Exception as e:
        raise controller_failure(e, f"controller '{controller.name}' failed in reset()") from e

    electric = fleet_has_electric(scenario, sumo_args)
    fcd = workdir / "mobility_samples.parquet"
    session = Session(backend, gui)
    users = _statistics_file(sumo_args)  # the user's statistic output is read, not replaced
    statistics = users or workdir / "mobility_statistics.xml"
    stat_args = [] if users else ["--statistic-output", str(statistics)]
    cmd = sumo_command(scenario, seed, workdir, gui=gui,
                       extra_args=[*sumo_args, *fcd_args(fcd, electric), *stat_args])
    detector_of = place_detectors(controller, net, jids, scenario, workdir, cmd)  # lane -> loop ids
    measure_from = scenario.measure_begin_s
    bar = Progress(scenario.begin_s, scenario.end_s, enabled=progress)
    session.start(cmd)
    t0 = time.perf_counter()
    now = scenario.begin_s
    try:
        actuator = Actuator(net, jids, controller.safety(), session, controller.name, site=scenario.safety)
        from .controllers.tsp import TRANSIT_CLASSES

        wants_transit = tuple(controller.transit_classes())
        transit = TransitTracker(tuple(dict.fromkeys([*TRANSIT_CLASSES, *wants_transit])))  # the table: every run alike
        builder = ObservationBuilder(net, jids, actuator, detector_of, scenario.begin_s,
                                     live=controller.decision_interval_s is not None,
                                     transit=transit if wants_transit else None, approach_m=controller.approach_m())
        loop = step_loop(session, controller, actuator, builder, scenario.begin_s, scenario.end_s, measure_from,
                         stop_s=scenario.stop_s, cmap=cmap, record_signals=tracker is not None and timespace, progress=bar,
                         transit=transit)
        now = loop.t_end
    except SimulationError:
        raise
    except Exception as e:  # libsumo.TraCIException, FatalTraCIError, traci errors
        now = _time_or(session, now)
        raise SimulationError(f"SUMO failed at t={now:g}: {_first_line(e)}") from None
    finally:
        bar.close()
        session.close()  # SUMO closes (completes) the FCD file
    if loop.departures.any_electric and not electric:
        electric_classes = ", ".join(c for c in loop.departures.type_class if is_electric(c))
        raise SimulationError(f"{scenario.source}: electric vehicle classes ({electric_classes}) were not found in "
                              "the route or additional files before the run, so electricity was not recorded; "
                              "declare their vTypes in a route or additional file of the scenario")
    _release_freed_memory()  # SUMO's network and buffers, freed at close
    from . import approaches as ap

    amap = ap.ApproachMap(net, zone_map)
    if not fcd.exists():  # before both passes read it: one clear error
        raise SimulationError(f"{fcd}: SUMO wrote no vehicle samples (is --fcd-output overridden by the "
                              "configuration or the SUMO arguments?)")
    crossings = ap.read_crossings(amap, fcd_lanes(fcd, loop.departures, zone_map.lane_index, dt))
    per_approach = ap.attach(attribution, amap, crossings, loop.signal_states)
    attribute_fcd(fcd, attribution, loop.departures, measure_from, loop.t_end, tracker, electric, loop.stops)
    fcd.unlink(missing_ok=True)
    wall = time.perf_counter() - t0
    totals: dict[str, Any] = dict(attribution.network_totals())
    totals.update(vehicles_arrived=loop.arrived_in_window, vehicles_running_at_end=loop.running,
                  insertion_backlog_veh=loop.backlog, teleports=loop.teleports,
                  collision_teleports=collision_teleports(statistics, loop.teleports), sim_end_s=loop.t_end,
                  stopped_at_cap=float(loop.at_cap), vehicle_classes=loop.departures.vehicle_classes())
    totals["congestion_index"] = per_approach.network_congestion_index
    out = RunOutput(attribution.junction_table(), totals, {"sim_wall_s": wall, "backend": session.backend})
    out.approaches, out.movements = per_approach.tables(measure_from, loop.t_end)
    out.junctions = out.junctions.join(ap.junction_columns(out.approaches), on="junction_id")
    out.transit = transit_trips(loop, measure_from)
    dep = loop.departures
    out.kinematics = attribution.kinematics.table([*zone_map.junction_ids, UNATTRIBUTED], list(dep.type_ids),
                                                  dep.type_class)
    if tracker is not None:
        out.corridor = tracker.table(measure_from)
        if not out.corridor.empty:
            out.corridor["congestion_index"] = ap.corridor_congestion_index(out.corridor)
        if timespace:
            out.timespace = {
                "signals": pd.DataFrame(loop.signal_log, columns=["time_s", "junction_id", "direction", "distance_m", "state"]),
                "trajectories": tracker.trajectories()}
    return out


def transit_trips(loop: LoopResult, measure_from: float) -> pd.DataFrame:
    """The transit table of a run (one row per trip; see :mod:`mobility.transit`): the tracker's rows
    with the scheduled stops served (from the step loop's stop events)."""
    if loop.transit is None or not loop.transit.trips:
        return pd.DataFrame()
    from .transit import trips_table

    return trips_table(loop.transit.table(), loop.stops, loop.t_end, measure_from)


def _statistics_file(sumo_args: Sequence[str]) -> Path | None:
    """The ``--statistic-output`` file the user asked SUMO for, if any (then it is read, not replaced)."""
    args = list(sumo_args)
    for k, a in enumerate(args):
        if a == "--statistic-output" and k + 1 < len(args):
            return Path(args[k + 1])
        if a.startswith("--statistic-output="):
            return Path(a.split("=", 1)[1])
    return None


def collision_teleports(statistics: Path, teleports: int) -> int:
    """Of the run's ``teleports``, those SUMO made after a collision (``--collision.action
    teleport``, its default) rather than for a stuck vehicle: SUMO's statistic output counts the
    stuck ones by cause (``jam``, ``yield``, ``wrongLane``); the rest of its ``total`` are collisions.
    0 when the file is missing or unreadable (every teleport then counts as stuck: never fewer
    gridlock flags than before)."""
    import xml.etree.ElementTree as ET

    try:
        el = ET.parse(statistics).getroot().find("teleports")
    except (OSError, ET.ParseError):
        return 0
    if el is None:
        return 0
    stuck = sum(int(float(el.get(k, "0"))) for k in ("jam", "yield", "wrongLane"))
    return max(0, min(int(teleports), int(float(el.get("total", "0"))) - stuck))


def _time_or(session: Session, default: float) -> float:
    try:
        return float(session.api.simulation.getTime())
    except Exception:  # noqa: BLE001 - the session may be gone
        return default


def _release_freed_memory() -> None:
    """Return memory freed by libsumo to the OS (glibc keeps it otherwise, and the attribution that
    follows would add to it); a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
