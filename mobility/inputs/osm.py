"""Import an OpenStreetMap extract as a signalised SUMO network with a runnable scenario skeleton.

:func:`import_osm` runs SUMO's ``netconvert`` (the binary of the installed ``eclipse-sumo`` wheel)
with the options in :data:`NETCONVERT_OPTIONS`, then writes, into ``networks/NAME/``:

* ``NAME.net.xml``: the network;
* ``NAME.toml``: a scenario (1 h measured after a 15 min warm-up) whose demand is a plausible
  default: random trips from SUMO's ``randomTrips.py`` (fixed seed) at ``insertion_density``
  vehicles/hour per lane-km of road open to cars, mostly between the edges of the extract
  (``--fringe-factor``), at least 300 m long, drivable by car (:func:`_default_demand`: drawn
  denser, trips whose destination cars cannot reach from their origin dropped, then thinned back
  to the density). Trips with the same origin and destination edge are grouped into one Poisson flow
  (``[[flows]]`` in vehicles/hour), so the scenario is an ordinary TOML scenario: seeds, demand
  scaling and time-of-day profiles (:mod:`mobility.inputs.profiles`) work on it;
* ``NAME.rou.xml`` and ``NAME.sumocfg``: the same trips (SUMO routes them at insertion, as it does the
  scenario's flows), for plain SUMO/sumo-gui;
* ``import.json``: what the import found (:class:`ImportReport`).

Everything is written into a temporary directory next to the target and renamed at the end, so a
failed import (e.g. a file with no roads) leaves nothing behind. Bad input raises
:class:`~mobility.errors.NetworkError` with one line.

This module also holds the helpers that run SUMO's Python tools (``randomTrips.py``,
``routeSampler.py``) with the wheel's SUMO home; :mod:`mobility.inputs.counts` uses them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MobilityError, NetworkError
from ..fields import is_number_in
from ..files import atomic_dir
from ..tools import run as run_sumo
from ..tools import binary, error_line as _error_line, run_binary, run_tool, sumo_home  # noqa: F401

#: netconvert options for OSM imports, with the reason for each (docs/networks.md explains them).
#: ``--tls.discard-simple`` is deliberately absent: on the Bad Hersfeld extract it dropped 5 real
#: intersections whose signals OSM tags on the approach nodes (15 controllers instead of 27).
NETCONVERT_OPTIONS: tuple[tuple[str, str | None, str], ...] = (
    ("--keep-edges.by-vclass", "passenger", "keep only roads open to cars (drops footways, tracks, rail)"),
    ("--remove-edges.isolated", None, "drop road pieces not connected to the main network"),
    ("--geometry.remove", None, "merge edges split only by geometry nodes (fewer, longer edges)"),
    ("--junctions.join", None, "join the nodes of one intersection (dual carriageways, slip lanes) into one"),
    ("--tls.guess-signals", None, "signals OSM tags on the approaches become the intersection's signal"),
    ("--tls.join", None, "one controller for signalised nodes closer than 20 m (one intersection)"),
    ("--tls.default-type", "static", "fixed-time programs (the 'static' baseline; controllers replace them)"),
    ("--ramps.guess", None, "add acceleration/deceleration lanes at motorway ramps"),
    ("--roundabouts.guess", None, "give roundabouts right of way inside the ring"),
    ("--edges.join", None, "merge parallel edges that connect the same nodes"),
    ("--no-turnarounds.except-deadend", None, "no U-turns except at dead ends (avoids odd routes)"),
    ("--output.street-names", None, "keep street names (edge attribute 'name')"),
    ("--output.original-names", None, "keep OSM ids (parameter 'origId') to match counts to OSM ways"),
)

#: default demand density: vehicles/hour per lane-km of road open to cars
DEFAULT_INSERTION_DENSITY = 6.0
#: randomTrips weights edges at the border of the extract this many times more as origin/destination
DEFAULT_FRINGE_FACTOR = 5.0
#: the default demand is drawn this much denser, then thinned back to the requested density after
#: the trips cars cannot drive are dropped (see :func:`_default_demand`)
_OVERSAMPLE = 1.25
#: edge types where trips may pass but not start or end (unless at the border): fast roads and links
_VIA_EDGE_TYPES = ("highway.motorway", "highway.motorway_link", "highway.trunk_link",
                   "highway.primary_link", "highway.secondary_link", "highway.tertiary_link")


# --------------------------------------------------------------------------------------------
# import


@dataclass
class ImportReport:
    """What an OSM import produced.

    ``tls``: traffic-light controllers (the junctions ``mobility`` reports, one row each);
    ``tls_nodes``: network nodes they control (a joined intersection has several);
    ``crossing_only_tls``: controllers with no conflicting vehicle movements (every controlled
    link is green together in some phase: a signal that only serves a pedestrian crossing);
    ``road_km``: centreline length of roads open to cars (a two-way road counted once);
    ``lane_km``: lane length open to cars; ``warnings``: netconvert warnings by kind (totals as
    netconvert counts them); ``demand_vph``: vehicles/hour of the default demand."""

    osm_file: str
    net_file: str
    scenario_file: str
    tls: int
    tls_nodes: int
    crossing_only_tls: int
    edges: int
    junctions: int
    road_km: float
    lane_km: float
    warnings_total: int
    warnings: dict[str, int] = field(default_factory=dict)
    demand_vph: float = 0.0
    demand_flows: int = 0
    netconvert_args: list[str] = field(default_factory=list)
    random_trips_args: list[str] = field(default_factory=list)

    def format(self) -> str:
        """A short human-readable summary."""
        top = sorted(self.warnings.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        lines = [
            f"imported {self.osm_file}",
            f"  network:   {self.net_file}",
            f"  scenario:  {self.scenario_file}",
            f"  signalised junctions (traffic-light controllers): {self.tls} over {self.tls_nodes} nodes"
            f" ({self.crossing_only_tls} serve only a pedestrian crossing)",
            f"  roads open to cars: {self.road_km:.1f} km centreline, {self.lane_km:.1f} lane-km, "
            f"{self.edges} edges, {self.junctions} junctions",
            f"  default demand: {self.demand_vph:.0f} veh/h in {self.demand_flows} origin-destination flows",
            f"  netconvert warnings: {self.warnings_total}" + (", most frequent:" if top else ""),
        ]
        lines += [f"    {n:>5} × {kind}" for kind, n in top]
        return "\n".join(lines)


def netconvert_command(osm_files: Sequence[Path], out: Path, extra: Sequence[str] = ()) -> list[str]:
    """The netconvert command line for an import (options: :data:`NETCONVERT_OPTIONS`)."""
    typemap = sumo_home() / "data" / "typemap" / "osmNetconvert.typ.xml"
    cmd = [binary("netconvert"), "--osm-files", ",".join(str(p) for p in osm_files)]
    if typemap.exists():
        cmd += ["--type-files", str(typemap)]
    for opt, value, _ in NETCONVERT_OPTIONS:
        cmd += [opt] if value is None else [opt, value]
    return [*cmd, *extra, "-o", str(out)]


def summarise_warnings(stderr: str) -> dict[str, int]:
    """netconvert warnings by kind: quoted ids and numbers become ``%``.

    netconvert prints the first few messages of a kind and then ``N total messages of type: …``;
    that total is used where present."""
    totals: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("Warning:"):
            continue
        text = line[len("Warning:"):].strip()
        m = re.match(r"(\d+) total messages of type: (.*)$", text)
        if m:
            totals[_normalise(m.group(2))] = int(m.group(1))
        else:
            seen[_normalise(text)] += 1
    out = dict(seen)
    out.update(totals)
    return dict(sorted(out.items()))


def _normalise(text: str) -> str:
    text = re.sub(r"'[^']*'", "'%'", text)
    text = re.sub(r"(?<![A-Za-z])-?\d[\d.,#_-]*", "%", text)
    return text.strip()


def network_stats(net_file: Path) -> dict[str, float | int]:
    """Counts and lengths of a network (see :class:`ImportReport` for the definitions)."""
    import sumolib

    net = sumolib.net.readNet(str(net_file), withPrograms=True)
    edges = [e for e in net.getEdges() if e.allows("passenger")]
    lane_km = sum(e.getLength() * e.getLaneNumber() for e in edges) / 1000.0
    ends = {(e.getFromNode().getID(), e.getToNode().getID()) for e in edges}
    road_m = 0.0
    for e in edges:
        a, b = e.getFromNode().getID(), e.getToNode().getID()
        if (b, a) in ends and (b, a) < (a, b):
            continue  # the other direction of a two-way road: count its centreline once
        road_m += e.getLength()
    tls_nodes = sum(1 for n in net.getNodes() if n.getType().startswith("traffic_light"))
    crossing_only = 0
    for tls in net.getTrafficLights():
        n_links = 1 + max((c[2] for c in tls.getConnections()), default=-1)
        programs = tls.getPrograms()
        if not programs or n_links == 0:
            continue
        phases = next(iter(programs.values())).getPhases()
        if any(all(ch in "Gg" for ch in ph.state[:n_links]) for ph in phases):
            crossing_only += 1
    return {"tls": len(net.getTrafficLights()), "tls_nodes": tls_nodes, "crossing_only_tls": crossing_only,
            "edges": len(net.getEdges()), "junctions": len(net.getNodes()),
            "road_km": road_m / 1000.0, "lane_km": lane_km}


def import_osm(osm_file: str | Path, out_dir: str | Path, *, name: str | None = None,
               insertion_density: float = DEFAULT_INSERTION_DENSITY, seed: int = 1,
               duration_s: float = 3600.0, warmup_s: float = 900.0,
               netconvert_args: Sequence[str] = (), force: bool = False, progress: bool = False) -> ImportReport:
    """Import ``osm_file`` (``.osm``, ``.osm.xml`` or gzipped) into ``out_dir`` (see the module doc).

    ``name`` defaults to the directory name. ``insertion_density``: default demand in
    vehicles/hour per lane-km open to cars (0: no demand). ``duration_s``/``warmup_s``: the
    scenario's measured window and warm-up. ``netconvert_args``: extra netconvert options, added
    after (and so overriding) the defaults. ``progress``: one line on stderr per step, with its time.
    Raises :class:`NetworkError` for a file netconvert
    cannot read or one with no roads open to cars; nothing is written then."""
    osm = Path(osm_file).resolve()
    out = Path(out_dir).resolve()
    name = name or out.name
    if not osm.is_file():
        raise NetworkError(f"{osm_file}: no such file; expected an OpenStreetMap extract (.osm, .osm.xml[.gz])")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise MobilityError(f"--out {out_dir}: name {name!r}: use letters, digits, '_', '-' or '.' only")
    if not is_number_in(insertion_density, 0):
        raise MobilityError(f"insertion density: expected vehicles/hour per lane-km >= 0, got {insertion_density!r}")
    if not (duration_s > 0 and warmup_s >= 0):
        raise MobilityError(f"window: expected duration > 0 and warm-up >= 0 s, got {duration_s!r}, {warmup_s!r}")
    say = _progress if progress else (lambda *_: None)
    with atomic_dir(out, force=force) as tmp:
        net_file = tmp / f"{name}.net.xml"
        cmd = netconvert_command([osm], net_file, netconvert_args)
        t0 = time.perf_counter()  # progress only after netconvert: bad input gets its one error line alone
        proc = run_sumo(cmd, cwd=tmp)
        stderr = proc.stderr
        if proc.returncode != 0 or not net_file.exists():
            err = _error_line(stderr)
            if "No edges loaded" in err or "No nodes loaded" in err:
                raise NetworkError(f"{osm_file}: no roads open to cars found (netconvert: {err})")
            raise NetworkError(f"{osm_file}: netconvert failed: {err}")
        stats = network_stats(net_file)
        if stats["edges"] == 0:
            raise NetworkError(f"{osm_file}: no roads open to cars found (the network is empty)")
        say(f"netconvert: {stats['edges']} edges, {stats['tls']} signals, {stats['lane_km']:.0f} lane-km "
            f"({time.perf_counter() - t0:.1f} s)")
        demand = _default_demand(net_file, tmp, name, insertion_density, seed, warmup_s + duration_s, say)
        warnings = summarise_warnings(stderr)
        report = ImportReport(
            osm_file=str(osm_file), net_file=str(out / net_file.name), scenario_file=str(out / f"{name}.toml"),
            tls=int(stats["tls"]), tls_nodes=int(stats["tls_nodes"]),
            crossing_only_tls=int(stats["crossing_only_tls"]), edges=int(stats["edges"]),
            junctions=int(stats["junctions"]), road_km=round(float(stats["road_km"]), 3),
            lane_km=round(float(stats["lane_km"]), 3), warnings_total=sum(warnings.values()), warnings=warnings,
            demand_vph=round(demand.vph, 3), demand_flows=len(demand.flows),
            netconvert_args=[_portable(a, osm, tmp) for a in cmd[1:]],
            random_trips_args=[_portable(a, osm, tmp) for a in demand.args],
        )
        _write_scenario(tmp / f"{name}.toml", name, osm, report, demand, seed, warmup_s, duration_s,
                        insertion_density)
        _write_sumocfg(tmp / f"{name}.sumocfg", name, demand.routes_file is not None, warmup_s + duration_s, seed)
        # reproducible bytes: SUMO's header comments hold the date and the temporary paths
        _replace_header(net_file, f"netconvert from {osm.name}; the options are in import.json")
        saved = asdict(report) | {"net_file": net_file.name, "scenario_file": f"{name}.toml"}
        (tmp / "import.json").write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    return report


def _replace_header(path: Path, what: str) -> None:
    """Replace the ``<!-- generated on … -->`` comments of a SUMO output with one fixed comment."""
    data = path.read_bytes()
    comment = f"<!-- Written by `mobility import-osm` with Eclipse SUMO: {what}. -->".encode()
    first = True
    while (start := data.find(b"<!-- generated on")) >= 0 and (end := data.find(b"-->", start)) >= 0:
        rest = data[end + 3:]
        data = data[:start] + (comment + rest if first else rest.lstrip(b"\n"))
        first = False
    path.write_bytes(data)


def _portable(arg: str, osm: Path, tmp: Path) -> str:
    """Command-line argument with machine-specific paths shortened (for the report)."""
    home = str(sumo_home())
    return arg.replace(str(tmp) + os.sep, "").replace(str(osm), osm.name).replace(home, "$SUMO_HOME")


@dataclass
class _Demand:
    flows: list[tuple[str, str, float]]  # (from edge, to edge, vehicles/hour)
    vph: float
    args: list[str]
    routes_file: Path | None


def _progress(text: str) -> None:
    print(f"import-osm: {text}", file=sys.stderr, flush=True)


@functools.lru_cache(maxsize=4)
def car_graph(net_file: Path, _mtime: int) -> Any:
    """Directed graph of the edges passenger cars may use (nodes: normal edges with ``cost`` = free-flow
    time in s, ``from_node``/``to_node``; arcs: connections between lanes open to cars). Internal,
    walking-area and crossing edges, and edges or lanes closed to cars (sidewalks, tram tracks, bike
    paths), are left out: a real network searched as cars see it. Cached per file and mtime."""
    import networkx as nx
    import sumolib

    net = sumolib.net.readNet(str(net_file))
    g = nx.DiGraph()
    for e in net.getEdges(withInternal=False):
        if e.getFunction() == "" and e.allows("passenger"):
            g.add_node(e.getID(), cost=e.getLength() / max(e.getSpeed(), 0.1),
                       from_node=e.getFromNode().getID(), to_node=e.getToNode().getID())
    for e in net.getEdges(withInternal=False):
        if e.getID() not in g:
            continue
        for to, conns in e.getOutgoing().items():
            if to.getID() in g and any(c.getFromLane().allows("passenger") and c.getToLane().allows("passenger")
                                       for c in conns):
                g.add_edge(e.getID(), to.getID())
    return g


def drivable(net_file: Path, pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (origin edge, destination edge): can a car get from one to the other? Reachability
    on :func:`car_graph` (its strongly connected components), the check ``duarouter`` makes by
    routing, without routing: on Bad Hersfeld it keeps exactly the trips duarouter routes."""
    import networkx as nx

    g = car_graph(net_file, net_file.stat().st_mtime_ns)
    cond = nx.condensation(g)
    comp = cond.graph["mapping"]
    below: dict[int, set[int]] = {}
    out = []
    for a, b in pairs:
        ca, cb = comp.get(a), comp.get(b)
        if ca is None or cb is None:
            out.append(False)
        elif ca == cb:
            out.append(True)
        else:
            if ca not in below:
                below[ca] = nx.descendants(cond, ca)
            out.append(cb in below[ca])
    return out


def _default_demand(net_file: Path, tmp: Path, name: str, density: float, seed: int,
                    window_s: float, say: Any = lambda *_: None) -> _Demand:
    """Random trips over the whole window that cars can drive, grouped by OD pair.

    ``randomTrips.py`` draws trips at :data:`_OVERSAMPLE` × the density without validating them;
    trips whose destination cars cannot reach from their origin are dropped (:func:`drivable`), and
    a seeded uniform sample of the rest, as many as randomTrips draws at the density itself, is kept.
    ``randomTrips --validate`` reaches the same density by routing every trip with ``duarouter``
    up to four times (routes, validation, and again after resampling): 13 min for a region of
    74,000 flows. Routes are left to SUMO, which routes each vehicle at insertion anyway."""
    if density == 0:
        return _Demand([], 0.0, [], None)
    import numpy as np

    trips = tmp / f"{name}.trips.xml"
    routes = tmp / f"{name}.rou.xml"
    args = ["-n", str(net_file), "-o", str(trips), "--seed", str(seed),
            "-b", "0", "-e", repr(float(window_s)), "--insertion-density", repr(float(density) * _OVERSAMPLE),
            "--fringe-factor", repr(DEFAULT_FRINGE_FACTOR), "--min-distance", "300",
            "--min-distance.fringe", "10", "--allow-fringe.min-length", "1000", "--lanes",
            "--vclass", "passenger", "--via-edge-types", ",".join(_VIA_EDGE_TYPES),
            "--no-validate", "--prefix", "t",
            "--trip-attributes", 'departLane="best" departSpeed="max"']
    say(f"random trips at {density:g} veh/h per lane-km (drawn x{_OVERSAMPLE:g}) ...")
    t0 = time.perf_counter()
    run_tool("randomTrips.py", args, what=f"{net_file.name}: default demand")
    head: list[str] = []
    drawn: list[tuple[str, str, str]] = []  # (from, to, XML)
    from .demand import _top_level  # one streaming reader of SUMO's XML files (gzip too)

    for el in _top_level(trips):
        if el.tag == "trip":
            drawn.append((el.get("from", ""), el.get("to", ""), ET.tostring(el, encoding="unicode").strip()))
        else:
            head.append(ET.tostring(el, encoding="unicode").strip())
    trips.unlink()
    say(f"  {len(drawn)} trips drawn ({time.perf_counter() - t0:.1f} s); checking which cars can drive ...")
    t0 = time.perf_counter()
    ok = np.flatnonzero(drivable(net_file, [(a, b) for a, b, _ in drawn]))
    target = round(len(drawn) / _OVERSAMPLE)
    keep = np.sort(np.random.default_rng(seed).choice(ok, size=min(target, len(ok)), replace=False))
    say(f"  {len(ok)} of {len(drawn)} drivable, {len(keep)} kept ({time.perf_counter() - t0:.1f} s)")
    body = [f"<!-- Written by `mobility import-osm` with Eclipse SUMO: randomTrips.py (seed {seed}), "
            "drivable trips only; the options are in import.json. -->", "<routes>", *head,
            *(drawn[i][2] for i in keep), "</routes>", ""]
    routes.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(body), encoding="utf-8")
    pairs: Counter[tuple[str, str]] = Counter((drawn[i][0], drawn[i][1]) for i in keep)
    flows = [(a, b, c * 3600.0 / window_s) for (a, b), c in sorted(pairs.items())]
    return _Demand(flows, len(keep) * 3600.0 / window_s, args, routes)


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _write_scenario(path: Path, name: str, osm: Path, report: ImportReport, demand: _Demand, seed: int,
                    warmup_s: float, duration_s: float, density: float) -> None:
    lines = [
        f"# Scenario skeleton written by `mobility import-osm` from {osm.name}.",
        f"# Signalised junctions (traffic-light controllers): {report.tls}; road open to cars: "
        f"{report.road_km:.1f} km.",
        "#",
        "# Demand: a plausible default, NOT observed traffic. Random trips (SUMO randomTrips.py, seed "
        f"{seed})",
        f"# at {density:g} veh/h per lane-km open to cars ({report.lane_km:.1f} lane-km), mostly from and to the",
        "# border of the extract, at least 300 m long, drivable by car; trips with the same origin",
        "# and destination edge are one Poisson flow. Replace the flows with your own (see",
        "# scenarios/corridor.toml), scale them (Scenario.scaled), or fit them to counts with",
        "# `mobility demand-from-counts` (docs/networks.md).",
        f"name = {_toml_str(name)}",
        f"description = {_toml_str(f'Imported from {osm.name}: {report.tls} signals; random default demand')}",
        f"network = {_toml_str(Path(report.net_file).name)}",
        "begin_s = 0",
        f"end_s = {warmup_s + duration_s:g}",
        f"warmup_s = {warmup_s:g}          # fills the network; excluded from metrics",
        "step_length_s = 1.0",
        f"seed = {seed}",
        "",
        f"# {len(demand.flows)} origin-destination flows (one per line), {demand.vph:.0f} veh/h in total",
        "flows = [",
    ]
    lines += [f"  {{ from = {_toml_str(a)}, to = {_toml_str(b)}, vph = {v!r} }}," for a, b, v in demand.flows]
    lines += ["]", "", "[zones]", "upstream_m = 150.0", "downstream_m = 100.0"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_sumocfg(path: Path, name: str, has_routes: bool, end_s: float, seed: int) -> None:
    root = ET.Element("configuration")
    inp = ET.SubElement(root, "input")
    ET.SubElement(inp, "net-file", value=f"{name}.net.xml")
    if has_routes:
        ET.SubElement(inp, "route-files", value=f"{name}.rou.xml")
    time = ET.SubElement(root, "time")
    ET.SubElement(time, "begin", value="0")
    ET.SubElement(time, "end", value=f"{end_s:g}")
    rnd = ET.SubElement(root, "random_number")
    ET.SubElement(rnd, "seed", value=str(seed))
    ET.indent(root)
    path.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
