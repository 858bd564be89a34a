"""Scenario specs: what to simulate, for how long, with which demand, and how to attribute it.

A scenario comes from one of two sources:

* a ``scenarios/*.toml`` file (see ``scenarios/corridor.toml`` for a commented example): a network,
  demand per origin-destination pair in vehicles per hour for one or more time periods, a vehicle
  mix, the time window, a warm-up excluded from metrics, step length, seed and zone distances;
* any existing SUMO ``.sumocfg``: its network, route and additional files, its time window and every
  other option are used as they are. A configuration with no ``end`` runs, as SUMO does, until the
  network is empty (no vehicle running, pending or still to be loaded), at most
  :data:`UNTIL_EMPTY_CAP_S` simulated seconds after its begin (``Scenario.cap_s``); a run stopped
  by that cap is flagged. Outputs the model's own files configure (``tripinfo-output`` in the
  configuration, detector ``file=`` in additional files, ...) are written into the run's work
  directory (:func:`redirect_outputs`), never beside the model's files, which may be read-only.

Both give a frozen :class:`Scenario`. Loading validates everything it can without running SUMO and
raises :class:`~mobility.errors.ScenarioError` with a one-line message naming the file and field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import math
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .carbon.emissions import GridFactor, check_shares, emission_class_error, preset_fleet
from .controllers.base import SiteSafety
from .errors import ScenarioError
from .fields import Fields, is_integer, is_number, read_toml  # noqa: F401  (Fields, read_toml: also mobility.scenario.*)

#: The bundled data, shipped inside the package (``mobility/_data``; in a checkout its folders link to
#: the repository's ``networks/``, ``scenarios/`` and ``docs/metrics.md``): scenarios live in
#: ``<ROOT>/scenarios``, networks in ``<ROOT>/networks``, the metric definitions in ``<ROOT>/docs``.
ROOT = Path(str(importlib.resources.files(__name__.rpartition(".")[0]) / "_data"))
BUNDLED_DIR = ROOT / "scenarios"

#: Safety cap of a run with no end time (simulated seconds after ``begin_s``): a model that runs
#: "until the network is empty" but gridlocks stops here, flagged. Override with ``Scenario.cap_s``
#: (``mobility run --max-time``).
UNTIL_EMPTY_CAP_S = 86400.0


@dataclass(frozen=True)
class ZoneSpec:
    """Distances that bound each signalised junction's attribution zone (metres).

    ``upstream_m``: how far upstream of the stop line the approach part of the zone reaches,
    following lanes back through unsignalised junctions (stopping at another signal).
    ``downstream_m``: how far past the junction the exit part reaches (where vehicles accelerate
    away from a stop). Where zones of neighbouring junctions would overlap, the approach of the
    downstream junction wins, so each vehicle-second belongs to at most one zone.
    """

    upstream_m: float = 150.0
    downstream_m: float = 100.0


@dataclass(frozen=True)
class Period:
    """A demand period ``[begin_s, end_s)`` in simulation seconds."""

    name: str
    begin_s: float
    end_s: float


@dataclass(frozen=True)
class VehicleType:
    """One class of the vehicle mix: a SUMO vType drawn with probability ``share``.

    ``group`` is the kinematic group (default: the id). Types of one group must drive identically
    (same vClass and params); they are written next to each other so that changing shares *within*
    a group (a fleet what-if) does not change which vehicles are cars, buses or trucks."""

    id: str
    share: float
    vclass: str = "passenger"
    emission_class: str = "HBEFA4/PC_petrol_Euro-6ab"
    params: tuple[tuple[str, str], ...] = ()  # extra vType attributes (accel, length, sigma, ...)
    group: str = ""
    description: str = ""

    @property
    def kinematic_group(self) -> str:
        return self.group or self.id


@dataclass(frozen=True)
class Flow:
    """Demand between an origin edge and a destination edge, vehicles/hour for each period.

    Vehicles arrive as a Poisson process (SUMO ``period="exp(rate)"``) so seeds differ; SUMO routes
    each vehicle on the fastest path at insertion. ``via`` optionally pins intermediate edges.
    """

    origin: str
    destination: str
    vph: tuple[float, ...]
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventWindow:
    """When an event (:class:`Incident`, :class:`Surge`) is in force: from ``begin_s`` (simulation
    seconds) for ``duration_s`` seconds, i.e. ``[begin_s, end_s)``."""

    begin_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        """The end of the event, simulation seconds: ``begin_s + duration_s``."""
        return self.begin_s + self.duration_s


@dataclass(frozen=True)
class Incident(EventWindow):
    """A lane (``lane``) or a whole edge (``edge``) closed to all vehicles from ``begin_s`` for
    ``duration_s`` seconds (a SUMO rerouter with ``closingLaneReroute``/``closingReroute`` in an
    additional file written into the run's work folder: vehicles on the upstream edges are rerouted
    around a closed edge; vehicles already on a closed lane drive off it, no vehicle enters it)."""

    lane: str = ""
    edge: str = ""


@dataclass(frozen=True)
class Surge(EventWindow):
    """Demand × ``factor`` from ``begin_s`` for ``duration_s`` seconds, for the flows from edge
    ``origin`` and/or to edge ``destination`` (empty: any; both empty: every flow). Applied when the
    routes are written: each flow's period is split at the surge's bounds."""

    factor: float
    origin: str = ""
    destination: str = ""

    def applies(self, fl: Flow) -> bool:
        return (not self.origin or fl.origin == self.origin) and (not self.destination or fl.destination == self.destination)


#: default number of random candidate trips of a demand fitted to counts (before duplicates are removed)
DEFAULT_CANDIDATES = 2000
#: the count attribute of edgeData files (routeSampler's default)
DEFAULT_EDGE_ATTRIBUTE = "entered"


#: the safety floors of a ``.sumocfg`` model: 3 s yellow, no all-red floor (the real programs of the
#: city and RESCO models have none; a TOML scenario's floors are set with ``[safety]``)
SUMOCFG_SAFETY = SiteSafety(yellow_s=3.0, all_red_s=0.0, min_green_s=0.0)


@dataclass(frozen=True)
class CountsDemand:
    """A scenario's ``[counts]`` table: demand still to be fitted to traffic counts.

    Loading a scenario never runs a tool: the fit (randomTrips, duarouter, routeSampler) runs when
    a run is prepared, :func:`mobility.inputs.counts.prepare_demand`, over the file's own time window
    (``begin_s``/``end_s``, s)."""

    file: Path  # counts CSV or SUMO edgeData/edgeRelation XML (absolute)
    seed: int = 1
    candidates: int = DEFAULT_CANDIDATES
    attribute: str = DEFAULT_EDGE_ATTRIBUTE
    begin_s: float = 0.0
    end_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A fully resolved scenario (paths absolute, times in seconds).

    ``end_s`` is None for a model with no end time: it runs until the network is empty, at most until
    ``begin_s + cap_s`` (:attr:`stop_s`); its demand period is then [begin, last departure] and its
    metrics cover the run up to the time it actually ended (recorded as ``end_s`` of the run)."""

    name: str
    source: Path
    net_file: Path
    begin_s: float
    end_s: float | None
    warmup_s: float = 0.0
    step_length_s: float = 1.0
    seed: int = 1
    zones: ZoneSpec = field(default_factory=ZoneSpec)
    periods: tuple[Period, ...] = ()
    vehicle_types: tuple[VehicleType, ...] = ()
    flows: tuple[Flow, ...] = ()
    junctions: tuple[str, ...] = ()  # signalised junctions to report; empty = all
    corridor: tuple[str, ...] = ()  # ordered junctions of an arterial: corridor metrics (corridor.csv)
    sumocfg: Path | None = None
    route_files: tuple[Path, ...] = ()
    additional_files: tuple[Path, ...] = ()
    sumo_args: tuple[str, ...] = ()  # extra options for SUMO from the scenario itself
    description: str = ""
    grid: GridFactor = field(default_factory=GridFactor)  # scope-2 factor (kg CO2/kWh) with source
    fleet: str = ""  # the fleet preset and its parameters, if the vehicle types came from one
    cap_s: float = UNTIL_EMPTY_CAP_S  # with no end_s: the longest run, simulated s after begin_s
    incidents: tuple[Incident, ...] = ()  # lanes/edges closed during the run ([[incidents]])
    surges: tuple[Surge, ...] = ()  # demand surges during the run ([[surges]])
    #: demand still to be fitted to counts (periods/flows empty until :func:`mobility.inputs.counts.prepare_demand`)
    counts: CountsDemand | None = None
    #: the site's safety floors ([safety]): yellow, all-red and minimum green no controller can shorten
    safety: SiteSafety = field(default_factory=SiteSafety)

    @property
    def measure_begin_s(self) -> float:
        """Start of the measurement window (after the warm-up)."""
        return self.begin_s + self.warmup_s

    @property
    def until_empty(self) -> bool:
        """True when the run has no end time and goes on until the network is empty."""
        return self.end_s is None

    @property
    def stop_s(self) -> float:
        """The latest simulated time of a run (s): ``end_s``, or ``begin_s + cap_s`` with no end."""
        return self.begin_s + self.cap_s if self.end_s is None else self.end_s

    def fixed_end_s(self, what: str) -> float:
        """``end_s``; a scenario with no end time raises :class:`ScenarioError` naming ``what`` needs one."""
        if self.end_s is None:
            raise ScenarioError(f"{self.source}: option 'end' missing; {what} needs a fixed end time "
                                "(give the scenario an end, e.g. --end SECONDS)")
        return self.end_s

    def with_window(self, begin_s: float | None = None, end_s: float | None = None, *,
                    until_empty: bool = False, cap_s: float | None = None) -> Scenario:
        """The same scenario over another time window (s); ``until_empty``: drop the end time (run
        until the network is empty, at most ``cap_s`` after the begin). Validated like the file."""
        begin = self.begin_s if begin_s is None else float(begin_s)
        end = None if until_empty else (self.end_s if end_s is None else float(end_s))
        cap = self.cap_s if cap_s is None else float(cap_s)
        where = f"{self.source}: time window"
        if not (math.isfinite(begin) and begin >= 0):
            raise ScenarioError(f"{where}: begin: expected a time >= 0 s, got {begin!r}")
        if not (math.isfinite(cap) and cap > 0):
            raise ScenarioError(f"{where}: maximum time: expected a positive number of seconds, got {cap!r}")
        if end is not None and not (math.isfinite(end) and end > begin + self.warmup_s):
            raise ScenarioError(f"{where}: end: expected a time after begin {begin:g} s + warm-up "
                                f"{self.warmup_s:g} s, got {end!r}")
        changes: dict[str, Any] = {"begin_s": begin, "end_s": end, "cap_s": cap}
        if self.sumocfg is not None:  # the configuration's one period follows its window
            changes["periods"] = () if end is None else (Period("all", begin, end),)
        return self.replace(**changes)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (e.g. ``seed``)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, factor: float) -> Scenario:
        """The same scenario with every demand multiplied by ``factor`` (> 0).

        TOML scenarios scale each flow's vehicles/hour; ``.sumocfg`` scenarios pass SUMO's
        ``--scale`` option (which duplicates or drops vehicles of the route files at random)."""
        if not (factor > 0 and math.isfinite(factor)):
            raise ScenarioError(f"{self.source}: demand scale factor: expected a positive number, got {factor!r}")
        if factor == 1.0:
            return self
        if self.sumocfg is not None:
            return self.replace(sumo_args=(*self.sumo_args, "--scale", f"{factor:g}"))
        flows = tuple(dataclasses.replace(f, vph=tuple(v * factor for v in f.vph)) for f in self.flows)
        return self.replace(flows=flows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description, recorded with every result."""

        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                return {k: conv(x) for k, x in dataclasses.asdict(v).items()}
            return v

        return {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def content_hash(self) -> str:
        """Hash of the spec and the content of every input file (not their paths or mtimes)."""
        h = hashlib.sha256()
        d = self.to_dict()
        for key in ("source", "net_file", "sumocfg", "route_files", "additional_files"):
            d.pop(key, None)
        if self.end_s is not None:  # the cap only matters without an end: hashes of fixed windows unchanged
            d.pop("cap_s", None)
        for key in ("incidents", "surges", "counts"):  # no events: hashes of scenarios without them unchanged
            if not d.get(key):
                d.pop(key, None)
        if self.safety == (SUMOCFG_SAFETY if self.sumocfg is not None else SiteSafety()):  # default floors: hash unchanged
            d.pop("safety", None)
        h.update(json.dumps(d, sort_keys=True).encode())
        files = [self.net_file, *self.route_files, *self.additional_files]
        if self.sumocfg is not None:
            files.insert(0, self.sumocfg)
        for p in files:
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# loading


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``scenarios/`` (TOML files with a ``network``; the sweep and
    tonnage specs beside them are not scenarios)."""
    names = []
    for p in BUNDLED_DIR.glob("*.toml"):
        try:
            if "network" in tomllib.loads(p.read_text(encoding="utf-8")):
                names.append(p.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return sorted(names)


def load_scenario(spec: str | Path) -> Scenario:
    """Load a scenario from a TOML path, a ``.sumocfg`` path, or a bundled scenario name."""
    path = Path(spec)
    if not path.exists() and path.suffix == "" and (BUNDLED_DIR / f"{spec}.toml").exists():
        path = BUNDLED_DIR / f"{spec}.toml"
    if not path.exists():
        known = ", ".join(bundled_scenarios())
        raise ScenarioError(
            f"{spec}: no such file; give a .toml or .sumocfg path or a bundled scenario ({known})"
        )
    if path.suffix == ".sumocfg":
        return from_sumocfg(path)
    if path.suffix == ".toml":
        return from_toml(path)
    raise ScenarioError(f"{path}: expected a .toml scenario or a .sumocfg file")


def from_toml(path: Path) -> Scenario:
    """Load and validate a TOML scenario (relative paths are relative to the file)."""
    path = path.resolve()
    data = read_toml(path)
    f = Fields(path, data)
    name = f.get("name", str, path.stem, what="a string")
    description = f.get("description", str, "", what="a string")
    net_rel = f.get("network", str, what="a path to a SUMO .net.xml (relative to the scenario)")
    net_file = (path.parent / net_rel).resolve()
    if not net_file.exists():
        raise f.err("network", f"file {net_file} does not exist")
    begin = f.number("begin_s", 0.0, minimum=0.0, what="a time in seconds")
    end = f.number("end_s", what="a time in seconds")
    if end <= begin:
        raise f.err("end_s", f"expected a time after begin_s={begin:g}, got {end:g}")
    warmup = f.number("warmup_s", 0.0, minimum=0.0, what="a duration in seconds")
    if begin + warmup >= end:
        raise f.err("warmup_s", f"expected a warm-up shorter than the run ({end - begin:g} s), got {warmup:g}")
    step = f.number("step_length_s", 1.0, minimum=0.0, strict=True, what="a step length in seconds")
    seed = f.get("seed", int, 1, what="an integer")
    junctions = tuple(f.get("junctions", list, [], what="a list of signalised junction ids"))
    corridor = tuple(f.get("corridor", list, [], what="an ordered list of signalised junction ids"))
    sumo_args = tuple(f.get("sumo_args", list, [], what="a list of SUMO options"))

    zt = Fields(path, f.get("zones", dict, {}, what="a table"), "zones.")
    zones = ZoneSpec(
        upstream_m=zt.number("upstream_m", ZoneSpec.upstream_m, minimum=0.0, what="a distance in m"),
        downstream_m=zt.number("downstream_m", ZoneSpec.downstream_m, minimum=0.0, what="a distance in m"),
    )
    zt.finish()

    periods: list[Period] = []
    for i, pf in enumerate(f.tables("periods", what="a list of [[periods]] tables")):
        pb = pf.number("begin_s", minimum=begin, what="a time in seconds")
        pe = pf.number("end_s", minimum=pb, strict=True, what="a time in seconds")
        if periods and pb < periods[-1].end_s:
            raise pf.err("begin_s", f"periods overlap: begins at {pb:g} before the previous ends ({periods[-1].end_s:g})")
        periods.append(Period(pf.get("name", str, f"p{i}", what="a string"), pb, pe))
        pf.finish()
    if not periods:
        periods = [Period("all", begin, end)]

    vtypes, fleet_desc = _vehicle_types(path, f)
    grid = _grid_factor(path, f)

    flows: list[Flow] = []
    for ff in f.tables("flows", what="a list of [[flows]] tables"):
        origin = ff.get("from", str, what="an origin edge id")
        dest = ff.get("to", str, what="a destination edge id")
        via = tuple(ff.get("via", list, [], what="a list of edge ids"))
        raw = ff.get("vph", (int, float, list), what="vehicles/hour: a number or one per period")
        vals = raw if isinstance(raw, list) else [raw] * len(periods)
        if len(vals) != len(periods):
            raise ff.err("vph", f"expected {len(periods)} values (one per period), got {len(vals)}")
        for x in vals:
            if not is_number(x) or not math.isfinite(x) or x < 0:
                raise ff.err("vph", f"expected non-negative vehicles/hour, got {x!r}")
        flows.append(Flow(origin, dest, tuple(float(x) for x in vals), via))
        ff.finish()
    counts = f.get("counts", dict, {}, what="a table: file = COUNTS.csv (demand fitted to counts)")
    counted = None
    if counts:  # demand fitted to traffic counts: periods = count intervals, flows = sampled routes
        if flows or "periods" in data:
            raise f.err("counts", "expected either [counts] or [[periods]]/[[flows]], not both")
        counted = _counts_table(path, counts, begin, end)
    incidents, surges = _events(f, begin, end)
    st = Fields(path, f.get("safety", dict, {}, what="a table: yellow_s, all_red_s, min_green_s (s)"), "safety.")
    safety = SiteSafety(
        yellow_s=st.number("yellow_s", SiteSafety.yellow_s, minimum=0.0, what="a yellow time in seconds"),
        all_red_s=st.number("all_red_s", SiteSafety.all_red_s, minimum=0.0, what="an all-red time in seconds"),
        min_green_s=st.number("min_green_s", SiteSafety.min_green_s, minimum=0.0, what="a minimum green in seconds"),
    )
    st.finish()
    f.finish()

    scenario = Scenario(
        name=name, source=path, net_file=net_file, begin_s=begin, end_s=end, warmup_s=warmup,
        step_length_s=step, seed=seed, zones=zones, periods=tuple(periods),
        vehicle_types=tuple(vtypes), flows=tuple(flows), junctions=junctions, corridor=corridor,
        sumo_args=sumo_args, description=description, grid=grid, fleet=fleet_desc,
        incidents=incidents, surges=surges, counts=counted, safety=safety,
    )
    _check_ids(scenario)
    return scenario


def _counts_table(scenario_path: Path, table: dict[str, Any], begin_s: float, end_s: float) -> CountsDemand:
    """A TOML scenario's ``[counts]`` table (``file``: a counts CSV or SUMO edgeData/edgeRelation XML;
    optional ``seed``, ``candidates`` and ``attribute``, the edgeData count attribute, default
    ``entered``), checked; the demand is fitted when a run is prepared (:class:`CountsDemand`)."""
    allowed = {"file", "seed", "candidates", "attribute"}
    for key in table:
        if key not in allowed:
            raise ScenarioError(f"{scenario_path}: field 'counts.{key}': unknown field "
                                "(expected file, seed, candidates, attribute)")
    rel = table.get("file")
    if not isinstance(rel, str):
        raise ScenarioError(f"{scenario_path}: field 'counts.file': expected a path to a counts CSV, got {rel!r}")
    attribute = table.get("attribute", DEFAULT_EDGE_ATTRIBUTE)
    if not isinstance(attribute, str) or not attribute:
        raise ScenarioError(f"{scenario_path}: field 'counts.attribute': expected an edgeData attribute name "
                            f"(e.g. entered), got {attribute!r}")
    seed = table.get("seed", 1)
    cand = table.get("candidates", DEFAULT_CANDIDATES)
    for key, v in (("seed", seed), ("candidates", cand)):
        if not is_integer(v) or v < 0:
            raise ScenarioError(f"{scenario_path}: field 'counts.{key}': expected an integer >= 0, got {v!r}")
    csv_path = (scenario_path.parent / rel).resolve()
    if not csv_path.is_file():
        raise ScenarioError(f"{scenario_path}: field 'counts.file': file {csv_path} does not exist")
    return CountsDemand(csv_path, seed, cand, attribute, begin_s, end_s)


def _events(f: Fields, begin: float, end: float) -> tuple[tuple[Incident, ...], tuple[Surge, ...]]:
    """``[[incidents]]`` (lane or edge, begin_s, duration_s) and ``[[surges]]`` (factor, begin_s,
    duration_s, optional from/to edges), inside the run's window."""

    def window(t: Fields) -> tuple[float, float]:
        b = t.number("begin_s", minimum=begin, what="a time in seconds within the run")
        d = t.number("duration_s", minimum=0.0, strict=True, what="a duration in seconds")
        if b >= end:
            raise t.err("begin_s", f"expected a time before the run's end_s={end:g}, got {b:g}")
        return b, d

    incidents = []
    for t in f.tables("incidents", what="a list of [[incidents]] tables (lane or edge, begin_s, duration_s)"):
        b, d = window(t)
        lane = t.get("lane", str, "", what="a lane id")
        edge = t.get("edge", str, "", what="an edge id")
        if bool(lane) == bool(edge):
            raise t.err("lane", "expected exactly one of lane = \"LANE_ID\" or edge = \"EDGE_ID\"")
        t.finish()
        incidents.append(Incident(b, d, lane, edge))
    surges = []
    for t in f.tables("surges", what="a list of [[surges]] tables (factor, begin_s, duration_s, from, to)"):
        b, d = window(t)
        k = t.number("factor", minimum=0.0, what="a demand multiplier")
        origin = t.get("from", str, "", what="an origin edge id of [[flows]]")
        dest = t.get("to", str, "", what="a destination edge id of [[flows]]")
        t.finish()
        surges.append(Surge(b, d, k, origin, dest))
    return tuple(incidents), tuple(surges)


def _vehicle_types(path: Path, f: Fields) -> tuple[list[VehicleType], str]:
    """``[[vehicle_types]]`` or a ``[fleet]`` preset (not both); validated emission classes."""
    vtypes: list[VehicleType] = []
    raw_types = f.tables("vehicle_types", what="a list of [[vehicle_types]] tables")
    fleet = f.get("fleet", dict, {}, what="a table with preset = NAME and its parameters")
    fleet_desc = ""
    if fleet and raw_types:
        raise f.err("fleet", "expected either [fleet] or [[vehicle_types]], not both")
    if fleet:
        ff = Fields(path, fleet, "fleet.")
        preset = ff.get("preset", str, what="a fleet preset name (china-city)")
        params = {k: v for k, v in fleet.items() if k != "preset"}
        for k, v in params.items():
            if not is_number(v):
                raise ff.err(k, f"expected a number, got {v!r}")
        try:
            classes = preset_fleet(preset, **params)
        except KeyError:
            raise ff.err("preset", f"unknown fleet preset {preset!r}; known: china-city") from None
        except TypeError as e:
            raise ff.err(str(e).split("'")[1] if "'" in str(e) else "preset", "unknown parameter of the preset") from None
        except ValueError as e:
            key, _, msg = str(e).partition(": ")
            raise ff.err(key, msg) from None
        vtypes = [VehicleType(c.id, c.share, c.vclass, c.emission_class, (), c.group, c.description) for c in classes]
        fleet_desc = json.dumps({"preset": preset, **params}, sort_keys=True, ensure_ascii=False)
    for vf in raw_types:
        vid = vf.get("id", str, what="a vType id")
        share = vf.number("share", minimum=0.0, what="a share between 0 and 1")
        vclass = vf.get("vclass", str, "passenger", what="a SUMO vClass")
        eclass = vf.get("emission_class", str, "HBEFA4/PC_petrol_Euro-6ab", what="a SUMO emission class")
        extra = vf.get("params", dict, {}, what="a table of vType attributes")
        group = vf.get("group", str, "", what="a kinematic group name")
        desc = vf.get("description", str, "", what="a string")
        vtypes.append(VehicleType(vid, share, vclass, eclass, tuple(sorted((k, str(x)) for k, x in extra.items())),
                                  group, desc))
        vf.finish()
    if not vtypes:
        vtypes = [VehicleType("car", 1.0)]
    check_shares([v.share for v in vtypes], f"{path}: field 'vehicle_types[*].share'")
    if len({v.id for v in vtypes}) != len(vtypes):
        raise ScenarioError(f"{path}: field 'vehicle_types[*].id': ids must be unique")
    for i, v in enumerate(vtypes):
        why = emission_class_error(v.emission_class)
        if why is not None:
            where = "fleet.preset" if fleet else f"vehicle_types[{i}].emission_class"
            raise ScenarioError(f"{path}: field '{where}': unknown SUMO emission class {v.emission_class!r} ({why})")
    groups: dict[str, tuple[str, tuple]] = {}
    for v in vtypes:
        kin = (v.vclass, v.params)
        if groups.setdefault(v.kinematic_group, kin) != kin:
            raise ScenarioError(f"{path}: field 'vehicle_types[*].group': types of group {v.kinematic_group!r} "
                                "must share vclass and params (they must drive identically)")
    order = list(dict.fromkeys(v.kinematic_group for v in vtypes))
    vtypes.sort(key=lambda v: order.index(v.kinematic_group))  # stable: groups contiguous
    return vtypes, fleet_desc


def _grid_factor(path: Path, f: Fields) -> GridFactor:
    """``[emissions]``: the scope-2 grid factor with its source and year."""
    et = Fields(path, f.get("emissions", dict, {}, what="a table"), "emissions.")
    default = GridFactor()
    factor = et.number("grid_kg_co2_per_kwh", default.kg_co2_per_kwh, minimum=0.0, what="kg CO2 per kWh (>= 0)")
    given = "grid_kg_co2_per_kwh" in et.table
    source = et.get("grid_factor_source", str, default.source if not given else ..., what="where the factor comes from")
    year = et.get("grid_factor_year", int, default.year if not given else ..., what="the year the factor describes")
    et.finish()
    return GridFactor(float(factor), source, year)


def _check_ids(s: Scenario) -> None:
    """Edges of flows and junction ids must exist in the network."""
    from .network import SignalNetwork  # local: reading the network is the slow part

    net = SignalNetwork.load(s.net_file)
    for i, fl in enumerate(s.flows):
        for key, e in (("from", fl.origin), ("to", fl.destination), *(("via", v) for v in fl.via)):
            if not net.has_edge(e):
                raise ScenarioError(f"{s.source}: field 'flows[{i}].{key}': edge '{e}' is not in {s.net_file.name}")
    for i, inc in enumerate(s.incidents):
        if inc.edge and not net.has_edge(inc.edge):
            raise ScenarioError(f"{s.source}: field 'incidents[{i}].edge': edge '{inc.edge}' is not in {s.net_file.name}")
        if inc.lane and inc.lane not in net.lanes:
            raise ScenarioError(f"{s.source}: field 'incidents[{i}].lane': lane '{inc.lane}' is not in {s.net_file.name}")
    for i, su in enumerate(s.surges):
        if s.counts is None and not any(su.applies(fl) for fl in s.flows):  # counted flows: not known yet
            raise ScenarioError(f"{s.source}: field 'surges[{i}]': no [[flows]] from '{su.origin or '*'}' "
                                f"to '{su.destination or '*'}'")
    for field_name, ids in (("junctions", s.junctions), ("corridor", s.corridor)):
        for j in ids:
            if j not in net.junction_ids:
                raise ScenarioError(
                    f"{s.source}: field '{field_name}': '{j}' is not a signalised junction of {s.net_file.name} "
                    f"(known: {', '.join(net.junction_ids[:12])}{'…' if len(net.junction_ids) > 12 else ''})"
                )


#: SUMO option names read from a configuration, with the synonyms SUMO accepts for them
#: (``sumo --save-template`` lists them as "synonymes").
_CFG_ALIASES = {"net-file": ("n", "net"), "route-files": ("r", "routes"), "additional-files": ("a", "additional"),
                "begin": ("b",), "end": ("e",), "step-length": (), "seed": ()}

#: SUMO options that name an output file, with their synonyms: every option of type FILE in the
#: output and report sections of ``sumo --save-template`` (SUMO 1.28), and the device outputs.
OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "netstate-dump": ("ndump", "netstate", "netstate-output"), "emission-output": (), "battery-output": (),
    "elechybrid-output": (), "chargingstations-output": (), "overheadwiresegments-output": (),
    "substations-output": (), "fcd-output": (), "person-fcd-output": ("person-fcd",), "full-output": (),
    "queue-output": (), "vtk-output": (), "amitran-output": (), "summary-output": ("summary",),
    "person-summary-output": (), "tripinfo-output": ("tripinfo",), "personinfo-output": ("personinfo",),
    "vehroute-output": ("vehroutes",), "personroute-output": ("personroutes",), "link-output": (),
    "railsignal-block-output": (), "railsignal-vehicle-output": (), "bt-output": (), "lanechange-output": (),
    "stop-output": (), "collision-output": (), "edgedata-output": (), "lanedata-output": (),
    "statistic-output": ("statistics-output",), "deadlock-output": (), "save-state.prefix": (),
    "save-state.files": (), "device.rerouting.output": (), "log": ("l", "log-file"), "message-log": (),
    "error-log": (), "device.ssm.file": (), "device.toc.file": (), "device.taxi.dispatch-algorithm.output": (),
    "device.taxi.idle-algorithm.output": (),
}

#: Elements of additional files whose attribute names an output file (detectors, mean data, probes,
#: calibrators, timed events).
OUTPUT_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(("e1Detector", "inductionLoop", "e2Detector", "laneAreaDetector", "e3Detector",
                     "entryExitDetector", "instantInductionLoop", "edgeData", "laneData", "meanData",
                     "routeProbe", "vTypeProbe"), "file"),
    "calibrator": "output", "timedEvent": "dest",
}
#: Attributes of additional files that name an input file relative to that file
_INPUT_ATTRIBUTES = {"include": "href", "rerouter": "file", "variableSpeedSign": "file"}


def _sumocfg_options(path: Path) -> dict[str, str]:
    """The options of a SUMO configuration, name -> value (SUMO ignores the section elements)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ScenarioError(f"{path}: malformed XML: {e}") from None
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    out: dict[str, str] = {}
    for el in root.iter():
        if el is not root and el.get("value") is not None:
            out.setdefault(el.tag.split("}")[-1], el.get("value", ""))
    return out


def from_sumocfg(path: Path) -> Scenario:
    """Wrap an existing SUMO configuration: its files, time window and options are used as they are.

    With no ``end`` the scenario runs until the network is empty (``end_s`` None, see :class:`Scenario`)."""
    path = path.resolve()
    options = _sumocfg_options(path)

    def opt(name: str) -> str | None:
        for key in (name, *_CFG_ALIASES.get(name, ())):
            if key in options:
                return options[key]
        return None

    def files(name: str) -> tuple[Path, ...]:
        v = opt(name)
        if not v:
            return ()
        out = []
        for part in v.replace(",", " ").split():
            p = (path.parent / part).resolve()
            if not p.exists():
                raise ScenarioError(f"{path}: option '{name}': file {p} does not exist")
            out.append(p)
        return tuple(out)

    nets = files("net-file")
    if not nets:
        raise ScenarioError(f"{path}: option 'net-file' missing; expected a network in the configuration")

    def num(name: str, default: float | None) -> float | None:
        from sumolib.miscutils import parseTime

        v = opt(name)
        if v is None or v.strip() in ("", "-1"):  # SUMO's default end is -1: no end
            return default
        try:
            x = float(parseTime(v.strip()))
        except ValueError:
            raise ScenarioError(f"{path}: option '{name}': expected seconds or [D:]HH:MM:SS, got {v!r}") from None
        if not math.isfinite(x) or x < 0:
            raise ScenarioError(f"{path}: option '{name}': expected a time >= 0, got {v!r}")
        return x

    begin = num("begin", 0.0)
    if begin is None:  # unreachable: the default is 0
        raise ScenarioError(f"{path}: option 'begin': expected a time >= 0")
    end = num("end", None)
    if end is not None and end <= begin:
        raise ScenarioError(f"{path}: option 'end': expected a time after begin={begin:g}, got {end:g}")
    step = num("step-length", 1.0)
    if not step:
        raise ScenarioError(f"{path}: option 'step-length': expected a positive number of seconds, got 0")
    seed_v = opt("seed")
    try:
        seed = int(seed_v) if seed_v else 1
    except ValueError:
        raise ScenarioError(f"{path}: option 'seed': expected an integer, got {seed_v!r}") from None
    return Scenario(
        name=path.parent.name if path.stem in ("scenario", "osm", "run") else path.stem, source=path,
        net_file=nets[0], begin_s=begin, end_s=end, step_length_s=step, seed=seed,
        periods=(Period("all", begin, end),) if end is not None else (), sumocfg=path,
        route_files=files("route-files"), additional_files=files("additional-files"), safety=SUMOCFG_SAFETY,
    )


def redirect_outputs(s: Scenario, workdir: Path,
                     given: Sequence[str] = ()) -> tuple[list[str], tuple[Path, ...]]:
    """Send every output the model's own files configure into ``workdir / "outputs"``.

    SUMO writes a configuration's outputs relative to the configuration and a detector's ``file=``
    relative to its additional file (``--output-prefix`` only prefixes the file name, it does not move
    the file), so a model in a read-only folder could not run, and runs would overwrite each other.
    Returns the SUMO options that override the configuration's output options, and the additional
    files to load instead of ``s.additional_files``: unchanged files as they are, files with outputs
    as copies in ``workdir / "model"`` whose output attributes point into ``workdir / "outputs"``
    (and whose relative input references point back to the original folder). An output option in
    ``given`` (the extra SUMO options of the run, under any of its names) is left to them."""
    out_dir = workdir / "outputs"
    targets: dict[str, Path] = {}

    def target(value: str, base: Path) -> str:
        if value.upper() in ("NUL", "/DEV/NULL", ""):
            return value
        src = str((base / value).resolve())
        if src not in targets:
            name = Path(value).name
            taken = {t.name for t in targets.values()}
            targets[src] = out_dir / (name if name not in taken else f"{len(targets)}_{name}")
        return str(targets[src])

    args: list[str] = []
    named = _option_names(given)
    if s.sumocfg is not None:
        options = _sumocfg_options(s.sumocfg)
        for name, aliases in OUTPUT_OPTIONS.items():
            if named & {name, *aliases}:
                continue  # the run's own option wins
            for key in (name, *aliases):
                if options.get(key):
                    values = options[key].replace(",", " ").split()
                    args += [f"--{name}", ",".join(target(v, s.sumocfg.parent) for v in values)]
                    break
    adds: list[Path] = []
    for f in s.additional_files:
        import sumolib

        try:
            with sumolib.openz(str(f)) as fh:
                tree = ET.parse(fh)
        except (ET.ParseError, OSError) as e:
            raise ScenarioError(f"{f}: cannot read as XML: {e}") from None
        changed = False
        for el in tree.getroot().iter():
            attr = OUTPUT_ATTRIBUTES.get(el.tag)
            if attr and el.get(attr):
                el.set(attr, target(el.get(attr, ""), f.parent))
                changed = True
        if not changed:
            adds.append(f)
            continue
        for el in tree.getroot().iter():
            attr = _INPUT_ATTRIBUTES.get(el.tag)
            if attr and el.get(attr) and not Path(el.get(attr, "")).is_absolute():
                el.set(attr, str((f.parent / el.get(attr, "")).resolve()))
        copy = workdir / "model" / f"{len(adds)}_{f.name.removesuffix('.gz')}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        tree.write(copy, encoding="utf-8", xml_declaration=True)
        adds.append(copy)
    if targets:
        out_dir.mkdir(parents=True, exist_ok=True)
    events = write_events(s, workdir)
    if events is not None:
        adds.append(events)
    return args, tuple(adds)


#: the per-minute edgeData output of a run with events (in its work folder)
EVENTS_EDGEDATA = "mobility_events_edges.xml"


def write_events(s: Scenario, workdir: Path) -> Path | None:
    """The incidents as SUMO rerouters in ``workdir / "mobility_events.add.xml"``, plus a per-minute
    edgeData output (:data:`EVENTS_EDGEDATA`) for recovery times (None: no events).

    A closed lane: ``closingLaneReroute`` (the lane's permissions are removed from ``begin_s`` to
    ``begin_s + duration_s``; vehicles already on it drive off, no vehicle enters it). A closed edge:
    ``closingReroute``; vehicles on the edge and the edges up to two junctions upstream are rerouted
    around it. SUMO applies the closing at the interval's bounds itself: no Python work per step."""
    if not s.incidents and not s.surges:
        return None
    import sumolib

    net = sumolib.net.readNet(str(s.net_file))
    root = ET.Element("additional")
    # per-edge waiting time per minute, for the recovery time after each event (mobility.events)
    ET.SubElement(root, "edgeData", id="mobility_events", file=str(workdir / EVENTS_EDGEDATA), period="60",
                  begin=repr(s.begin_s), excludeEmpty="true")
    for i, inc in enumerate(s.incidents):
        edge_id = inc.edge or inc.lane.rsplit("_", 1)[0]
        if inc.lane:
            edge_id = net.getLane(inc.lane).getEdge().getID()
        triggers = {edge_id}
        frontier = {edge_id}
        for _ in range(2):
            frontier = {e.getID() for f in frontier for e in net.getEdge(f).getIncoming()} - triggers
            triggers |= frontier
        r = ET.SubElement(root, "rerouter", id=f"mobility_incident_{i}", edges=" ".join(sorted(triggers)))
        iv = ET.SubElement(r, "interval", begin=repr(inc.begin_s), end=repr(inc.end_s))
        if inc.lane:
            ET.SubElement(iv, "closingLaneReroute", id=inc.lane, disallow="all")
        else:
            ET.SubElement(iv, "closingReroute", id=inc.edge, disallow="all")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "mobility_events.add.xml"
    ET.indent(root)
    path.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
    return path


# --------------------------------------------------------------------------------------------
# demand generation


def write_routes(s: Scenario, out: Path) -> Path:
    """Write the SUMO route file for a TOML scenario: a vType distribution and one flow per OD pair
    and period, with Poisson arrivals (``period="exp(rate)"``)."""
    if s.counts is not None:  # never a run without its demand
        raise ScenarioError(f"{s.source}: field 'counts': the demand is not fitted yet; prepare the scenario "
                            "with mobility.inputs.counts.prepare_demand before writing its routes")
    root = ET.Element("routes")
    dist = ET.SubElement(root, "vTypeDistribution", id="mix")
    for v in s.vehicle_types:
        attrs = {"id": v.id, "vClass": v.vclass, "emissionClass": v.emission_class,
                 "probability": repr(v.share)}
        attrs.update(dict(v.params))
        ET.SubElement(dist, "vType", attrs)
    flows = []
    for i, fl in enumerate(s.flows):
        surges = [su for su in s.surges if su.applies(fl)]
        for p, vph in zip(s.periods, fl.vph):
            # a surge splits the period at its bounds (ids unchanged for periods no surge touches)
            cuts = sorted({p.begin_s, p.end_s, *(t for su in surges for t in (su.begin_s, su.end_s)
                                                 if p.begin_s < t < p.end_s)})
            for k, (b, e) in enumerate(zip(cuts, cuts[1:])):
                rate = vph
                for su in surges:
                    if su.begin_s <= b and e <= su.end_s:
                        rate *= su.factor
                if rate <= 0:
                    continue
                fid = f"f{i}_{p.name}" if len(cuts) == 2 else f"f{i}_{p.name}_{k}"
                attrs = {"id": fid, "type": "mix", "begin": repr(b), "end": repr(e),
                         "from": fl.origin, "to": fl.destination, "period": f"exp({rate / 3600.0!r})",
                         "departLane": "best", "departSpeed": "max", "departPos": "base"}
                if fl.via:
                    attrs["via"] = " ".join(fl.via)
                flows.append((b, i, attrs))
    for _, _, attrs in sorted(flows, key=lambda x: (x[0], x[1])):
        ET.SubElement(root, "flow", attrs)
    ET.indent(root)
    out.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
    return out


#: The report options every run sets to true, with their synonyms: a user who gives one (e.g.
#: ``--no-warnings false``, to see where vehicles teleport) keeps theirs.
_QUIET_OPTIONS: dict[str, tuple[str, ...]] = {"no-step-log": (), "no-warnings": ("W", "suppress-warnings"),
                                              "duration-log.disable": ()}


def _option_names(args: Sequence[str]) -> set[str]:
    """The SUMO option names (without dashes) given in a command line's arguments."""
    return {a.lstrip("-").split("=")[0] for a in args if a.startswith("-")}


def sumo_command(scenario: Scenario, seed: int, workdir: Path, *, gui: bool = False,
                 extra_args: Sequence[str] = ()) -> list[str]:
    """The SUMO command line for a run (routes for TOML scenarios are written into ``workdir``).

    A ``.sumocfg`` keeps every option of its own (step length, teleporting, routing, ...): only the time
    window, the seed and the quiet report options are given, and the outputs its files configure
    go into ``workdir`` (:func:`~mobility.scenario.redirect_outputs`). With no end time SUMO gets the
    safety cap as ``--end``; the step loop stops earlier, when the network is empty."""
    from .tools import sumo_binary

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
    cmd += ["--begin", repr(scenario.begin_s), "--end", repr(scenario.stop_s), "--seed", str(seed)]
    given = _option_names([*scenario.sumo_args, *extra_args])
    for name, aliases in _QUIET_OPTIONS.items():  # SUMO refuses an option given twice: the user's own one wins
        if not given & {name, *aliases}:
            cmd += [f"--{name}", "true"]
    if gui:
        cmd += ["--start", "true", "--quit-on-end", "true"]
    cmd += list(scenario.sumo_args) + list(extra_args)
    return cmd
