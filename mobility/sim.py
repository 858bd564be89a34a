"""The SUMO session: the only module that imports libsumo or traci.

One simulation per process (libsumo is a process-wide singleton). Vehicle data arrive through
per-vehicle variable subscriptions (set once, when a vehicle departs) and are read once per step into
numpy arrays; lane and signal data for controllers come through lane and traffic-light
subscriptions. No per-vehicle getter calls in the step loop.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .controllers.base import Controller, JunctionObservation, Observation
from .errors import MobilityError, SimulationError, controller_failure
from .emissions import is_electric
from .metrics import UNATTRIBUTED, Attribution, ZoneMap
from .network import Phase, SignalNetwork
from .scenario import Scenario, redirect_outputs, write_routes
from .signals import Actuator

BACKENDS = ("libsumo", "traci")


def sumo_binary(gui: bool = False) -> str:
    """Path of the SUMO binary from the installed ``eclipse-sumo`` wheel (no SUMO_HOME needed)."""
    import sumo  # the eclipse-sumo wheel

    path = Path(sumo.SUMO_HOME) / "bin" / ("sumo-gui" if gui else "sumo")
    if not path.exists():
        raise MobilityError(f"{path}: SUMO binary not found; reinstall with `pip install eclipse-sumo==1.28.0`")
    return str(path)


def sumo_version() -> str:
    from importlib.metadata import version

    return version("eclipse-sumo")


@dataclass
class RunOutput:
    """What one simulation produced, before provenance is added."""

    junctions: pd.DataFrame  # one row per junction + unattributed
    network: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)
    corridor: pd.DataFrame = field(default_factory=pd.DataFrame)  # per direction, if the scenario has a corridor
    timespace: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: vehicle-steps per (junction, vehicle type, speed cell, acceleration cell); see metrics.Kinematics
    kinematics: pd.DataFrame = field(default_factory=pd.DataFrame)


def sumo_command(scenario: Scenario, seed: int, workdir: Path, *, gui: bool = False,
                 extra_args: Sequence[str] = ()) -> list[str]:
    """The SUMO command line for a run (routes for TOML scenarios are written into ``workdir``).

    A ``.sumocfg`` keeps every option of its own (step length, teleporting, routing, ...): only the time
    window, the seed and the quiet report options are given, and the outputs its files configure
    go into ``workdir`` (:func:`~mobility.scenario.redirect_outputs`). With no end time SUMO gets the
    safety cap as ``--end``; the step loop stops earlier, when the network is empty."""
    cmd = [sumo_binary(gui)]
    outputs, additional = redirect_outputs(scenario, workdir, given=[*scenario.sumo_args, *extra_args])
    cmd += outputs
    if scenario.sumocfg is not None:
        cmd += ["-c", str(scenario.sumocfg)]
        if additional != scenario.additional_files:
            cmd += ["-a", ",".join(str(p) for p in additional)]
    else:
        routes = write_routes(scenario, workdir / "routes.rou.xml")
        cmd += ["-n", str(scenario.net_file), "-r", str(routes), "--step-length", repr(scenario.step_length_s)]
        if additional:
            cmd += ["-a", ",".join(str(p) for p in additional)]
    cmd += ["--begin", repr(scenario.begin_s), "--end", repr(scenario.stop_s), "--seed", str(seed),
            "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true"]
    if gui:
        cmd += ["--start", "true", "--quit-on-end", "true"]
    cmd += list(scenario.sumo_args) + list(extra_args)
    return cmd


class Session:
    """A running SUMO simulation (libsumo by default, TraCI on request, sumo-gui via TraCI)."""

    def __init__(self, backend: str = "libsumo", gui: bool = False) -> None:
        if backend not in BACKENDS:
            raise MobilityError(f"backend '{backend}': expected one of {', '.join(BACKENDS)}")
        self.backend = "traci" if gui else backend
        self.gui = gui
        self.api: Any = None

    def start(self, cmd: list[str]) -> None:
        if self.backend == "libsumo":
            import libsumo as api
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def place_detectors(controller: Controller, net: SignalNetwork, jids: Sequence[str], scenario: Scenario,
                    workdir: Path, cmd: list[str]) -> dict[str, str]:
    """If the controller declares :meth:`~Controller.detectors`, write one induction loop (E1) per
    incoming lane of the junctions into ``workdir`` and add the file to the SUMO command ``cmd`` (in
    place). Returns lane id → loop id (empty: no detectors)."""
    import math
    import xml.etree.ElementTree as ET

    dist = controller.detectors() if controller.decision_interval_s is not None else None
    if dist is None:
        return {}
    if isinstance(dist, bool) or not isinstance(dist, (int, float)) or not math.isfinite(dist) or dist <= 0:
        raise SimulationError(f"controller '{controller.name}': detectors() returned {dist!r}; "
                              "expected a positive distance in m, or None for no detectors")
    root = ET.Element("additional")
    loops: dict[str, str] = {}
    for lane in dict.fromkeys(lane for j in jids for lane in net.junctions[j].incoming_lanes):
        loops[lane] = f"mobility_e1_{lane}"
        ET.SubElement(root, "inductionLoop", id=loops[lane], lane=lane,
                      pos=repr(max(0.0, net.lane_length(lane) - float(dist))), period="86400", file="NUL")
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


def simulate(scenario: Scenario, controller: Controller, seed: int, workdir: Path, *,
             network: SignalNetwork | None = None, backend: str = "libsumo", gui: bool = False,
             sumo_args: Sequence[str] | str = (), timespace: bool = False) -> RunOutput:
    """Run one simulation of ``scenario`` under ``controller`` and return per-junction metrics.

    Raises :class:`SimulationError` (with the time and the cause) if SUMO or the controller fails.
    """
    if isinstance(sumo_args, str):
        sumo_args = shlex.split(sumo_args)
    net = network or SignalNetwork.load(scenario.net_file)
    jids = list(scenario.junctions) or net.junction_ids
    zone_map = ZoneMap.build(net, scenario.zones, jids)
    dt = scenario.step_length_s
    attribution = Attribution(zone_map, dt, grid_kg_co2_per_kwh=scenario.grid.kg_co2_per_kwh)
    type_index: dict[str, int] = {}
    type_class: list[str] = []
    type_electric: list[bool] = []
    tracker = None
    if scenario.corridor:
        from .corridor import CorridorMap, CorridorTracker, signal_rows

        cmap = CorridorMap.build(net, scenario.corridor, zone_map.lane_index, str(scenario.source))
        tracker = CorridorTracker(cmap, dt, trajectories=timespace)
    signal_log: list[tuple] = []
    signal_last: dict[tuple[str, int], str] = {}
    if controller.needs_demand:
        from .demand import estimate_demand

        net = net.with_demand(estimate_demand(scenario, net, workdir))
    try:
        controller.reset(net, seed)
    except MobilityError:
        raise
    except Exception as e:
        raise controller_failure(e, f"controller '{controller.name}' failed in reset()") from e

    from traci import constants as tc  # pure-python constants, shared by libsumo and traci

    session = Session(backend, gui)
    cmd = sumo_command(scenario, seed, workdir, gui=gui, extra_args=sumo_args)
    detector_of = place_detectors(controller, net, jids, scenario, workdir, cmd)  # lane -> loop id
    session.start(cmd)
    api = session.api
    t0 = time.perf_counter()
    now = scenario.begin_s
    try:
        actuator = Actuator(net, jids, controller.safety(), session, controller.name)
        # SUMO's cumulative timeLoss is not subscribed: it is the costliest variable to fetch. Each
        # step's loss is computed with SUMO's own formula (Attribution.step_loss) from the speed
        # factor and maximum speed read once per vehicle, at departure.
        vars_ = [tc.VAR_LANE_ID, tc.VAR_LANEPOSITION, tc.VAR_SPEED,
                 tc.VAR_CO2EMISSION, tc.VAR_FUELCONSUMPTION, tc.VAR_NOXEMISSION]
        LANE, POS, SPEED, CO2, FUEL, NOX = vars_
        ELEC = tc.VAR_ELECTRICITYCONSUMPTION
        elec_vars = [*vars_, ELEC]  # subscribed only for electric vehicles
        any_electric = False
        api.simulation.subscribe([tc.VAR_DEPARTED_VEHICLES_IDS, tc.VAR_ARRIVED_VEHICLES_IDS,
                                  tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER])
        observing = controller.decision_interval_s is not None
        lanes_of = {j: net.junctions[j].incoming_lanes for j in jids}
        outs_of = {j: net.junctions[j].outgoing_lanes for j in jids}
        if observing:
            for lane in dict.fromkeys(lane for j in jids for lane in (*lanes_of[j], *outs_of[j])):
                api.lane.subscribe(lane, [tc.LAST_STEP_VEHICLE_HALTING_NUMBER, tc.LAST_STEP_VEHICLE_NUMBER,
                                          tc.LAST_STEP_MEAN_SPEED])
        tl_vars = {j: [tc.TL_CURRENT_PHASE, tc.TL_SPENT_DURATION] if observing else [] for j in jids}
        record_signals = tracker is not None and timespace
        if record_signals:
            for j in scenario.corridor:
                tl_vars[j] = [*tl_vars.get(j, []), tc.TL_RED_YELLOW_GREEN_STATE]
        for j, tvars in tl_vars.items():
            if tvars:
                api.trafficlight.subscribe(j, tvars)
        if observing:
            for det in detector_of.values():
                api.inductionloop.subscribe(det, [tc.LAST_STEP_TIME_SINCE_DETECTION])

        def observe(t: float) -> Observation:
            lane_res = api.lane.getAllSubscriptionResults() if observing else {}
            tl_res = api.trafficlight.getAllSubscriptionResults() if observing else {}
            det_res = api.inductionloop.getAllSubscriptionResults() if detector_of else {}
            obs: dict[str, JunctionObservation] = {}
            for j in jids:
                lanes = lanes_of[j]
                rows = [lane_res.get(lane, {}) for lane in lanes]
                q = np.array([r.get(tc.LAST_STEP_VEHICLE_HALTING_NUMBER, 0) for r in rows], dtype=float)
                c = np.array([r.get(tc.LAST_STEP_VEHICLE_NUMBER, 0) for r in rows], dtype=float)
                v = np.array([r.get(tc.LAST_STEP_MEAN_SPEED, net.lanes[lane].speed) for r, lane in zip(rows, lanes)])
                status = actuator.phase_status(j, t)
                greens = net.junctions[j].green_phases
                if status is not None:
                    green, in_phase = status
                    phase = greens[green] if green is not None else -1
                else:
                    tr = tl_res.get(j, {})
                    phase = int(tr.get(tc.TL_CURRENT_PHASE, 0))
                    in_phase = float(tr.get(tc.TL_SPENT_DURATION, 0.0))
                    green = greens.index(phase) if phase in greens else None
                outs = outs_of[j]
                orow = [lane_res.get(lane, {}) for lane in outs]
                oc = np.array([r.get(tc.LAST_STEP_VEHICLE_NUMBER, 0) for r in orow], dtype=float)
                oq = np.array([r.get(tc.LAST_STEP_VEHICLE_HALTING_NUMBER, 0) for r in orow], dtype=float)
                gap = np.array([det_res.get(detector_of[lane], {}).get(tc.LAST_STEP_TIME_SINCE_DETECTION, np.inf)
                                for lane in lanes] if detector_of else [], dtype=float)
                gap[gap > t - scenario.begin_s + 1e-6] = np.inf  # no vehicle yet (SUMO reports 3600 s + t)
                obs[j] = JunctionObservation(j, lanes, q, c, v, phase, green, in_phase, outs, oc, oq, gap)
            return Observation(t, obs)

        def decide(t: float) -> None:
            try:
                actions = controller.act(observe(t))
            except Exception as e:
                raise controller_failure(e, f"controller '{controller.name}' failed in act() at t={t:g}") from e
            actuator.apply(t, actions or {})

        decide(now)
        next_decision = now + controller.decision_interval_s if observing else np.inf

        lane_index = zone_map.lane_index
        off_lane = lane_index[""]
        slot_of: dict[str, int] = {}
        free: list[int] = []
        next_slot = 0
        teleports = 0
        measure_from = scenario.measure_begin_s
        arrived_total = 0

        def _done(t: float) -> bool:
            """The end time is reached, or (with no end time) the network is empty: no vehicle running,
            pending or still to be loaded. SUMO's own rule; ``stop_s`` caps a run with no end."""
            if t >= scenario.stop_s - 1e-9:
                return True
            return scenario.until_empty and api.simulation.getMinExpectedNumber() == 0

        while not _done(now):
            api.simulationStep()
            now = api.simulation.getTime()
            sim_res = api.simulation.getSubscriptionResults()
            res = api.vehicle.getAllSubscriptionResults()
            n = len(res)
            if n:
                ids = res.keys()
                vals = list(res.values())
                slots = np.fromiter((slot_of[v] for v in ids), np.int64, n)
                lane = np.fromiter((lane_index.get(d[LANE], off_lane) for d in vals), np.int64, n)
                pos = np.fromiter((d[POS] for d in vals), float, n)
                speed = np.fromiter((d[SPEED] for d in vals), float, n)
                co2 = np.fromiter((d[CO2] for d in vals), float, n)
                fuel = np.fromiter((d[FUEL] for d in vals), float, n)
                nox = np.fromiter((d[NOX] for d in vals), float, n)
                elec = np.fromiter((d.get(ELEC, 0.0) for d in vals), float, n) if any_electric else np.zeros(n)
                hidden = lane == off_lane  # teleporting: SUMO reports invalid values
                if hidden.any():
                    for a in (speed, co2, fuel, nox, elec):
                        a[hidden] = 0.0
                    pos[hidden] = 0.0
                dloss = np.where(hidden, 0.0, attribution.step_loss(slots, lane, speed))
                stop = attribution.add_step(slots, lane, pos, speed, dloss, co2, fuel, nox, now > measure_from + 1e-9,
                                            elec)
                if tracker is not None:
                    tracker.step(now, slots, lane, pos, speed, dloss, stop, co2)
            arrived = sim_res[tc.VAR_ARRIVED_VEHICLES_IDS]
            if arrived:
                gone = [slot_of.pop(v) for v in arrived]
                in_window = now > measure_from + 1e-9
                attribution.arrive(np.asarray(gone, dtype=np.int64), in_window)
                if tracker is not None:
                    tracker.arrive(np.asarray(gone, dtype=np.int64))
                arrived_total += len(gone) * in_window
                free.extend(gone)
            departed = sim_res[tc.VAR_DEPARTED_VEHICLES_IDS]
            if departed:
                new, factors, maxima, types, speeds = [], [], [], [], []
                for v in departed:
                    if free:
                        s = free.pop()
                    else:
                        s, next_slot = next_slot, next_slot + 1
                    slot_of[v] = s
                    new.append(s)
                    vt = api.vehicle.getTypeID(v)  # once per vehicle, at departure
                    ti = type_index.get(vt)
                    if ti is None:
                        ti = type_index[vt] = len(type_index)
                        type_class.append(api.vehicletype.getEmissionClass(vt))
                        type_electric.append(is_electric(type_class[-1]))
                    types.append(ti)
                    any_electric |= type_electric[ti]
                    api.vehicle.subscribe(v, elec_vars if type_electric[ti] else vars_)
                    factors.append(api.vehicle.getSpeedFactor(v))
                    maxima.append(api.vehicle.getMaxSpeed(v))
                    speeds.append(api.vehicle.getSpeed(v))  # insertion speed: the first step's acceleration
                attribution.new_slot_state(np.asarray(new, dtype=np.int64), np.asarray(factors), np.asarray(maxima),
                                           np.asarray(types, dtype=np.int64), np.asarray(speeds))
                if tracker is not None:
                    tracker.reset_slots(np.asarray(new, dtype=np.int64))
            if record_signals:
                states = {j: r[tc.TL_RED_YELLOW_GREEN_STATE] for j, r in api.trafficlight.getAllSubscriptionResults().items()
                          if tc.TL_RED_YELLOW_GREEN_STATE in r}
                signal_log.extend(signal_rows(cmap, now, states, signal_last))
            teleports += sim_res[tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER]
            actuator.tick(now)
            if now >= next_decision - 1e-9:
                decide(now)
                next_decision += controller.decision_interval_s  # type: ignore[operator]
        backlog = len(api.simulation.getPendingVehicles())
        running = api.vehicle.getIDCount()
        at_cap = scenario.until_empty and api.simulation.getMinExpectedNumber() > 0  # stopped by the cap
    except SimulationError:
        raise
    except Exception as e:  # libsumo.TraCIException, FatalTraCIError, traci errors
        raise SimulationError(f"SUMO failed at t={now:g}: {_first_line(e)}") from None
    finally:
        session.close()
    wall = time.perf_counter() - t0
    totals = attribution.network_totals()
    totals.update(vehicles_arrived=arrived_total, vehicles_running_at_end=running,
                  insertion_backlog_veh=backlog, teleports=teleports, sim_end_s=now, stopped_at_cap=float(at_cap))
    out = RunOutput(attribution.junction_table(), totals, {"sim_wall_s": wall, "backend": session.backend})
    out.kinematics = attribution.kinematics.table([*zone_map.junction_ids, UNATTRIBUTED], list(type_index),
                                                  type_class)
    if tracker is not None:
        out.corridor = tracker.table(measure_from)
        if timespace:
            out.timespace = {
                "signals": pd.DataFrame(signal_log, columns=["time_s", "junction_id", "direction", "distance_m", "state"]),
                "trajectories": tracker.trajectories()}
    return out
