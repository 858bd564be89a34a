"""Demand per signalised movement, measured from the routes a scenario will drive.

:func:`estimate_demand` turns a scenario's demand into vehicles/hour on every traffic-light link
(incoming lane → outgoing lane) for every demand period. It is what plan-level controllers (e.g.
Webster timing) receive as ``network.demand`` when they declare ``needs_demand = True``.

How the volumes are measured:

1. Every vehicle's route (a sequence of edges) is read from the scenario: for a TOML scenario from
   the route file :func:`~mobility.scenario.write_routes` writes; for a ``.sumocfg`` scenario from
   its additional and route files (vehicles with an embedded route, a route id or a route
   distribution; flows with a route). Trips and flows given by origin and destination (``from``/
   ``to``, ``fromJunction``/``toJunction``, ``fromTaz``/``toTaz``) are routed once each with SUMO's
   ``duarouter`` (static fastest path, seed = the scenario's seed), as SUMO routes them at insertion.
2. Each route is counted per period: a vehicle in the period holding its departure time; a flow by
   its expected number of departures in ``[begin, end) ∩ period`` (its rate times the overlap; a
   Poisson flow ``period="exp(r)"`` contributes ``r`` per second), so the measure does not depend on
   one random realisation. Counts are divided by the period length: vehicles/hour.
3. Each consecutive edge pair ``(e_in, e_out)`` of a route is a movement; its volume is split
   equally over the links of the junction whose incoming lane lies on ``e_in`` and outgoing lane on
   ``e_out`` (a two-lane through movement puts half on each lane's link).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ScenarioError
from ..network import SignalNetwork
from ..scenario import Period, Scenario, write_routes

#: attributes that give a trip/flow its origin and destination instead of a route
_OD_ATTRS = ("from", "to", "via", "fromJunction", "toJunction", "fromTaz", "toTaz", "fromXY", "toXY",
             "viaXY", "fromLonLat", "toLonLat", "viaLonLat", "viaJunctions")
_FLOW_DEFAULT_END_S = 86400.0  # SUMO's default end of a flow (24 h)
_TRIGGERED = ("triggered", "containerTriggered", "split")


@dataclass(frozen=True)
class Demand:
    """Vehicles/hour per signalised link and demand period.

    ``link_vph[junction_id]`` has shape ``(len(periods), len(junction.links))``; column ``k`` is
    ``junction.links[k]`` (the junction's links in link-index order).
    """

    periods: tuple[Period, ...]
    link_vph: dict[str, np.ndarray]

    def period_at(self, time_s: float) -> int | None:
        """Index of the period holding ``time_s`` (``begin_s <= time_s < end_s``), or None."""
        for k, p in enumerate(self.periods):
            if p.begin_s <= time_s < p.end_s:
                return k
        return None

    def movement_vph(self, junction_id: str, period_index: int) -> np.ndarray:
        """Vehicles/hour on each link of a junction (``junction.links`` order) in one period."""
        return self.link_vph[junction_id][period_index]


def estimate_demand(scenario: Scenario, net: SignalNetwork, workdir: Path) -> Demand:
    """Measure the scenario's demand on every link of every signalised junction of ``net``.

    ``workdir`` receives the intermediate route files. Raises :class:`ScenarioError` for route files
    that cannot be read or trips ``duarouter`` cannot handle.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # with no end time, the one period is [begin, last departure]: read over [begin, cap), then shrink
    periods = scenario.periods or (Period("all", scenario.begin_s, scenario.stop_s),)
    if scenario.sumocfg is None:
        files: list[Path] = [write_routes(scenario, workdir / "demand-flows.rou.xml")]
    else:
        files = [*scenario.additional_files, *scenario.route_files]
    reader = _RouteReader(periods, scenario.step_length_s)
    for f in files:
        reader.read(f)
    reader.route_trips(scenario.net_file, workdir, scenario.seed)
    if not scenario.periods and scenario.until_empty:
        last = min(max(reader.last_depart_s, scenario.begin_s + scenario.step_length_s), scenario.stop_s)
        periods = (Period("all", scenario.begin_s, last),)
    return Demand(tuple(periods), _attribute(reader.counts, net, periods))


def _attribute(counts: dict[tuple[str, ...], np.ndarray], net: SignalNetwork,
               periods: Iterable[Period]) -> dict[str, np.ndarray]:
    """Vehicles per route and period → vehicles/hour per junction link and period."""
    hours = np.array([(p.end_s - p.begin_s) / 3600.0 for p in periods])
    links_of: dict[tuple[str, str], list[tuple[str, int]]] = {}
    out: dict[str, np.ndarray] = {}
    for jid, j in net.junctions.items():
        out[jid] = np.zeros((len(hours), len(j.links)))
        for k, lk in enumerate(j.links):
            pair = (net.lanes[lk.in_lane].edge, net.lanes[lk.out_lane].edge)
            links_of.setdefault(pair, []).append((jid, k))
    for edges, n in counts.items():
        vph = n / hours
        for pair in zip(edges, edges[1:]):
            links = links_of.get(pair)
            if links:
                for jid, k in links:
                    out[jid][:, k] += vph / len(links)
    return out


def _time(value: str, path: Path, what: str) -> float:
    """A SUMO time value: seconds, or ``[D:]HH:MM:SS``."""
    try:
        parts = [float(x) for x in value.split(":")]
    except ValueError:
        raise ScenarioError(f"{path}: {what}: expected a time in seconds, got {value!r}") from None
    t = 0.0
    for x, unit in zip(reversed(parts), (1, 60, 3600, 86400)):
        t += x * unit
    return t


class _RouteReader:
    """Reads SUMO route/additional files into vehicles per (route, period)."""

    def __init__(self, periods: Iterable[Period], step_length_s: float) -> None:
        self.periods = list(periods)
        self.step_s = step_length_s
        self.routes: dict[str, list[tuple[tuple[str, ...], float]]] = {}  # id -> [(edges, share)]
        self.counts: dict[tuple[str, ...], np.ndarray] = {}
        self.types: dict[str, str] = {}  # vType / vTypeDistribution id -> its XML
        self.taz: list[str] = []
        self.trips: list[tuple[dict[str, str], np.ndarray, Path]] = []  # to route with duarouter
        self.last_depart_s = -math.inf  # the latest departure (or flow end) read, s

    # -- reading --------------------------------------------------------------------------
    def read(self, path: Path) -> None:
        for el in _top_level(path):
            tag = el.tag
            if tag == "vType":
                self.types[el.get("id", "")] = ET.tostring(el, encoding="unicode")
            elif tag == "vTypeDistribution":
                xml = ET.tostring(el, encoding="unicode")
                self.types[el.get("id", "")] = xml
                for child in el.iter("vType"):  # their members are types too, defined by the distribution
                    self.types.setdefault(child.get("id", ""), "")
            elif tag == "taz":
                self.taz.append(ET.tostring(el, encoding="unicode"))
            elif tag == "route" and el.get("id"):
                self.routes[el.get("id", "")] = [(self._edges(el, path), 1.0)]
            elif tag == "routeDistribution" and el.get("id"):
                self.routes[el.get("id", "")] = self._distribution(el, path)
            elif tag in ("vehicle", "trip"):
                depart = el.get("depart", "")
                if depart in _TRIGGERED:
                    continue  # departs with a person or container: not timed demand
                t = self.periods[0].begin_s if depart == "begin" else \
                    _time(depart, path, f"{tag} '{el.get('id')}': attribute 'depart'")
                self._add(el, self._at(t), path)
            elif tag == "flow":
                self._add(el, self._flow(el, path), path)

    def _edges(self, route: ET.Element, path: Path) -> tuple[str, ...]:
        if route.get("edges") is not None:
            return tuple(route.get("edges", "").split())
        ref = route.get("refId")
        if ref in self.routes:
            return self.routes[ref][0][0]
        raise ScenarioError(f"{path}: route '{route.get('id', '')}': expected an 'edges' attribute "
                            f"or a refId of a route defined before it")

    def _distribution(self, dist: ET.Element, path: Path) -> list[tuple[tuple[str, ...], float]]:
        out = []
        for r in dist.findall("route"):
            if r.get("edges") is None and r.get("refId") in self.routes:
                out += [(e, w * float(r.get("probability", "1"))) for e, w in self.routes[r.get("refId", "")]]
            else:
                out.append((self._edges(r, path), float(r.get("probability", "1"))))
        total = sum(w for _, w in out)
        return [(e, w / total) for e, w in out] if total > 0 else []

    def _routes_of(self, el: ET.Element, path: Path) -> list[tuple[tuple[str, ...], float]] | None:
        """The (edges, share) a vehicle or flow drives, or None if it must be routed."""
        ref = el.get("route")
        if ref is not None:
            if ref not in self.routes:
                raise ScenarioError(f"{path}: {el.tag} '{el.get('id')}': route '{ref}' is not defined; "
                                    f"expected a <route> or <routeDistribution> with that id before it")
            return self.routes[ref]
        child = el.find("route")
        if child is not None:
            return [(self._edges(child, path), 1.0)]
        dist = el.find("routeDistribution")
        if dist is not None:
            return self._distribution(dist, path)
        return None

    def _add(self, el: ET.Element, n: np.ndarray, path: Path) -> None:
        if not n.any():
            return  # departs outside every period
        routes = self._routes_of(el, path)
        if routes is not None:
            for edges, share in routes:
                if share > 0:
                    acc = self.counts.setdefault(edges, np.zeros(len(self.periods)))
                    acc += n * share
        elif any(a in el.attrib for a in _OD_ATTRS):
            self.trips.append(({a: v for a, v in el.attrib.items() if a in _OD_ATTRS or a == "type"}, n, path))
        else:
            raise ScenarioError(f"{path}: {el.tag} '{el.get('id')}': expected a route (route=\"id\" or a "
                                f"<route> child) or an origin and destination (from=/to=)")

    # -- counting -------------------------------------------------------------------------
    def _at(self, depart: float) -> np.ndarray:
        self.last_depart_s = max(self.last_depart_s, depart)
        return np.array([1.0 if p.begin_s <= depart < p.end_s else 0.0 for p in self.periods])

    def _flow(self, el: ET.Element, path: Path) -> np.ndarray:
        """Expected departures of a flow per period."""
        what = f"flow '{el.get('id')}'"

        def num(attr: str) -> float | None:
            v = el.get(attr)
            if v is None:
                return None
            try:
                x = float(v)
            except ValueError:
                raise ScenarioError(f"{path}: {what}: attribute '{attr}': expected a number, got {v!r}") from None
            if not math.isfinite(x) or x < 0:
                raise ScenarioError(f"{path}: {what}: attribute '{attr}': expected a non-negative number, got {v!r}")
            return x

        begin = _time(el.get("begin", "0"), path, f"{what}: attribute 'begin'")
        end_attr = el.get("end")
        end = _time(end_attr, path, f"{what}: attribute 'end'") if end_attr is not None else None
        rate: float | None = None  # vehicles per second
        per_hour = num("vehsPerHour") if el.get("vehsPerHour") is not None else num("perHour")
        period = el.get("period", "")
        if per_hour is not None:
            rate = per_hour / 3600.0
        elif period.startswith("exp(") and period.endswith(")"):
            rate = _time(period[4:-1], path, f"{what}: attribute 'period'")
        elif period:
            p = _time(period, path, f"{what}: attribute 'period'")
            rate = 1.0 / p if p > 0 else None
        elif el.get("probability") is not None:
            rate = (num("probability") or 0.0) / self.step_s
        number = num("number")
        if rate is None and number is None:
            raise ScenarioError(f"{path}: {what}: expected one of vehsPerHour, perHour, period, probability "
                                f"or number")
        if number is not None and rate is None:
            end = end if end is not None else _FLOW_DEFAULT_END_S
            if end <= begin:
                return self._at(begin) * number
            rate = number / (end - begin)
        elif number is not None and rate:
            end = min(end if end is not None else math.inf, begin + number / rate)
        end = end if end is not None else _FLOW_DEFAULT_END_S
        self.last_depart_s = max(self.last_depart_s, end)
        return np.array([(rate or 0.0) * max(0.0, min(end, p.end_s) - max(begin, p.begin_s)) for p in self.periods])

    # -- routing trips ----------------------------------------------------------------------
    def route_trips(self, net_file: Path, workdir: Path, seed: int) -> None:
        """Route every trip/flow given by origin and destination once with duarouter."""
        if not self.trips:
            return
        from ..tools import binary, run as run_sumo

        root = ET.Element("routes")
        lines = [xml for xml in self.types.values() if xml]
        for i, (attrs, _, _) in enumerate(self.trips):
            a = {k: v for k, v in attrs.items() if k != "type" or v in self.types}
            ET.SubElement(root, "trip", {"id": f"t{i}", "depart": "0", **a})
        trips = workdir / "demand-trips.rou.xml"
        body = ET.tostring(root, encoding="unicode")
        trips.write_text(body.replace("<routes>", "<routes>\n" + "\n".join(lines), 1), encoding="utf-8")
        out = workdir / "demand-routed.rou.xml"
        cmd = [binary("duarouter"), "-n", str(net_file), "-r", str(trips),
               "-o", str(out), "--seed", str(seed), "--ignore-errors", "true", "--no-step-log", "true",
               "--no-warnings", "true"]
        if any(k in a for a, _, _ in self.trips for k in ("fromJunction", "toJunction", "viaJunctions")):
            cmd += ["--junction-taz", "true"]
        if self.taz:
            taz = workdir / "demand-taz.add.xml"
            taz.write_text("<additional>\n" + "\n".join(self.taz) + "\n</additional>\n", encoding="utf-8")
            cmd += ["--additional-files", str(taz), "--with-taz", "true"]
        proc = run_sumo(cmd, env=os.environ)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error")] or ["(no message)"]
            raise ScenarioError(f"{self.trips[0][2]}: duarouter cannot route its trips/flows: {errors[0]}")
        for el in _top_level(out):  # trips duarouter cannot route are left out, as SUMO would
            route = el.find("route")
            if el.tag == "vehicle" and route is not None:
                edges = tuple(route.get("edges", "").split())
                acc = self.counts.setdefault(edges, np.zeros(len(self.periods)))
                acc += self.trips[int(el.get("id", "t0")[1:])][1]


def _top_level(path: Path) -> Iterator[ET.Element]:
    """The children of a SUMO XML file's root element, one at a time (memory stays flat). A
    ``.gz`` file is read through gzip, as SUMO reads it (real models ship compressed routes)."""
    import gzip

    depth = 0
    root: ET.Element | None = None
    try:
        with (gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")) as source:
            for event, el in ET.iterparse(source, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        root = el
                    continue
                depth -= 1
                if depth == 1:
                    yield el
                    assert root is not None
                    root.clear()
    except ET.ParseError as e:
        raise ScenarioError(f"{path}: malformed XML: {e}") from None
    except OSError as e:  # gzip.BadGzipFile has no strerror
        raise ScenarioError(f"{path}: cannot read: {e.strerror or e}") from None
