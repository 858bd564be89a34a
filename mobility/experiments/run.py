"""Runs and comparisons: scenario × controllers × seeds → tidy tables with provenance.

Tables (long and tidy, units in column names):

* ``junctions``: one row per (run, junction), plus one ``(unattributed)`` row per run;
* ``network``: one row per run, network totals (junctions + unattributed);
* ``runs``: provenance per run: scenario and its content hash, demand scale, controller, variant
  and parameters, seed, backend, SUMO and ``mobility`` versions, wall time, status and error, and
  the run's health (``teleports``, ``insertion_backlog_veh``, ``gridlock``, ``gridlock_reason``).

Every table starts with :data:`KEYS` (the large ``kinematics`` and ``timespace_trajectories`` with
``run_id`` only: join them with ``runs``). ``variant`` is the controller with the parameters given for it
(``max-pressure(min_green_s=5)``; the bare name when none were given); ``demand_scale`` is the
factor applied to the scenario's demand (:meth:`Scenario.scaled`, 1 = as specified).

:func:`compare` is a sweep (:mod:`mobility.experiments.sweep`) of one scenario: the same executors, and with
``out`` the same resumable run store. Result files are written to a temporary name and renamed into
place, so ``--out`` never holds a half-written file.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..controllers import Controller, make
from ..errors import MobilityError, NetworkError, SimulationError
from ..files import table_files, write_tables
from ..metrics import UNATTRIBUTED
from ..scenario import Scenario, load_scenario

KEYS = ["run_id", "scenario", "demand_scale", "controller", "variant", "seed"]


@dataclass
class Results:
    """Tables of one or more runs."""

    junctions: pd.DataFrame
    network: pd.DataFrame
    runs: pd.DataFrame
    #: per run and direction, for scenarios with a ``corridor`` (see :mod:`mobility.corridor`)
    corridor: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: time–space diagram data of a single run: ``signals`` and ``trajectories`` tables
    timespace: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: vehicle-steps per run, junction, vehicle type, speed and acceleration cell (fleet what-ifs;
    #: see :class:`mobility.metrics.Kinematics`); written as Parquet only
    kinematics: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one row per (run, junction, approach) and per (run, junction, approach, outgoing edge); see
    #: :mod:`mobility.approaches`
    approaches: pd.DataFrame = field(default_factory=pd.DataFrame)
    movements: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: transit trips and priority events (``transit``, ``transit_events``; see :mod:`mobility.transit`)
    transit: pd.DataFrame = field(default_factory=pd.DataFrame)
    transit_events: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables :meth:`write` writes, by name."""
        tables = [("junctions", self.junctions), ("network", self.network), ("runs", self.runs)]
        tables += [(k, v) for k, v in (("approaches", self.approaches), ("movements", self.movements)) if not v.empty]
        if not self.corridor.empty:
            tables.append(("corridor", self.corridor))
        tables += [(f"timespace_{k}", v) for k, v in self.timespace.items()]
        if not self.kinematics.empty:
            tables.append(("kinematics", self.kinematics))
        if not self.transit.empty:
            tables += [("transit", self.transit), ("transit_events", self.transit_events)]
        return dict(tables)

    def files(self) -> list[str]:
        """The file names :meth:`write` writes."""
        return table_files(self.tables(), PARQUET_ONLY)

    def write(self, out: str | Path, *, extra: Mapping[str, str] | None = None,
              remove: Sequence[str] = ()) -> list[Path]:
        """Write CSV (for people) and Parquet (for machines) into ``out`` as one unit
        (:func:`write_tables`); ``extra``: more text files (name -> content) of the same unit;
        ``remove``: files of an earlier unit this one replaces (removed when not rewritten)."""
        return write_tables(out, self.tables(), parquet_only=PARQUET_ONLY, extra=extra, remove=remove)

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "ok"]


#: the large tables, written as Parquet only
PARQUET_ONLY = ("timespace_trajectories", "kinematics")

#: seeds are handed to SUMO's ``--seed`` (a signed 32-bit integer): one rule everywhere
SEED_LIMIT = 2**31
#: at most this many seeds per arm (a count beyond it is a typo, not an experiment)
MAX_SEEDS = 10_000


def check_seed(seed: Any, where: str) -> int:
    """``seed`` if it is an integer with 0 <= seed < 2**31, else a one-line :class:`MobilityError`
    (``where``: the option or the file and field)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < SEED_LIMIT:
        raise MobilityError(f"{where}: expected an integer 0 <= seed < 2**31, got {seed!r}")
    return int(seed)


@functools.lru_cache(maxsize=1)
def _sumo_help() -> tuple[frozenset[str], frozenset[str]]:
    """The option names ``sumo --help`` lists (``--end``, ``-e``...), and those of them that read
    input files (``FILE`` options of its "Input Options" section)."""
    import subprocess

    from ..tools import run as run_sumo, sumo_binary

    try:
        text = run_sumo([sumo_binary(), "--help"], env=os.environ, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset(), frozenset()
    names: set[str] = set()
    inputs: set[str] = set()
    section = ""
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            section = line
        m = re.match(r"^\s{2}(?:(-\w), )?(--[\w.\-]+)(?: (\S+))?", line)
        if m:
            opts = {x for x in m.groups()[:2] if x}
            names.update(opts)
            if section == "Input Options:" and m.group(3) == "FILE":
                inputs.update(opts)
    return frozenset(names), frozenset(inputs)


def sumo_options() -> frozenset[str]:
    """The option names ``sumo --help`` lists (``--end``, ``-e``...)."""
    return _sumo_help()[0]


#: SUMO options mobility sets itself for every run (extra options may not repeat them; SUMO would refuse)
OWN_SUMO_OPTIONS = {
    "--begin": "the scenario's begin_s", "-b": "the scenario's begin_s", "--end": "the scenario's end_s",
    "-e": "the scenario's end_s", "--step-length": "the scenario's step_length_s", "--seed": "--seed/--seeds",
    "--net-file": "the scenario's network", "-n": "the scenario's network",
    "--route-files": "the scenario's demand", "-r": "the scenario's demand",
    "--configuration-file": "the scenario", "-c": "the scenario",
}


def check_sumo_args(sumo_args: Sequence[str] | str, where: str = "--sumo-args") -> list[str]:
    """The extra SUMO options as a list; a one-line :class:`MobilityError` for unbalanced quotes or an
    option SUMO does not know (checked against ``sumo --help`` before anything runs)."""
    import shlex

    if isinstance(sumo_args, str):
        try:
            args = shlex.split(sumo_args)
        except ValueError as e:
            raise MobilityError(f"{where}: {e} in {sumo_args!r}; expected SUMO options as on SUMO's command line") from None
    else:
        args = list(sumo_args)
    known, inputs = _sumo_help()
    for i, a in enumerate(args):
        if a.startswith("-") and len(a) > 1 and not a[1].isdigit() and known:
            name, eq, inline = a.partition("=")
            if name not in known:
                raise MobilityError(f"{where}: '{name}' is not a SUMO option; see `sumo --help` (SUMO {_sumo_version()})")
            if name in OWN_SUMO_OPTIONS:
                raise MobilityError(f"{where}: {name} is set by mobility from {OWN_SUMO_OPTIONS[name]}; change that "
                                    "instead of passing it to SUMO")
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            if name in inputs:
                for f in (v for v in value.split(",") if v.strip()):
                    if not Path(f).exists():
                        raise MobilityError(f"{where}: {name} {f}: no such file; expected input files that exist")
    return args


def _sumo_version() -> str:
    from ..tools import sumo_version

    return sumo_version()


#: SUMO's vehicle classes (``vClass``), as sumolib lists them, plus ``ignoring``
def _vehicle_classes() -> frozenset[str]:
    from sumolib.net.lane import SUMO_VEHICLE_CLASSES

    return frozenset(SUMO_VEHICLE_CLASSES) | {"ignoring"}


def preflight(sc: Scenario, *, sumo_args: Sequence[str] | str = (), seeds: Sequence[int] = (),
              where: str = "") -> None:
    """Everything about a scenario that would fail (or silently mislead) only once SUMO runs,
    checked before anything is simulated; each a one-line :class:`MobilityError`:

    * the network has signalised junctions (traffic lights);
    * every vehicle type's ``vclass`` is one of SUMO's vehicle classes;
    * every flow with demand has a route: its destination (through its ``via`` edges) is reachable
      from its origin in the network's edge graph;
    * the scenario's seed and ``seeds`` satisfy 0 <= seed < 2**31;
    * ``sumo_args`` parse and name SUMO options (:func:`check_sumo_args`)."""
    from ..network import SignalNetwork

    src = where or str(sc.source)
    check_seed(sc.seed, f"{src}: field 'seed'")
    for s in seeds:
        check_seed(s, f"{src}: seed")
    extra = check_sumo_args(sumo_args)
    if sc.sumocfg is None and sc.additional_files and any(a.split("=")[0] in ("-a", "--additional-files")
                                                          for a in extra):
        raise MobilityError(f"--sumo-args: --additional-files: {src} lists its own additional files and SUMO takes "
                            "the option once; add yours to the scenario's additional files instead")
    classes = _vehicle_classes()
    for i, v in enumerate(sc.vehicle_types):
        if v.vclass not in classes:
            raise MobilityError(f"{src}: field 'vehicle_types[{i}].vclass': vclass {v.vclass!r} is not a SUMO vehicle "
                                f"class; expected one of passenger, bus, truck, delivery, motorcycle, bicycle, tram... "
                                "(see SUMO's vClass list)")
    net = SignalNetwork.load(sc.net_file)
    if not net.junction_ids:
        raise NetworkError(f"{sc.net_file}: no traffic light; expected a network with signalised junctions "
                           "(tlLogic; netconvert --tls.guess adds them)")
    import networkx as nx

    for i, f in enumerate(sc.flows):
        if not any(v > 0 for v in f.vph):
            continue  # no vehicles: SUMO never routes it
        chain = [f.origin, *f.via, f.destination]
        for a, b in zip(chain, chain[1:]):
            if a in net.graph and b in net.graph and not nx.has_path(net.graph, a, b):
                raise MobilityError(f"{src}: field 'flows[{i}]': no route from edge '{a}' to edge '{b}' in "
                                    f"{Path(sc.net_file).name}; expected a destination reachable from the origin "
                                    "(check from/to/via and the network's connections)")


def check_out_dir(out: str | Path | None, what: str = "--out") -> None:
    """Raise a one-line :class:`MobilityError` unless ``out`` is a directory this process can write,
    or can be created (checked before anything is simulated; creates nothing)."""
    if out is None:
        return
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise MobilityError(f"{what} {p}: exists and is not a directory; expected an output directory")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise MobilityError(f"{what} {p}: {probe} is not a directory; expected an output directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MobilityError(f"{what} {p}: {probe} is not writable; expected a directory you can write")
    try:  # os.access says yes to root everywhere: a read-only file system or /proc only shows on trying
        os.rmdir(tempfile.mkdtemp(prefix=".mobility-probe-", dir=probe))
    except OSError as e:
        raise MobilityError(f"{what} {p}: cannot create files in {probe} ({e.strerror}); expected a directory you "
                            "can write") from None


def _file_hash(path: Path) -> str:
    st = path.stat()
    return _file_hash_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _file_hash_cached(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def engine_hash() -> str:
    """Hash of the ``mobility`` package's own Python sources (the simulation session, metrics,
    actuator and built-in controllers): a checkout edited between two runs gives other run ids."""
    root = Path(__file__).resolve().parents[1]  # the mobility package
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        if "_data" in f.relative_to(root).parts:  # bundled data, not code (networks/build.py)
            continue
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _installed_distribution(module_name: str, file: Path) -> str | None:
    """``"dist==version"`` when ``file`` is installed (in a site-packages directory) by a distribution."""
    if not any(part in ("site-packages", "dist-packages") for part in file.parts):
        return None
    from importlib.metadata import version

    dists = _packages_distributions().get(module_name.partition(".")[0], [])
    if not dists:
        return None
    try:
        return f"{dists[0]}=={version(dists[0])}"
    except Exception:  # noqa: BLE001 - metadata without a version: fall back to the source hash
        return None


def controller_code(cls: type) -> dict[str, Any]:
    """What identifies a controller's code: its class (``module.QualName``) and, for every module of
    its class hierarchy outside ``mobility``, the hash of the module's source file as it is on disk
    now (or ``"dist==version"`` for a module installed from a distribution). ``mobility``'s own
    modules are covered by :func:`engine_hash`."""
    code: dict[str, str] = {}
    for k in cls.__mro__:
        mod = getattr(k, "__module__", "") or ""
        if k is object or mod in code or mod == "builtins" or mod == "mobility" or mod.startswith("mobility."):
            continue
        module = sys.modules.get(mod)
        file = getattr(module, "__file__", None)
        if not file or not Path(file).is_file():
            try:
                code[mod] = hashlib.sha256(inspect.getsource(k).encode()).hexdigest()[:16]
            except (OSError, TypeError):
                code[mod] = "unknown"
            continue
        path = Path(file).resolve()
        code[mod] = _installed_distribution(mod, path) or _file_hash(path)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "code": code}


def run_id(scenario_hash: str, controller: Controller, seed: int, sumo_args: str = "",
           backend: str = "libsumo") -> str:
    """Stable id of a run, from everything that determines its numbers: the scenario's content,
    the controller's name, class, code (:func:`controller_code`) and all its parameters
    (:meth:`Controller.get_params`, defaults included), the seed, the extra SUMO options, the backend,
    and the versions (SUMO, ``mobility`` and the hash of ``mobility``'s sources, :func:`engine_hash`).

    ``scenario_hash`` is :meth:`Scenario.content_hash`, which covers the demand, so a scaled
    scenario (:meth:`Scenario.scaled`) has its own id. Editing a controller's file, or ``mobility``
    itself, gives new ids, so a run store never returns the numbers of other code."""
    from ..tools import sumo_version

    parts: list[Any] = [scenario_hash, controller.name, controller.get_params(), seed, sumo_version(), __version__,
                        controller_code(type(controller)), backend, engine_hash()]
    if sumo_args.strip():
        parts.append(" ".join(sumo_args.split()))
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def variant_label(name: str, given: dict[str, Any]) -> str:
    """``max-pressure(min_green_s=5)``: a controller name with the parameters given for it (before a
    deployment or modifiers: ``max-pressure(min_green_s=5)@(J2,J4)``)."""
    if not given:
        return name
    from ..controllers.deploy import split_top

    base, *rest = split_top(name, "@+")
    return f"{base[1]}({', '.join(f'{k}={v!r}' for k, v in given.items())})" + "".join(s + p for s, p in rest)


def args_text(sumo_args: Sequence[str] | str) -> str:
    return sumo_args if isinstance(sumo_args, str) else " ".join(sumo_args)


def _controller(spec: str | Controller) -> Controller:
    return spec if isinstance(spec, Controller) else make(spec)


def run(scenario: str | Path | Scenario, controller: str | Controller = "static", seed: int | None = None, *,
        out: str | Path | None = None, backend: str = "libsumo", gui: bool = False,
        sumo_args: Sequence[str] | str = (), timespace: bool = False) -> Results:
    """Simulate one scenario under one controller; raise on failure (use :func:`compare` for
    failure isolation). ``timespace``: record time–space diagram data along the corridor."""
    from ..inputs.counts import prepare_demand

    sc = prepare_demand(scenario if isinstance(scenario, Scenario) else load_scenario(scenario))
    ctrl = _controller(controller)
    if seed is not None:
        check_seed(seed, "--seed")
    check_out_dir(out)
    preflight(sc, sumo_args=sumo_args)
    if backend not in ("libsumo", "traci"):
        raise MobilityError(f"--backend: expected libsumo or traci, got {backend!r}")
    res = run_one(sc, ctrl, sc.seed if seed is None else seed, backend, gui, sumo_args, raise_errors=True,
                   timespace=timespace, variant=ctrl.name)
    if out is not None:
        res.write(out)
    return res


def run_one(sc: Scenario, ctrl: Controller, seed: int, backend: str, gui: bool,
             sumo_args: Sequence[str] | str, raise_errors: bool = False, timespace: bool = False, *,
             variant: str | None = None, demand_scale: float = 1.0) -> Results:
    """One run with provenance. ``sc`` is the scenario as simulated (already scaled by
    ``demand_scale``); ``variant`` labels the controller and its given parameters."""
    from ..sim import simulate
    from ..tools import sumo_version
    from .stats import gridlock_reason

    params = ctrl.get_params()
    shash = sc.content_hash()
    sargs = args_text(sumo_args)
    rid = run_id(shash, ctrl, seed, sargs, backend)
    info: dict[str, Any] = {
        "run_id": rid, "scenario": sc.name, "demand_scale": float(demand_scale), "controller": ctrl.name,
        "variant": variant or ctrl.name, "seed": seed,
        "scenario_hash": shash, "scenario_source": str(sc.source), "net_file": str(sc.net_file),
        "params": json.dumps(params, sort_keys=True, default=str),
        "controller_class": controller_code(type(ctrl))["class"],
        "controller_code": json.dumps(controller_code(type(ctrl))["code"], sort_keys=True),
        "engine_hash": engine_hash(),
        "backend": backend, "sumo_args": sargs,
        "sumo_version": sumo_version(), "mobility_version": __version__,
        "python_version": platform.python_version(), "host": platform.node(),
        "begin_s": sc.begin_s, "end_s": sc.end_s, "warmup_s": sc.warmup_s, "step_length_s": sc.step_length_s,
        "zone_upstream_m": sc.zones.upstream_m, "zone_downstream_m": sc.zones.downstream_m,
        "fleet": sc.fleet, "grid_kg_co2_per_kwh": sc.grid.kg_co2_per_kwh, "grid_factor_source": sc.grid.source,
        "grid_factor_year": sc.grid.year,
        "vehicle_mix": json.dumps([{"id": v.id, "share": v.share, "vclass": v.vclass,
                                    "emission_class": v.emission_class, "group": v.kinematic_group,
                                    "params": dict(v.params)} for v in sc.vehicle_types]),
        "status": "ok", "error": "", "error_traceback": "",
    }
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mobility-run-") as wd:
        try:
            if getattr(getattr(ctrl, "deployment", None), "worst", None) is not None:
                ctrl.static_delay = _static_delay(sc, backend)  # type: ignore[attr-defined]
            # options a controller's modifiers need (e.g. +glosa's device); its name is in the run id
            extra = list(getattr(ctrl, "sumo_options", list)())
            args = [*(shlex.split(sumo_args) if isinstance(sumo_args, str) else sumo_args), *extra]
            output = simulate(sc, ctrl, seed, Path(wd), backend=backend, gui=gui, sumo_args=args,
                              timespace=timespace)
            recovered = _event_recovery(sc, Path(wd))
        except (SimulationError, MobilityError) as e:
            if raise_errors:
                raise
            info.update(status="failed", error=str(e), error_traceback=getattr(e, "traceback", "") or "",
                        wall_s=time.perf_counter() - t0)
            return Results(pd.DataFrame(columns=KEYS), pd.DataFrame(columns=KEYS), pd.DataFrame([info]))
    info["wall_s"] = time.perf_counter() - t0
    info["sim_wall_s"] = output.stats["sim_wall_s"]
    info["backend"] = output.stats.get("backend", backend)  # traci when libsumo was not clean (mobility.sim)
    net_totals = output.network
    info["vehicles_seen"] = int(net_totals.get("vehicles_seen", 0))
    info["teleports"] = int(net_totals.get("teleports", 0))
    info["insertion_backlog_veh"] = int(net_totals.get("insertion_backlog_veh", 0))
    info["gridlock_reason"] = gridlock_reason(info["teleports"], info["insertion_backlog_veh"], info["vehicles_seen"],
                                              float(net_totals.get("collision_teleports", 0)))
    info["end_s"] = float(net_totals.get("sim_end_s", sc.stop_s))  # with no end time: when the network emptied
    if net_totals.get("stopped_at_cap"):
        info["gridlock_reason"] = "; ".join(filter(None, [info["gridlock_reason"], (
            f"the network was not empty at the safety cap t={info['end_s']:g} s (no end time; "
            f"{net_totals.get('vehicles_running_at_end', 0):.0f} vehicles running, "
            f"{info['insertion_backlog_veh']} waiting)")]))
    info["gridlock"] = bool(info["gridlock_reason"])
    junctions = output.junctions
    for i, k in enumerate(KEYS):
        junctions.insert(i, k, info[k])
    if recovered is not None:  # recovery after each scenario event (mobility.events)
        junctions = junctions.join(recovered, on="junction_id")
    # treated: the controller runs the junction (all, unless deployed at some: @(...))
    treated = getattr(ctrl, "treated", None)
    junctions["treated"] = (junctions["junction_id"] != UNATTRIBUTED) & (
        junctions["junction_id"].isin(treated) if treated is not None else True)
    net = dict(output.network)
    seen = max(net["vehicles_seen"], 1)
    net["delay_s_per_veh"] = net["delay_s"] / seen
    net["stops_per_veh"] = net["stops"] / seen
    network = pd.DataFrame([{**{k: info[k] for k in KEYS}, **net}])
    corridor = output.corridor
    if not corridor.empty:
        for i, k in enumerate(KEYS):
            corridor.insert(i, k, info[k])
    kin = output.kinematics
    if not kin.empty:
        kin.insert(0, "run_id", rid)
    for table in (output.approaches, output.movements):
        for i, k in enumerate(KEYS):
            table.insert(i, k, info[k])
    transit, transit_events = _transit_tables(output.transit, ctrl, info)
    timespace_tables = {}
    for name, table in output.timespace.items():  # trajectories are large: run_id only (join with runs)
        table = table.copy()
        for i, k in enumerate(KEYS if name == "signals" else ["run_id"]):
            table.insert(i, k, info[k])
        timespace_tables[name] = table
    return Results(junctions, network, pd.DataFrame([info]), corridor, timespace_tables, kin, output.approaches,
                   output.movements, transit, transit_events)


def _transit_tables(trips: pd.DataFrame, ctrl: Controller, info: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's ``transit`` and ``transit_events`` tables with the run keys (see :mod:`mobility.transit`)."""
    from ..transit import events_table, with_events

    logic = getattr(ctrl, "tsp_logic", None)
    events = events_table(logic.table_rows() if logic is not None else [])
    if trips.empty and events.empty:
        return pd.DataFrame(), pd.DataFrame()
    trips = with_events(trips, events)
    for table in (trips, events):
        for i, k in enumerate(KEYS):
            table.insert(i, k, info[k])
    return trips, events


_STATIC_DELAY: dict[str, dict[str, float]] = {}


def _static_delay(sc: Scenario, backend: str) -> dict[str, float]:
    """Delay (s/veh) per junction of ``sc`` under ``static`` with the scenario's own seed (for
    ``@(worst=...)`` deployments; cached per process by scenario content)."""
    key = sc.content_hash()
    if key not in _STATIC_DELAY:
        from ..controllers.static import Static

        res = run_one(sc, Static(), sc.seed, backend, False, (), raise_errors=True)
        j = res.junctions[res.junctions["junction_id"] != UNATTRIBUTED]
        _STATIC_DELAY[key] = dict(zip(j["junction_id"], j["delay_s_per_veh"].astype(float)))
    return _STATIC_DELAY[key]


def _event_recovery(sc: Scenario, wd: Path) -> pd.DataFrame | None:
    """Per junction, the recovery time after each event of the scenario (None: no events)."""
    if not (sc.incidents or sc.surges):
        return None
    from ..events import recovery_columns
    from ..network import SignalNetwork
    from ..scenario import EVENTS_EDGEDATA

    net = SignalNetwork.load(sc.net_file)
    return recovery_columns(sc, wd / EVENTS_EDGEDATA, net, list(sc.junctions) or net.junction_ids)


def combine(parts: Sequence[Results]) -> Results:
    """Concatenate the tables of several runs (in the given order)."""

    def cat(tables: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
        tables = [t for t in tables if len(t)]
        return pd.concat(tables, ignore_index=True) if tables else empty

    keys = pd.DataFrame(columns=KEYS)
    res = Results(cat([p.junctions for p in parts], keys), cat([p.network for p in parts], keys),
                  cat([p.runs for p in parts], keys), cat([p.corridor for p in parts], pd.DataFrame()),
                  kinematics=cat([p.kinematics for p in parts], pd.DataFrame()),
                  approaches=cat([p.approaches for p in parts], pd.DataFrame()),
                  movements=cat([p.movements for p in parts], pd.DataFrame()),
                  transit=cat([p.transit for p in parts], pd.DataFrame()))
    from ..transit import events_table

    res.transit_events = cat([p.transit_events for p in parts], events_table([]))
    names = list(dict.fromkeys(k for p in parts for k in p.timespace))
    res.timespace = {k: cat([p.timespace[k] for p in parts if k in p.timespace], pd.DataFrame()) for k in names}
    return res


def split_specs(text: str) -> list[str]:
    """Split ``"a,b(x=1, y=2),c@(J1,J2)"`` at top-level commas (not inside parentheses)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


# ------------------------------------------------------------------------------------------
# summaries


SUMMARY_METRICS = ("delay_s_per_veh", "stops_per_veh", "co2_kg")


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Label rows by controller variant when a controller appears with several parameter sets."""
    if "variant" not in df.columns or df.groupby("controller")["variant"].nunique().max() <= 1:
        return df
    df = df.copy()
    df["controller"] = df["variant"]
    return df


def summary(res: Results, baseline: str | None = None) -> pd.DataFrame:
    """Per junction and controller: means over seeds of the key metrics, with % change against
    ``baseline`` (default: the first controller)."""
    j = res.junctions
    if j.empty:
        return pd.DataFrame()
    j = _labelled(j[j["junction_id"] != UNATTRIBUTED])
    order = list(dict.fromkeys(j["controller"]))
    base = baseline or order[0]
    cols = ["vehicles", "delay_s_per_veh", "stops_per_veh", "halted_veh_s", "co2_kg", "co2_idle_kg"]
    m = j.groupby(["junction_id", "controller"], sort=False)[cols].mean().reset_index()
    m["seeds"] = j.groupby(["junction_id", "controller"], sort=False).size().values
    from ..metrics import level_of_service

    m["los"] = [level_of_service(x) for x in m["delay_s_per_veh"]]
    b = m[m["controller"] == base].set_index("junction_id")
    for c in SUMMARY_METRICS:
        ref = m["junction_id"].map(b[c]) if not b.empty else np.nan
        m[f"{c}_pct"] = 100.0 * (m[c] - ref) / ref
    m["controller"] = pd.Categorical(m["controller"], order)
    return m.sort_values(["junction_id", "controller"]).reset_index(drop=True)


def network_summary(res: Results, baseline: str | None = None) -> pd.DataFrame:
    n = res.network
    if n.empty:
        return pd.DataFrame()
    n = _labelled(n)
    order = list(dict.fromkeys(n["controller"]))
    base = baseline or order[0]
    cols = ["vehicles_seen", "vehicles_arrived", "delay_s_per_veh", "stops_per_veh", "co2_kg", "co2_idle_kg",
            "teleports", "insertion_backlog_veh"]
    m = n.groupby("controller", sort=False)[cols].mean().reset_index()
    ref = m.set_index("controller").loc[base] if base in set(m["controller"]) else None
    for c in ("delay_s_per_veh", "stops_per_veh", "co2_kg"):
        m[f"{c}_pct"] = 100.0 * (m[c] - ref[c]) / ref[c] if ref is not None else np.nan
    return m


def flagged_runs(res: Results) -> pd.DataFrame:
    """The ok runs flagged as gridlocked, by the rule of ``sweep`` and the report
    (:func:`mobility.experiments.stats.excluded_runs`: teleports, or an insertion backlog above
    :data:`mobility.experiments.stats.GRIDLOCK_BACKLOG_SHARE`), with the reason and the printed ``label``."""
    from .stats import excluded_runs

    cols = ["run_id", "label", "seed", "reason"]
    if res.runs.empty:
        return pd.DataFrame(columns=cols)
    excl = excluded_runs(res.runs, res.network)
    excl = excl[excl["reason"].str.startswith("gridlock: ")]
    label = _labelled(res.runs).set_index("run_id")["controller"]
    out = excl.assign(label=excl["run_id"].map(label), reason=excl["reason"].str.removeprefix("gridlock: "))
    return out[cols].reset_index(drop=True)


#: marks a % change computed from a gridlocked run in :func:`format_comparison`
GRIDLOCK_MARK = "!"


def deployment_summary(res: Results) -> pd.DataFrame:
    """For each partial deployment (a controller whose ``treated`` column is true at some junctions
    only, ``NAME@(...)``): every controller's totals over that deployment's treated junctions and
    over its untreated ones — delay (s/veh) and stops (/veh) over the vehicles the zones served, CO2
    (kg) summed — mean over seeds, with % change against the first controller. Empty when no run is a
    partial deployment."""
    j = res.junctions
    if j.empty or "treated" not in j.columns:
        return pd.DataFrame()
    j = _labelled(j[j["junction_id"] != UNATTRIBUTED])
    order = list(dict.fromkeys(j["controller"]))
    rows = []
    for dep in order:
        d = j[j["controller"] == dep]
        treated = sorted(set(d.loc[d["treated"].astype(bool), "junction_id"]))
        if not treated or len(treated) == d["junction_id"].nunique():
            continue
        untreated = sorted(set(d["junction_id"]) - set(treated))
        for group, ids in (("treated", treated), ("untreated", untreated)):
            g = j[j["junction_id"].isin(ids)]
            per_run = g.groupby(["controller", "run_id"], sort=False)[["vehicles", "delay_s", "stops", "co2_kg"]].sum()
            per_run["delay_s_per_veh"] = per_run["delay_s"] / per_run["vehicles"].where(per_run["vehicles"] > 0)
            per_run["stops_per_veh"] = per_run["stops"] / per_run["vehicles"].where(per_run["vehicles"] > 0)
            m = per_run.groupby(level="controller", sort=False)[["delay_s_per_veh", "stops_per_veh", "co2_kg"]].mean()
            m = m.reindex(order)
            for c in order:
                row = {"deployment": dep, "group": group, "junctions": len(ids), "junction_ids": ", ".join(ids),
                       "controller": c, **m.loc[c].to_dict()}
                for k in ("delay_s_per_veh", "stops_per_veh", "co2_kg"):
                    b = m.loc[order[0], k]
                    row[f"{k}_pct"] = 100.0 * (row[k] - b) / b if b else np.nan
                rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(res: Results) -> str:
    """The per-junction table a planner reads, plus network totals.

    Gridlocked runs (:func:`flagged_runs`) are averaged in here, but never silently: their
    controller's network line says ``GRIDLOCK k/n runs``, every % change computed from one (the
    controller's or the baseline's) carries ``!``, and each flagged run is listed with its reason."""
    s = summary(res)
    flagged = flagged_runs(res)
    gl = set(flagged["label"])
    lines = []
    if not s.empty:
        controllers = list(s["controller"].cat.categories)
        base = controllers[0]
        lines.append(f"Per junction (mean over seeds; % change against '{base}'):")
        w = min(30, max(10, *(len(str(x)) for x in s["junction_id"]))) + 2
        hdr = f"{'junction':<{w}}{'controller':<18}{'veh':>7}{'delay s/veh LOS':>17}{'stops/veh':>16}{'CO2 kg':>17}{'idle CO2 %':>11}"
        lines.append(hdr)
        lines.append("-" * len(hdr))

        def pct(v: float, who: str) -> str:
            mark = GRIDLOCK_MARK if who in gl or base in gl else ""
            return "" if not np.isfinite(v) else f"({v:+.0f}%{mark})"

        for jid, g in s.groupby("junction_id", sort=False):
            jid = jid if len(jid) <= w - 2 else jid[: w - 3] + "…"
            for _, r in g.iterrows():
                idle = 100 * r.co2_idle_kg / r.co2_kg if r.co2_kg else np.nan
                first = r.controller == base
                lines.append(
                    f"{jid:<{w}}{r.controller:<18}{r.vehicles:>7.0f}"
                    f"{r.delay_s_per_veh:>7.1f} {r.los:<1} {'' if first else pct(r.delay_s_per_veh_pct, r.controller):>7}"
                    f"{r.stops_per_veh:>8.2f} {'' if first else pct(r.stops_per_veh_pct, r.controller):>7}"
                    f"{r.co2_kg:>9.2f} {'' if first else pct(r.co2_kg_pct, r.controller):>7}{idle:>10.0f}%"
                )
                jid = ""
    ns = network_summary(res)
    if not ns.empty:
        lines.append("")
        lines.append("Network total (all vehicles, junction zones + unattributed; mean over seeds):")
        nbase = str(ns["controller"].iloc[0])
        runs_of = _labelled(res.network).groupby("controller", sort=False)["run_id"].nunique()
        for _, r in ns.iterrows():
            mark = GRIDLOCK_MARK if (r.controller in gl or nbase in gl) and r.controller != nbase else ""
            k = int((flagged["label"] == r.controller).sum())
            lines.append(
                f"  {r.controller:<18} vehicles {r.vehicles_seen:>7.0f}  delay {r.delay_s_per_veh:6.1f} s/veh"
                f" {pct_str(r.delay_s_per_veh_pct, mark)}  stops {r.stops_per_veh:5.2f}/veh"
                f" {pct_str(r.stops_per_veh_pct, mark)}  CO2 {r.co2_kg:8.1f} kg {pct_str(r.co2_kg_pct, mark)}"
                f"  teleports {r.teleports:.0f}  not inserted {r.insertion_backlog_veh:.0f}"
                + (f"  GRIDLOCK {k}/{int(runs_of.get(r.controller, k))} runs" if k else "")
            )
    if not res.corridor.empty:
        c = _labelled(res.corridor)
        cols = ["vehicles", "travel_time_s_mean", "delay_s_per_veh", "stops_per_veh", "co2_g_per_veh"]
        m = c.groupby(["direction", "from_junction", "to_junction", "controller"], sort=False)[cols].mean().reset_index()
        lines.append("")
        lines.append("Along the corridor (vehicles travelling its whole length; mean over seeds):")
        for _, r in m.iterrows():
            lines.append(
                f"  {r.direction:<9}{r.from_junction}→{r.to_junction}  {r.controller:<18} trips {r.vehicles:>6.0f}"
                f"  travel {r.travel_time_s_mean:6.1f} s  delay {r.delay_s_per_veh:6.1f} s/veh"
                f"  stops {r.stops_per_veh:5.2f}/veh  CO2 {r.co2_g_per_veh:6.0f} g/veh"
            )
    from ..transit import format_transit

    lines += format_transit(res.transit, res.transit_events, res.junctions, _labelled)
    ds = deployment_summary(res)
    if not ds.empty:
        lines.append("")
        lines.append("Treated and untreated junctions of each partial deployment (zone totals, mean over seeds):")
        for (dep, group, n, ids), g in ds.groupby(["deployment", "group", "junctions", "junction_ids"], sort=False):
            what = f"{group} ({n} junctions: {ids})" if group == "treated" else f"{group} ({n} junctions)"
            lines.append(f"  {dep}: {what}")
            for _, r in g.iterrows():
                lines.append(f"    {r.controller:<26} delay {r.delay_s_per_veh:6.1f} s/veh {pct_str(r.delay_s_per_veh_pct)}"
                             f"  stops {r.stops_per_veh:5.2f}/veh {pct_str(r.stops_per_veh_pct)}"
                             f"  CO2 {r.co2_kg:8.2f} kg {pct_str(r.co2_kg_pct)}")
    if not flagged.empty:
        lines.append("")
        lines.append(f"{GRIDLOCK_MARK} = a % change computed from a GRIDLOCKED run (its own or the baseline's): not a valid "
                     "comparison; `mobility sweep` and `report` leave such runs out of every mean")
        for _, r in flagged.iterrows():
            lines.append(f"GRIDLOCK {r['label']} seed {r['seed']}: {r['reason']}")
    failed = res.failed
    for _, r in failed.iterrows():
        lines.append(f"FAILED {r['controller']} seed {r['seed']}: {r['error']}")
    return "\n".join(lines)


def pct_str(v: float, mark: str = "") -> str:
    return " " * (8 + len(mark)) if not np.isfinite(v) or v == 0 else f"({v:+.1f}%{mark})"
