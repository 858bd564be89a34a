"""Demand from traffic counts: routes that reproduce counted volumes, and how well they do (GEH).

Input: a CSV with one row per count, i.e. a *count location* (an edge, or a turning movement from
one edge to the next) and an interval ``[begin_s, end_s)`` in simulation seconds::

    edge,begin_s,end_s,count                       # vehicles that entered the edge in the interval
    from_edge,to_edge,begin_s,end_s,count          # vehicles that turned from from_edge into to_edge

Both kinds may be mixed in one file (leave the unused columns empty); other columns (a name, a
comment) are ignored. SUMO's own count files are read as they are (the format is told by the content):

* **edgeData** (``<meandata>`` or ``<data>`` with ``<interval begin end><edge id entered=…/>``, as
  SUMO's edgeData output writes and routeSampler reads): the count attribute is ``entered`` unless
  another is named (routeSampler's ``--edgedata-attribute``; ``--edgedata-attribute`` of
  ``mobility demand-from-counts``, ``attribute`` of a scenario's ``[counts]`` table);
* **edgeRelation** (``<interval><edgeRelation from to count=…/>``): turning movements, attribute
  ``count``.

Times of an XML file are its intervals' ``begin``/``end``; the line of an error is the element's line. :func:`read_counts` checks every row against the network and raises
:class:`~mobility.errors.ScenarioError` naming the file, line and edge for: a missing column, an
edge that is not in the network, a turning movement whose edges are not connected, a count that
is negative or not a number, an empty interval, and intervals of one location that overlap.

How the demand is built (:func:`fit_demand`):

1. **Candidate routes**: SUMO's ``randomTrips.py`` (fixed seed, mostly from and to the border of the
   network, validated and routed by ``duarouter``), plus, for every count location, routes from the
   3 nearest network entries to the 3 nearest exits through that location (``duarouter``), so every
   location is covered.
2. **Route sampling**: SUMO's ``routeSampler.py`` picks routes from the candidates so that the
   counts are matched in every interval (edge counts as ``edgeData`` ``entered``, turning movements
   as ``edgeRelation`` ``count``; ``--optimize full``: a linear program minimising the deviation).
   Its intervals are the common grid of all count intervals.
3. **Flows**: each sampled route becomes one Poisson flow whose rate in each interval is the number
   of vehicles routeSampler put on it there (vehicles/hour); the scenario's periods are the
   intervals. A TOML scenario may reference counts directly with a ``[counts]`` table (see
   docs/networks.md); :func:`prepare_demand` fits it when a run is prepared.

How the fit is measured (:func:`simulate_counts`, :func:`fit_table`): the resulting scenario is
**simulated** in SUMO (the same command a ``mobility run`` uses, plus ``--vehroute-output`` with exit
times), so the simulated count includes everything the simulation does to the demand (congestion,
vehicles that could not enter, travel time from the origin to the count location). A vehicle counts
at an edge in the interval holding the time it entered the edge (its departure time if it started
there), and at a turning movement in the interval holding the time it left ``from_edge`` for
``to_edge``: what a detector at the start of the edge, or at the stop line, would count.

**GEH** is computed on hourly flows (its usual form): with the observed count ``C`` and the
simulated count ``M`` of an interval of ``h`` hours converted to vehicles/hour
(``c = C/h``, ``m = M/h``), ``GEH = sqrt(2 (m - c)^2 / (m + c))`` (0 when both are 0). A *location*
in the fit table is one CSV row (a place and an interval); the usual acceptance is GEH < 5 at
85 % of them or more.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MobilityError, ScenarioError
from ..network import SignalNetwork
from ..scenario import DEFAULT_CANDIDATES, DEFAULT_EDGE_ATTRIBUTE, Flow, Period, Scenario, VehicleType  # noqa: F401

#: GEH threshold and the share of locations that must meet it (the usual acceptance)
GEH_OK = 5.0
ACCEPT_SHARE = 0.85
#: most intervals the common grid of the count intervals may have (see :func:`interval_grid`)
MAX_INTERVALS = 1000
#: how many nearest entries and exits each count location gets targeted candidate routes from/to
_NEAREST = 3

_REQUIRED = ("begin_s", "end_s", "count")


@dataclass(frozen=True)
class Count:
    """One row of a counts CSV: vehicles counted at a location during ``[begin_s, end_s)``.

    ``to_edge`` is empty for an edge count; for a turning movement ``from_edge`` is the approach
    edge and ``to_edge`` the exit edge. ``line`` is the row's line number in the file."""

    line: int
    from_edge: str
    to_edge: str
    begin_s: float
    end_s: float
    count: float

    @property
    def is_turn(self) -> bool:
        return bool(self.to_edge)

    @property
    def location(self) -> str:
        """``edge`` or ``from_edge>to_edge``."""
        return f"{self.from_edge}>{self.to_edge}" if self.is_turn else self.from_edge

    @property
    def hours(self) -> float:
        return (self.end_s - self.begin_s) / 3600.0


#: the count attribute of edgeRelation files (edgeData files: DEFAULT_EDGE_ATTRIBUTE, routeSampler's default)
TURN_ATTRIBUTE = "count"


def read_counts(path: str | Path, net_file: str | Path, *,
                attribute: str = DEFAULT_EDGE_ATTRIBUTE) -> tuple[Count, ...]:
    """Read and validate counts against a network: a CSV, or SUMO edgeData / edgeRelation XML whose
    edge counts are in ``attribute`` (see the module doc for the formats)."""
    path = Path(path)
    net = SignalNetwork.load(net_file)
    where = f"{path}"
    try:
        import sumolib

        with sumolib.openz(str(path), mode="rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise ScenarioError(f"{where}: cannot read counts: {e.strerror or e}") from None
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        rows = _xml_rows(raw, where, attribute)
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ScenarioError(f"{where}: not a UTF-8 text file; expected a CSV of counts") from None
        rows = _csv_rows(text, where)
    return _validate(rows, net, Path(net_file).name, where)


def _xml_rows(raw: bytes, where: str, attribute: str) -> list[tuple[int, dict[str, str]]]:
    """SUMO edgeData / edgeRelation XML as CSV-like rows (line, {edge|from_edge,to_edge, begin_s,
    end_s, count}). Parsed with expat (the standard library's XML parser) for the line numbers."""
    from xml.parsers import expat

    from sumolib.miscutils import parseTime

    rows: list[tuple[int, dict[str, str]]] = []
    interval: dict[str, str] | None = None
    problems: list[str] = []
    missing = [""]  # an <edge>/<edgeRelation> without the count attribute (until its end tag)

    def time(v: str | None, line: int, what: str) -> str:
        try:
            return repr(float(parseTime(v))) if v is not None else ""
        except ValueError:
            problems.append(f"{where}: line {line}: interval attribute '{what}': expected seconds, got {v!r}")
            return ""

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal interval
        line = parser.CurrentLineNumber
        if problems:
            return
        if tag == "interval":
            interval = {"begin_s": time(attrs.get("begin"), line, "begin"), "end_s": time(attrs.get("end"), line, "end")}
            if not interval["begin_s"] or not interval["end_s"]:
                problems.append(f"{where}: line {line}: <interval> needs begin and end times")
            return
        if tag not in ("edge", "edgeRelation"):
            if tag in ("lane", "tazRelation"):
                problems.append(f"{where}: line {line}: <{tag}> data is not supported; expected <edge> "
                                "(edgeData) or <edgeRelation> counts")
            return
        if interval is None:
            problems.append(f"{where}: line {line}: <{tag}> outside an <interval>; expected "
                            "<interval begin=… end=…> around the counts")
            return
        attr = attribute if tag == "edge" else TURN_ATTRIBUTE
        if attr not in attrs:
            has = ", ".join(a for a in attrs if a not in ("id", "from", "to")) or "none"
            hint = " (choose one with --edgedata-attribute)" if tag == "edge" else ""
            missing[0] = f"{where}: line {line}: <{tag}> has no attribute '{attr}'{hint}; it has: {has}"
            return
        row = {**interval, "count": attrs[attr]}
        if tag == "edge":
            row["edge"] = attrs.get("id", "")
        else:
            row["from_edge"], row["to_edge"] = attrs.get("from", ""), attrs.get("to", "")
        rows.append((line, row))

    def end(tag: str) -> None:
        nonlocal interval
        if tag == "interval":
            interval = None
        if missing[0] and not problems:  # reported at the element's end: laneData's <edge> holds <lane>s
            problems.append(missing[0])

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as e:
        raise ScenarioError(f"{where}: malformed XML: {e}") from None
    if problems:
        raise ScenarioError(problems[0])
    return rows


def _csv_rows(text: str, where: str) -> list[tuple[int, dict[str, str]]]:
    """A counts CSV as rows (line, {column: cell}); checks the header."""
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise ScenarioError(f"{where}: empty file; expected a header edge|from_edge,to_edge,begin_s,end_s,count")
    cols = {h.strip(): i for i, h in enumerate(header)}
    missing = [c for c in _REQUIRED if c not in cols]
    has_edge = "edge" in cols
    has_turn = "from_edge" in cols or "to_edge" in cols
    if has_turn and not ("from_edge" in cols and "to_edge" in cols):
        missing.append("to_edge" if "from_edge" in cols else "from_edge")
    if not has_edge and not has_turn:
        missing.insert(0, "edge (or from_edge,to_edge)")
    if missing:
        raise ScenarioError(f"{where}: missing column(s) {', '.join(missing)}; expected columns "
                            "edge or from_edge,to_edge, and begin_s,end_s,count")
    rows = []
    for lineno, row in enumerate(reader, start=2):
        if any(cell.strip() for cell in row):
            rows.append((lineno, {name: row[i].strip() for name, i in cols.items() if i < len(row)}))
    return rows


def _validate(rows: list[tuple[int, dict[str, str]]], net: SignalNetwork, net_name: str,
              where: str) -> tuple[Count, ...]:
    """Counts from (line, cells) rows, checked against the network (one-line errors)."""
    out: list[Count] = []
    for lineno, row in rows:

        def cell(name: str) -> str:
            return row.get(name, "")

        def num(name: str) -> float:
            raw = cell(name)
            try:
                v = float(raw)
            except ValueError:
                raise ScenarioError(f"{where}: line {lineno}: column {name}: expected a number, got {raw!r}") from None
            if not math.isfinite(v):
                raise ScenarioError(f"{where}: line {lineno}: column {name}: expected a finite number, got {raw!r}")
            return v

        edge, a, b = cell("edge"), cell("from_edge"), cell("to_edge")
        if edge and (a or b):
            raise ScenarioError(f"{where}: line {lineno}: give either edge or from_edge,to_edge, not both")
        if not edge and not (a and b):
            raise ScenarioError(f"{where}: line {lineno}: expected an edge, or both from_edge and to_edge")
        for e in ([edge] if edge else [a, b]):
            if not net.has_edge(e):
                raise ScenarioError(f"{where}: line {lineno}: edge '{e}' is not in {net_name}")
        if a and not net.graph.has_edge(a, b):
            raise ScenarioError(f"{where}: line {lineno}: turning movement {a} -> {b}: edge '{b}' does not "
                                f"follow edge '{a}' at a junction of {net_name}")
        begin, end, count = num("begin_s"), num("end_s"), num("count")
        if begin < 0:
            raise ScenarioError(f"{where}: line {lineno}: column begin_s: expected a time >= 0 s, got {begin:g}")
        if end <= begin:
            raise ScenarioError(f"{where}: line {lineno}: column end_s: expected a time after begin_s={begin:g}, "
                                f"got {end:g}")
        if count < 0:
            raise ScenarioError(f"{where}: line {lineno}: column count: negative count {count:g} at "
                                f"{edge or f'{a} -> {b}'}; expected vehicles >= 0")
        out.append(Count(lineno, edge or a, b if not edge else "", begin, end, count))
    if not out:
        raise ScenarioError(f"{where}: no count rows; expected one row per location and interval")
    by_loc: dict[str, list[Count]] = defaultdict(list)
    for c in out:
        by_loc[c.location].append(c)
    for loc, at_loc in by_loc.items():
        at_loc.sort(key=lambda c: (c.begin_s, c.end_s, c.line))
        for prev, nxt in zip(at_loc, at_loc[1:]):
            if nxt.begin_s < prev.end_s:
                raise ScenarioError(
                    f"{where}: line {nxt.line}: interval [{nxt.begin_s:g}, {nxt.end_s:g}) at "
                    f"{loc.replace('>', ' -> ')} "
                    f"overlaps line {prev.line} [{prev.begin_s:g}, {prev.end_s:g}); expected disjoint intervals")
    return tuple(out)


def in_window(counts: Iterable[Count], begin_s: float, end_s: float, where: str) -> tuple[Count, ...]:
    """The counts whose interval lies in ``[begin_s, end_s]``; a count crossing a bound is an error."""
    out = []
    for c in counts:
        if c.end_s <= begin_s or c.begin_s >= end_s:
            continue
        if c.begin_s < begin_s or c.end_s > end_s:
            raise ScenarioError(f"{where}: line {c.line}: interval [{c.begin_s:g}, {c.end_s:g}) crosses the "
                                f"time window [{begin_s:g}, {end_s:g}); move the window to interval bounds")
        out.append(c)
    if not out:
        raise ScenarioError(f"{where}: no count lies in the time window [{begin_s:g}, {end_s:g})")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# demand


@dataclass(frozen=True)
class CountDemand:
    """Flows fitted to counts: ``periods`` (the interval grid) and one flow per sampled route."""

    periods: tuple[Period, ...]
    flows: tuple[Flow, ...]
    candidate_routes: int  # distinct candidate routes offered to routeSampler
    sampled_vehicles: int  # vehicles routeSampler placed (the flows' expected total)


def interval_grid(counts: Sequence[Count], where: str = "counts") -> tuple[Period, ...]:
    """The coarsest regular grid on which every count interval starts and ends (ms resolution).

    Raises :class:`ScenarioError` if that grid would have more than :data:`MAX_INTERVALS` steps
    (interval bounds that share no sensible step, e.g. 0-900 and 0-901 s)."""
    begin = min(c.begin_s for c in counts)
    end = max(c.end_s for c in counts)
    step = 0
    for c in counts:
        for t in (c.begin_s, c.end_s):
            step = math.gcd(step, round((t - begin) * 1000))
    step_s = step / 1000.0
    n = round((end - begin) / step_s)
    if n > MAX_INTERVALS:
        raise ScenarioError(f"{where}: count intervals share only a {step_s:g} s grid ({n} intervals from "
                            f"{begin:g} to {end:g} s); align interval bounds, e.g. to whole 5 or 15 minutes")
    return tuple(Period(f"{_clock(begin + k * step_s)}", begin + k * step_s, begin + (k + 1) * step_s)
                 for k in range(n))


def _clock(t: float) -> str:
    """Period name from its start time: ``t0900`` for 9:00 (or seconds when not whole minutes)."""
    if t % 60:
        return f"t{t:g}s"
    m = int(t // 60)
    return f"t{m // 60:02d}{m % 60:02d}"


def fit_demand(counts: Sequence[Count], net_file: str | Path, workdir: str | Path, *, seed: int = 1,
               candidates: int = DEFAULT_CANDIDATES, where: str = "counts",
               begin_s: float | None = None) -> CountDemand:
    """Routes matching ``counts`` (see the module doc); intermediate files go into ``workdir``.

    ``begin_s`` before the first count interval adds a ``warmup`` period from ``begin_s`` to it
    with the first interval's flows, so the network is filled when counting starts.
    Raises :class:`ScenarioError` if no route for cars can pass a count location with a positive
    count (e.g. an edge closed to cars)."""
    net_file = Path(net_file).resolve()
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    # one canonical order: the same counts give the same routes whatever order (or format) they came in
    counts = sorted(counts, key=lambda c: (c.begin_s, c.end_s, c.from_edge, c.to_edge))
    cand_files = _candidates(counts, net_file, wd, seed, candidates)
    routes = _unique_routes(cand_files)
    covered_edges = {e for r in routes for e in r}
    covered_turns = {pair for r in routes for pair in zip(r, r[1:])}
    for c in counts:
        ok = (c.from_edge, c.to_edge) in covered_turns if c.is_turn else c.from_edge in covered_edges
        if not ok and c.count > 0:
            raise ScenarioError(f"{where}: line {c.line}: no route for cars passes {c.location.replace('>', ' -> ')} "
                                f"in {net_file.name}; is it open to passenger cars and reachable?")
    periods = interval_grid(counts, where)
    edge_file, turn_file = wd / "counts.edgedata.xml", wd / "counts.turns.xml"
    _write_count_data(counts, edge_file, turn_file)
    sampled = wd / "sampled.rou.xml"
    args = ["-r", ",".join(str(p) for p in cand_files), "-o", str(sampled), "--seed", str(seed),
            "-b", repr(periods[0].begin_s), "-e", repr(periods[-1].end_s),
            "-i", repr(periods[0].end_s - periods[0].begin_s), "--optimize", "full", "--threads", "1"]
    if any(not c.is_turn for c in counts):
        args += ["-d", str(edge_file)]
    if any(c.is_turn for c in counts):
        args += ["-t", str(turn_file)]
    from ..tools import run_tool

    run_tool("routeSampler.py", args, what=f"{where}: route sampling")
    demand = _flows_from_sampled(sampled, periods, len(routes))
    if begin_s is not None and begin_s < periods[0].begin_s:
        warm = Period("warmup", begin_s, periods[0].begin_s)
        flows = tuple(dataclasses.replace(f, vph=(f.vph[0], *f.vph)) for f in demand.flows)
        demand = dataclasses.replace(demand, periods=(warm, *demand.periods), flows=flows)
    return demand


def _candidates(counts: Sequence[Count], net_file: Path, wd: Path, seed: int, n: int) -> list[Path]:
    """Candidate route files: random trips, plus targeted routes through every count location."""
    from ..tools import binary, run_binary, run_tool

    files = []
    if n > 0:
        rnd = wd / "candidates.random.rou.xml"
        run_tool("randomTrips.py", [
            "-n", str(net_file), "-o", str(wd / "candidates.random.trips.xml"), "-r", str(rnd),
            "--seed", str(seed), "-b", "0", "-e", str(n), "-p", "1", "--fringe-factor", "10",
            "--vclass", "passenger", "--remove-loops", "--validate", "--threads", "1", "--prefix", "r",
        ], what=f"{net_file.name}: candidate routes")
        files.append(rnd)
    trips = _targeted_trips(counts, SignalNetwork.load(net_file))
    if trips:
        root = ET.Element("routes")
        for i, (src, via, dst) in enumerate(trips):
            attrs = {"id": f"x{i}", "depart": "0", "from": src, "to": dst}
            if via:
                attrs["via"] = " ".join(via)
            ET.SubElement(root, "trip", attrs)
        tfile = wd / "candidates.targeted.trips.xml"
        ET.indent(root)
        tfile.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
        out = wd / "candidates.targeted.rou.xml"
        run_binary([binary("duarouter"), "-n", str(net_file), "--route-files", str(tfile), "-o", str(out),
                    "--ignore-errors", "true", "--no-warnings", "true", "--remove-loops", "true",
                    "--seed", str(seed), "--routing-threads", "1", "--no-step-log", "true"],
                   what=f"{net_file.name}: candidate routes")
        files.append(out)
    return files


def _targeted_trips(counts: Sequence[Count], net: SignalNetwork) -> list[tuple[str, tuple[str, ...], str]]:
    """(entry, via, exit) for each count location: its nearest entries and exits by free-flow time.

    Entries are car edges with no car predecessor other than their own reverse (a turnaround), exits
    those with no car successor other than it: the network's border, dead ends included. A location
    cars cannot use gets none (:func:`fit_demand` then names it)."""
    import networkx as nx

    from .osm import car_graph

    g = car_graph(Path(net.path), Path(net.path).stat().st_mtime_ns)

    def turnaround(u: str, v: str) -> bool:
        a, b = g.nodes[u], g.nodes[v]
        return a["to_node"] == b["from_node"] and a["from_node"] == b["to_node"]

    entries = {e for e in g if not any(not turnaround(p, e) for p in g.predecessors(e))}
    exits = {e for e in g if not any(not turnaround(e, s) for s in g.successors(e))}
    rev = g.reverse(copy=False)

    def cost(u: str, v: str, _d: Any) -> float:  # entering v
        return g.nodes[v]["cost"]

    def rcost(u: str, v: str, _d: Any) -> float:  # on the reversed graph: entering u (the later edge)
        return g.nodes[u]["cost"]

    out: list[tuple[str, tuple[str, ...], str]] = []
    seen: set[tuple[str, str]] = set()
    for c in counts:
        first, last = c.from_edge, (c.to_edge or c.from_edge)
        if (first, last) in seen or first not in g or last not in g:
            continue
        seen.add((first, last))
        up = nx.single_source_dijkstra_path_length(rev, first, weight=rcost)
        down = nx.single_source_dijkstra_path_length(g, last, weight=cost)
        srcs = sorted((d, e) for e, d in up.items() if e in entries)[:_NEAREST] or [(0.0, first)]
        dsts = sorted((d, e) for e, d in down.items() if e in exits)[:_NEAREST] or [(0.0, last)]
        for _, s in srcs:
            for _, t in dsts:
                via = tuple(e for e in dict.fromkeys((first, last)) if e not in (s, t))
                out.append((s, via, t))
    return out


def _unique_routes(files: Iterable[Path]) -> list[tuple[str, ...]]:
    routes: dict[tuple[str, ...], None] = {}
    for f in files:
        for _, el in ET.iterparse(f):
            if el.tag == "route" and el.get("edges"):
                routes[tuple(el.get("edges", "").split())] = None
            elif el.tag == "vehicle":
                el.clear()
    return list(routes)


def _write_count_data(counts: Sequence[Count], edge_file: Path, turn_file: Path) -> None:
    """routeSampler inputs: edgeData (``entered``) and edgeRelation (``count``) per interval."""
    for path, turn in ((edge_file, False), (turn_file, True)):
        root = ET.Element("data")
        by_interval: dict[tuple[float, float], list[Count]] = defaultdict(list)
        for c in counts:
            if c.is_turn == turn:
                by_interval[(c.begin_s, c.end_s)].append(c)
        for k, ((b, e), rows) in enumerate(sorted(by_interval.items())):
            iv = ET.SubElement(root, "interval", id=f"i{k}", begin=repr(b), end=repr(e))
            for c in rows:
                if turn:
                    ET.SubElement(iv, "edgeRelation", {"from": c.from_edge, "to": c.to_edge, "count": repr(c.count)})
                else:
                    ET.SubElement(iv, "edge", id=c.from_edge, entered=repr(c.count))
        ET.indent(root)
        path.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))


def _flows_from_sampled(sampled: Path, periods: Sequence[Period], n_candidates: int) -> CountDemand:
    """One Poisson flow per sampled route: vehicles per period → vehicles/hour."""
    route_defs: dict[str, tuple[str, ...]] = {}
    per_route: dict[tuple[str, ...], np.ndarray] = {}
    starts = np.array([p.begin_s for p in periods])
    hours = np.array([(p.end_s - p.begin_s) / 3600.0 for p in periods])
    n_veh = 0
    for _, el in ET.iterparse(sampled):
        if el.tag == "route" and el.get("id"):
            route_defs[el.get("id", "")] = tuple(el.get("edges", "").split())
        elif el.tag == "vehicle":
            inner = el.find("route")
            if inner is not None:
                edges = tuple(inner.get("edges", "").split())
            else:
                edges = route_defs.get(el.get("route", ""), ())
            if not edges:
                continue
            k = int(np.searchsorted(starts, float(el.get("depart", "0")), side="right")) - 1
            if 0 <= k < len(periods):
                per_route.setdefault(edges, np.zeros(len(periods)))[k] += 1
                n_veh += 1
            el.clear()
    flows = tuple(
        Flow(edges[0], edges[-1], tuple(float(v) for v in counts / hours), tuple(edges[1:-1]))
        for edges, counts in sorted(per_route.items())
    )
    return CountDemand(tuple(periods), flows, n_candidates, n_veh)


# --------------------------------------------------------------------------------------------
# fit


def geh(model_vph: Any, count_vph: Any) -> np.ndarray:
    """GEH statistic of hourly flows: ``sqrt(2 (m - c)^2 / (m + c))``, 0 where both are 0."""
    m = np.asarray(model_vph, dtype=float)
    c = np.asarray(count_vph, dtype=float)
    total = m + c
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.sqrt(2.0 * (m - c) ** 2 / total)
    return np.where(total > 0, g, 0.0)


def simulate_counts(scenario: Scenario, counts: Sequence[Count], workdir: str | Path,
                    seed: int | None = None) -> np.ndarray:
    """Simulate ``scenario`` in SUMO and count vehicles at each count's location and interval.

    Counting rule: see the module doc. Returns one simulated vehicle count per element of
    ``counts``."""
    from ..scenario import sumo_command  # builds the command only; SUMO runs as a subprocess here
    from ..tools import run_binary

    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    vr = wd / "fit.vehroutes.xml"
    cmd = sumo_command(scenario, scenario.seed if seed is None else seed, wd, extra_args=[
        "--vehroute-output", str(vr), "--vehroute-output.exit-times", "true",
        "--vehroute-output.write-unfinished", "true"])
    run_binary(cmd, what=f"{scenario.name}: fit simulation", tool="sumo")
    edges = {c.from_edge for c in counts if not c.is_turn}
    turns = {(c.from_edge, c.to_edge) for c in counts if c.is_turn}
    times: dict[Any, list[float]] = defaultdict(list)
    for _, el in ET.iterparse(vr):
        if el.tag != "vehicle":
            continue
        routes = el.findall("route")
        if routes:
            r = routes[-1]
            route = r.get("edges", "").split()
            exits = [float(x) for x in r.get("exitTimes", "").split()]
            entry = [float(el.get("depart", "nan")), *exits]
            for i, e in enumerate(route):
                if i < len(entry) and e in edges:
                    times[e].append(entry[i])
                if i + 1 < len(route) and i < len(exits) and (e, route[i + 1]) in turns:
                    times[(e, route[i + 1])].append(exits[i])
        el.clear()
    sorted_times = {k: np.sort(np.asarray(v)) for k, v in times.items()}
    out = np.zeros(len(counts))
    empty = np.zeros(0)
    for i, c in enumerate(counts):
        t = sorted_times.get((c.from_edge, c.to_edge) if c.is_turn else c.from_edge, empty)
        out[i] = np.searchsorted(t, c.end_s, side="left") - np.searchsorted(t, c.begin_s, side="left")
    return out


def fit_table(counts: Sequence[Count], simulated: Sequence[float] | np.ndarray) -> pd.DataFrame:
    """One row per count: observed and simulated vehicles and vehicles/hour, and GEH.

    Columns: ``line, location, from_edge, to_edge, begin_s, end_s, observed_veh, simulated_veh,
    observed_vph, simulated_vph, geh, geh_ok`` (``geh_ok``: GEH < 5)."""
    hours = np.array([c.hours for c in counts])
    obs = np.array([c.count for c in counts], dtype=float)
    sim = np.asarray(simulated, dtype=float)
    df = pd.DataFrame({
        "line": [c.line for c in counts],
        "location": [c.location for c in counts],
        "from_edge": [c.from_edge for c in counts],
        "to_edge": [c.to_edge for c in counts],
        "begin_s": [c.begin_s for c in counts],
        "end_s": [c.end_s for c in counts],
        "observed_veh": obs,
        "simulated_veh": sim,
        "observed_vph": obs / hours,
        "simulated_vph": sim / hours,
    })
    df["geh"] = geh(df["simulated_vph"], df["observed_vph"])
    df["geh_ok"] = df["geh"] < GEH_OK
    return df


# --------------------------------------------------------------------------------------------
# scenarios that reference counts, and the command


def resolve_network(spec: str | Path) -> Path:
    """A network given as a ``.net.xml[.gz]`` path, a directory holding one, a bundled network name
    (``grid``, ``corridor``) or a scenario (TOML/``.sumocfg``, whose network is used)."""
    from ..scenario import ROOT, load_scenario

    p = Path(spec)
    if p.is_file() and (p.name.endswith(".net.xml") or p.name.endswith(".net.xml.gz")):
        return p.resolve()
    if p.is_dir():
        nets = sorted(p.glob("*.net.xml")) + sorted(p.glob("*.net.xml.gz"))
        if len(nets) == 1:
            return nets[0].resolve()
        raise ScenarioError(f"{spec}: expected one .net.xml in the directory, found {len(nets)}")
    bundled = ROOT / "networks" / str(spec) / f"{spec}.net.xml"
    if p.suffix == "" and bundled.exists():
        return bundled
    if p.suffix in (".toml", ".sumocfg"):
        return load_scenario(p).net_file
    raise ScenarioError(f"{spec}: not a network; give a .net.xml path, a directory with one, or a bundled "
                        "network (corridor, grid)")


@functools.lru_cache(maxsize=8)
def _cached_demand(csv_path: Path, csv_mtime: int, net_file: Path, net_mtime: int, begin_s: float,
                   end_s: float, seed: int, candidates: int, where: str,
                   attribute: str = DEFAULT_EDGE_ATTRIBUTE) -> tuple[tuple[Count, ...], CountDemand]:
    counts = in_window(read_counts(csv_path, net_file, attribute=attribute), begin_s, end_s, where)
    with tempfile.TemporaryDirectory(prefix="mobility-counts-") as wd:
        return counts, fit_demand(counts, net_file, wd, seed=seed, candidates=candidates, where=where,
                                  begin_s=begin_s)


def prepare_demand(scenario: Scenario) -> Scenario:
    """The scenario with its ``[counts]`` demand fitted (:class:`~mobility.scenario.CountsDemand`):
    periods = the count intervals in the file's window, flows = the sampled routes (by
    :func:`fit_demand`). Time before the first count interval is a warm-up at the first interval's
    demand; after the last interval there is no demand. A scenario without counts is returned as is.

    This is where randomTrips, duarouter and routeSampler run: when a run is prepared, never
    while a scenario is loaded. Deterministic for the same files and options (cached per process)."""
    c = scenario.counts
    if c is None:
        return scenario
    net_file = scenario.net_file
    _, demand = _cached_demand(c.file, c.file.stat().st_mtime_ns, net_file, net_file.stat().st_mtime_ns,
                               c.begin_s, c.end_s, c.seed, c.candidates, str(c.file), c.attribute)
    return scenario.replace(periods=tuple(demand.periods), flows=tuple(demand.flows), counts=None)


@dataclass
class CountsReport:
    """What :func:`demand_from_counts` produced; ``fit`` is the table of :func:`fit_table`."""

    scenario_file: Path
    fit_file: Path
    fit: pd.DataFrame
    flows: int
    candidate_routes: int
    sampled_vehicles: int

    @property
    def share_geh_ok(self) -> float:
        """Share of count rows with GEH < 5."""
        return float(self.fit["geh_ok"].mean()) if len(self.fit) else 0.0

    def format(self) -> str:
        f = self.fit
        lines = [f"{'location':<34} {'begin_s':>8} {'end_s':>8} {'obs_vph':>8} {'sim_vph':>8} {'GEH':>6}"]
        for r in f.itertuples():
            loc = r.location if len(r.location) <= 34 else r.location[:33] + "…"
            lines.append(f"{loc:<34} {r.begin_s:>8g} {r.end_s:>8g} {r.observed_vph:>8.0f} {r.simulated_vph:>8.0f} "
                         f"{r.geh:>6.2f}")
        share = self.share_geh_ok
        verdict = "met" if share >= ACCEPT_SHARE else "NOT met"
        lines += ["", f"GEH < {GEH_OK:g} at {share:.1%} of {len(f)} count locations "
                      f"(acceptance >= {ACCEPT_SHARE:.0%}: {verdict}); "
                      f"{self.flows} routes from {self.candidate_routes} candidates, "
                      f"{self.sampled_vehicles} vehicles",
                  f"wrote {self.scenario_file.name}, {self.fit_file.name} to {self.scenario_file.parent}"]
        return "\n".join(lines)


def demand_from_counts(network: str | Path, counts_csv: str | Path, out_dir: str | Path, *,
                       begin_s: float | None = None, end_s: float | None = None, warmup_s: float = 900.0,
                       seed: int = 1, candidates: int = DEFAULT_CANDIDATES, force: bool = False,
                       attribute: str = DEFAULT_EDGE_ATTRIBUTE) -> CountsReport:
    """Fit demand to counts and write, atomically, into ``out_dir``:

    * ``NAME.toml``: a scenario referencing the counts (``[counts]``), NAME = the counts file's stem;
    * a copy of the counts file (CSV, or SUMO edgeData/edgeRelation XML with the edge counts in
      ``attribute``); ``routes.rou.xml``: routeSampler's sampled vehicles;
    * ``fit.csv``: the fit table (:func:`fit_table`) from one simulation (the scenario's seed).

    ``begin_s``/``end_s`` (default: the counts' extent) is the counted window; counts outside it
    are ignored. The scenario starts ``warmup_s`` earlier (not before 0 s) with the first
    interval's demand, so the network is filled when counting starts; metrics exclude the warm-up."""
    from ..files import atomic_dir

    net_file = resolve_network(network)
    src = Path(counts_csv)
    all_counts = read_counts(src, net_file, attribute=attribute)
    b = min(c.begin_s for c in all_counts) if begin_s is None else float(begin_s)
    e = max(c.end_s for c in all_counts) if end_s is None else float(end_s)
    if e <= b:
        raise ScenarioError(f"--end {e:g}: expected a time after --begin {b:g}")
    if seed < 0 or candidates < 0 or not warmup_s >= 0:
        raise MobilityError(f"--seed/--candidates/--warmup: expected numbers >= 0, got {seed}, {candidates}, "
                            f"{warmup_s}")
    counts = in_window(all_counts, b, e, str(src))
    b = min(c.begin_s for c in counts)
    start = max(0.0, b - warmup_s)
    name = Path(src.name.removesuffix(".gz")).stem
    out = Path(out_dir).resolve()
    with atomic_dir(out, force=force) as tmp, tempfile.TemporaryDirectory(prefix="mobility-counts-") as wd:
        demand = fit_demand(counts, net_file, wd, seed=seed, candidates=candidates, where=str(src), begin_s=start)
        csv_copy = tmp / src.name
        shutil.copyfile(src, csv_copy)
        shutil.copyfile(Path(wd) / "sampled.rou.xml", tmp / "routes.rou.xml")
        toml = tmp / f"{name}.toml"
        _write_counts_scenario(toml, name, net_file, out, src.name, start, b, e, seed, candidates, attribute)
        scenario = Scenario(name=name, source=out / toml.name, net_file=net_file, begin_s=start, end_s=e,
                            warmup_s=b - start, seed=seed, periods=demand.periods, flows=demand.flows,
                            vehicle_types=(VehicleType("car", 1.0),))
        simulated = simulate_counts(scenario, counts, Path(wd) / "sim")
        fit = fit_table(counts, simulated)
        fit.to_csv(tmp / "fit.csv", index=False, float_format="%.6g")
    return CountsReport(out / toml.name, out / "fit.csv", fit, len(demand.flows), demand.candidate_routes,
                        demand.sampled_vehicles)


def _write_counts_scenario(path: Path, name: str, net_file: Path, out: Path, csv_name: str, begin_s: float,
                           counted_s: float, end_s: float, seed: int, candidates: int,
                           attribute: str = DEFAULT_EDGE_ATTRIBUTE) -> None:
    import json
    import os

    common = os.path.commonpath([net_file, out])
    net_rel = os.path.relpath(net_file, out) if common != os.path.dirname(common) else str(net_file)
    lines = [
        "# Scenario whose demand is fitted to traffic counts (written by `mobility demand-from-counts`).",
        "# The [counts] table makes every load fit routes to the counts with SUMO's routeSampler",
        "# (deterministic for the same files, seed and candidates); fit.csv has the GEH per count.",
        "# Time before the first count interval is a warm-up at the first interval's demand.",
        "# Add [[vehicle_types]] or [fleet] for a vehicle mix (default: petrol cars).",
        f"name = {json.dumps(name)}",
        f"network = {json.dumps(net_rel)}",
        f"begin_s = {begin_s:g}",
        f"end_s = {end_s:g}",
        f"warmup_s = {counted_s - begin_s:g}     # the counts start at {counted_s:g} s",
        f"seed = {seed}",
        "",
        "[counts]",
        f"file = {json.dumps(csv_name)}",
        f"seed = {seed}             # candidate routes and route sampling",
        f"candidates = {candidates}     # random candidate trips (plus targeted routes through every count)",
    ]
    if attribute != DEFAULT_EDGE_ATTRIBUTE:
        lines.append(f"attribute = {json.dumps(attribute)}     # the edgeData count attribute")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
