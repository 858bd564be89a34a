#!/usr/bin/env python3
"""Generate the road networks bundled with ``mobility``.

Run ``python networks/build.py`` (from any directory) to regenerate

* ``networks/corridor/corridor.net.xml`` -- a west-east urban arterial with six
  signalised intersections ``J1``..``J6`` and a left-turn bay on every
  arterial approach, and
* ``networks/grid/grid.net.xml`` -- a 3x3 signalised grid ``G00``..``G22``.

Everything is described by the Python data in this file.  For each network the
script writes SUMO plain-XML inputs next to the built network (``.nod.xml``,
``.edg.xml``, ``.con.xml`` and ``.tll.xml``) and calls ``netconvert`` on them.
Signal programs are composed from movement-level stage definitions: a first
``netconvert`` pass (without programs) tells which traffic-light link index
each connection receives, the programs are then written explicitly (together
with the connection -> link-index mapping) and the network is built again.
The result is checked for conflicting simultaneous greens, missing yellow
intervals and missing clearance before the command succeeds.

The output is deterministic: the date in the header comment that netconvert
writes is removed, and netconvert runs inside the network directory so that
the recorded configuration only contains relative file names.

Only ``netconvert`` (Eclipse SUMO) and ``sumolib`` are required; ``SUMO_HOME``
does not need to be set when the ``eclipse-sumo`` Python package is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any, Literal

NETWORKS_DIR = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Common conventions
# --------------------------------------------------------------------------

#: Lane width used by netconvert and by the arterial shape offsets [m].
LANE_WIDTH = 3.2
#: 50 km/h in m/s, the speed limit on every edge.
URBAN_SPEED = 13.89

Compass = Literal["N", "E", "S", "W"]
Turn = Literal["r", "s", "l"]
#: Direction of travel of the traffic entering a junction from a leg.
Approach = Literal["NB", "SB", "EB", "WB"]
#: A signal group: all connections of one approach making one turn.
Movement = tuple[Approach, Turn]
#: (from edge, from lane, to edge, to lane)
ConnectionKey = tuple[str, int, str, int]

#: Legs in clockwise order (as seen from above).
CLOCKWISE: tuple[Compass, ...] = ("N", "E", "S", "W")
#: Traffic entering from the western leg travels eastbound, and so on.
APPROACH_FROM_LEG: dict[Compass, Approach] = {"W": "EB", "E": "WB", "N": "SB", "S": "NB"}

#: Signal state letters understood by SUMO that allow vehicles to pass.
GREEN_STATES = frozenset("Gg")


@dataclass(frozen=True)
class Node:
    """A network node (plain-XML ``<node>``)."""

    id: str
    x: float
    y: float
    type: Literal["priority", "traffic_light"] = "priority"


@dataclass(frozen=True)
class Edge:
    """A network edge (plain-XML ``<edge>``).

    ``shape`` is optional; lanes are always laid out to the right of the given
    (or implied straight) geometry (``spreadType="right"``, the default).
    """

    id: str
    from_node: str
    to_node: str
    num_lanes: int
    priority: int
    speed: float = URBAN_SPEED
    shape: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Connection:
    """A lane-to-lane connection (plain-XML ``<connection>``).

    ``movement`` is set for connections at signalised junctions and selects the
    signal group that controls the connection.
    """

    from_edge: str
    from_lane: int
    to_edge: str
    to_lane: int
    movement: Movement | None = None

    @property
    def key(self) -> ConnectionKey:
        """Identify the connection independently of its signal group."""
        return (self.from_edge, self.from_lane, self.to_edge, self.to_lane)


@dataclass(frozen=True)
class Leg:
    """One arm of a junction: the edge entering and the edge leaving it.

    ``left_bay`` marks an approach whose leftmost lane is an exclusive
    left-turn lane; all other lanes then serve through (and right) traffic.
    Without a bay the leftmost lane is shared by through and left traffic.
    """

    in_edge: str
    in_lanes: int
    out_edge: str
    out_lanes: int
    left_bay: bool = False


@dataclass(frozen=True)
class PhaseSpec:
    """One signal phase expressed per movement.

    ``signals`` maps movements to SUMO state letters (``G``, ``g``, ``y``);
    every movement not listed shows red (``r``).
    """

    name: str
    duration: int
    signals: Mapping[Movement, str]


@dataclass
class NetworkSpec:
    """Everything needed to build one network."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    #: Signal plan (list of phases) per traffic-light id (= junction id).
    plans: dict[str, list[PhaseSpec]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """Directory holding the plain-XML inputs and the built network."""
        return NETWORKS_DIR / self.name

    def file(self, suffix: str) -> str:
        """File name (relative to :attr:`directory`) for the given suffix."""
        return f"{self.name}.{suffix}"


class BuildError(RuntimeError):
    """Raised when a network cannot be built or fails verification."""


def turn_between(from_leg: Compass, to_leg: Compass) -> Turn:
    """Turn made by a vehicle entering from ``from_leg`` and leaving via ``to_leg``."""
    steps = (CLOCKWISE.index(to_leg) - CLOCKWISE.index(from_leg)) % 4
    turns: dict[int, Turn] = {1: "l", 2: "s", 3: "r"}
    if steps not in turns:
        raise ValueError(f"U-turns are not modelled ({from_leg} -> {to_leg})")
    return turns[steps]


def junction_connections(legs: Mapping[Compass, Leg]) -> list[Connection]:
    """Lane-level connections of a four-arm junction.

    Lane use per approach: the right turn leaves from lane 0 into lane 0, the
    through movement keeps its lane, and the left turn leaves from the leftmost
    lane into the leftmost lane of the target edge.  With a left-turn bay the
    leftmost lane carries only the left turn and the through movement uses the
    remaining lanes.
    """
    connections: list[Connection] = []
    for from_leg in CLOCKWISE:
        leg = legs[from_leg]
        approach = APPROACH_FROM_LEG[from_leg]
        through_lanes = leg.in_lanes - 1 if leg.left_bay else leg.in_lanes
        for to_leg in CLOCKWISE:
            if to_leg == from_leg:
                continue
            target = legs[to_leg]
            turn = turn_between(from_leg, to_leg)
            if turn == "r":
                pairs = [(0, 0)]
            elif turn == "s":
                pairs = [(lane, min(lane, target.out_lanes - 1)) for lane in range(through_lanes)]
            else:
                pairs = [(leg.in_lanes - 1, target.out_lanes - 1)]
            connections.extend(
                Connection(leg.in_edge, from_lane, target.out_edge, to_lane, (approach, turn))
                for from_lane, to_lane in pairs
            )
    return connections


# --------------------------------------------------------------------------
# Corridor: west-east arterial with six signals
# --------------------------------------------------------------------------

CORRIDOR_SIGNALS = ("J1", "J2", "J3", "J4", "J5", "J6")
#: Distance between consecutive signals J1-J2, J2-J3, ..., J5-J6 [m].
CORRIDOR_SPACING = (420.0, 300.0, 560.0, 350.0, 480.0)
#: Length of the entry/exit links W-J1 and J6-E [m].
CORRIDOR_END_LENGTH = 250.0
#: Length of the north and south side-street legs [m].
CORRIDOR_SIDE_LENGTH = 200.0
#: Distance from the junction centre to the start of the left-turn bay on every
#: arterial approach [m]; after netconvert cuts the lanes at the junction the
#: usable bay (edge ``*_bay``) is 65.6-68.8 m long.
CORRIDOR_BAY_LENGTH = 80.0
#: y coordinate of the arterial axis.
CORRIDOR_AXIS_Y = 200.0
CORRIDOR_ARTERIAL_LANES = 2
#: Lanes per direction on the cross streets; the default is 1.
CORRIDOR_SIDE_LANES = {"J4": 2}
CORRIDOR_ARTERIAL_PRIORITY = 3
CORRIDOR_SIDE_PRIORITY = 2

#: Yellow / clearance red after a protected left-turn interval [s].
LEFT_YELLOW = 3
LEFT_CLEARANCE = 1
#: Yellow / all-red after a through stage [s].
YELLOW = 4
ALL_RED = 2


@dataclass(frozen=True)
class CorridorTiming:
    """Green times [s] of the four stages of an arterial signal.

    1. ``left``: both arterial left turns protected (leading lefts),
    2. ``eb_lead``: eastbound left continues together with eastbound
       through/right (the westbound left is terminated first),
    3. ``through``: eastbound and westbound through/right,
    4. ``side``: side street through/right, side-street lefts permissive.
    """

    left: int
    eb_lead: int
    through: int
    side: int


#: AM-peak timings (eastbound is the peak direction); offset 0 everywhere,
#: i.e. the signals are not coordinated.  Every cycle also contains
#: 2 x (LEFT_YELLOW + LEFT_CLEARANCE) + 2 x (YELLOW + ALL_RED) = 20 s of
#: change intervals; the resulting cycle length is given per junction.
CORRIDOR_TIMINGS: dict[str, CorridorTiming] = {
    "J1": CorridorTiming(left=8, eb_lead=6, through=42, side=24),   # 100 s
    "J2": CorridorTiming(left=7, eb_lead=5, through=46, side=22),   # 100 s
    "J3": CorridorTiming(left=8, eb_lead=6, through=40, side=26),   # 100 s
    "J4": CorridorTiming(left=9, eb_lead=7, through=42, side=32),   # 110 s
    "J5": CorridorTiming(left=7, eb_lead=5, through=44, side=24),   # 100 s
    "J6": CorridorTiming(left=8, eb_lead=6, through=40, side=22),   # 96 s
}


def corridor_plan(timing: CorridorTiming) -> list[PhaseSpec]:
    """Four-stage plan with leading protected arterial lefts."""
    eb_left: dict[Movement, str] = {("EB", "l"): "G"}
    eb_through: dict[Movement, str] = {("EB", "s"): "G", ("EB", "r"): "G"}
    wb_through: dict[Movement, str] = {("WB", "s"): "G", ("WB", "r"): "G"}
    side: dict[Movement, str] = {
        (approach, turn): ("g" if turn == "l" else "G")
        for approach in ("NB", "SB")
        for turn in ("r", "s", "l")
    }

    def yellow(signals: Mapping[Movement, str]) -> dict[Movement, str]:
        return {movement: "y" for movement in signals}

    return [
        PhaseSpec("arterial lefts", timing.left, {**eb_left, ("WB", "l"): "G"}),
        PhaseSpec("WB left yellow", LEFT_YELLOW, {**eb_left, ("WB", "l"): "y"}),
        PhaseSpec("WB left clearance", LEFT_CLEARANCE, eb_left),
        PhaseSpec("EB lead", timing.eb_lead, {**eb_left, **eb_through}),
        PhaseSpec("EB left yellow", LEFT_YELLOW, {("EB", "l"): "y", **eb_through}),
        PhaseSpec("EB left clearance", LEFT_CLEARANCE, eb_through),
        PhaseSpec("arterial through", timing.through, {**eb_through, **wb_through}),
        PhaseSpec("arterial yellow", YELLOW, yellow({**eb_through, **wb_through})),
        PhaseSpec("all red", ALL_RED, {}),
        PhaseSpec("side street", timing.side, side),
        PhaseSpec("side street yellow", YELLOW, yellow(side)),
        PhaseSpec("all red", ALL_RED, {}),
    ]


def _arterial_shape(x_from: float, x_to: float, bay: bool) -> tuple[tuple[float, float], ...]:
    """Geometry of an arterial edge section.

    The arterial has a one-lane median.  Sections without a bay run half a
    lane to the right of the axis (their lanes lie right of the geometry);
    bay sections run half a lane to the left of the axis so that the extra
    leftmost lane occupies the median while the through lanes stay straight.
    """
    heading = 1.0 if x_to > x_from else -1.0
    # The left side of eastbound traffic is +y, of westbound traffic -y.
    offset = heading * (LANE_WIDTH / 2 if bay else -LANE_WIDTH / 2)
    y = CORRIDOR_AXIS_Y + offset
    return ((x_from, y), (x_to, y))


def _arterial_approach(
    spec: NetworkSpec, edge_id: str, from_node: Node, to_node: Node
) -> str:
    """Add an arterial approach with a left-turn bay at its downstream end.

    The approach is split at the start of the bay: ``edge_id`` is the
    upstream two-lane section, ``<edge_id>_bay`` the downstream three-lane
    section ending at the signal.  Returns the id of the bay section.
    """
    heading = 1.0 if to_node.x > from_node.x else -1.0
    side = "W" if heading > 0 else "E"
    bay_node = Node(f"{to_node.id}_bay{side}", to_node.x - heading * CORRIDOR_BAY_LENGTH, CORRIDOR_AXIS_Y)
    bay_edge = f"{edge_id}_bay"
    spec.nodes.append(bay_node)
    spec.edges.append(
        Edge(edge_id, from_node.id, bay_node.id, CORRIDOR_ARTERIAL_LANES, CORRIDOR_ARTERIAL_PRIORITY,
             shape=_arterial_shape(from_node.x, bay_node.x, bay=False))
    )
    spec.edges.append(
        Edge(bay_edge, bay_node.id, to_node.id, CORRIDOR_ARTERIAL_LANES + 1, CORRIDOR_ARTERIAL_PRIORITY,
             shape=_arterial_shape(bay_node.x, to_node.x, bay=True))
    )
    # Through lanes continue; the inner lane also feeds the bay.
    spec.connections.extend(Connection(edge_id, lane, bay_edge, lane) for lane in range(CORRIDOR_ARTERIAL_LANES))
    spec.connections.append(
        Connection(edge_id, CORRIDOR_ARTERIAL_LANES - 1, bay_edge, CORRIDOR_ARTERIAL_LANES)
    )
    return bay_edge


def _arterial_exit(spec: NetworkSpec, from_node: Node, to_node: Node) -> str:
    """Add an arterial link without a bay (towards an unsignalised end)."""
    edge_id = f"{from_node.id}_{to_node.id}"
    spec.edges.append(
        Edge(edge_id, from_node.id, to_node.id, CORRIDOR_ARTERIAL_LANES, CORRIDOR_ARTERIAL_PRIORITY,
             shape=_arterial_shape(from_node.x, to_node.x, bay=False))
    )
    return edge_id


def corridor_spec() -> NetworkSpec:
    """The west-east arterial with signals J1..J6."""
    spec = NetworkSpec("corridor")
    xs = [CORRIDOR_END_LENGTH]
    for gap in CORRIDOR_SPACING:
        xs.append(xs[-1] + gap)
    y = CORRIDOR_AXIS_Y
    signals = [Node(jid, x, y, "traffic_light") for jid, x in zip(CORRIDOR_SIGNALS, xs, strict=True)]
    west = Node("W", 0.0, y)
    east = Node("E", xs[-1] + CORRIDOR_END_LENGTH, y)
    spec.nodes.extend([west, *signals, east])

    chain = [west, *signals, east]
    # Arterial edge entering / leaving each signal, keyed by (signal, leg).
    arterial_in: dict[tuple[str, Compass], str] = {}
    arterial_out: dict[tuple[str, Compass], str] = {}
    directions: tuple[tuple[int, Compass, Compass], ...] = (
        (1, "W", "E"),   # eastbound: enters via the west leg, leaves via the east leg
        (-1, "E", "W"),  # westbound
    )
    for west_node, east_node in pairwise(chain):
        for heading, entry_leg, exit_leg in directions:
            a, b = (west_node, east_node) if heading > 0 else (east_node, west_node)
            edge_id = f"{a.id}_{b.id}"
            if b.type == "traffic_light":
                arterial_in[(b.id, entry_leg)] = _arterial_approach(spec, edge_id, a, b)
            else:
                _arterial_exit(spec, a, b)
            if a.type == "traffic_light":
                arterial_out[(a.id, exit_leg)] = edge_id

    for signal in signals:
        side_lanes = CORRIDOR_SIDE_LANES.get(signal.id, 1)
        number = signal.id[1:]
        legs: dict[Compass, Leg] = {}
        side_legs: tuple[tuple[Compass, float], ...] = (("N", 1.0), ("S", -1.0))
        for compass, dy in side_legs:
            end = Node(f"{compass}{number}", signal.x, y + dy * CORRIDOR_SIDE_LENGTH)
            spec.nodes.append(end)
            inbound, outbound = f"{end.id}_{signal.id}", f"{signal.id}_{end.id}"
            spec.edges.append(Edge(inbound, end.id, signal.id, side_lanes, CORRIDOR_SIDE_PRIORITY))
            spec.edges.append(Edge(outbound, signal.id, end.id, side_lanes, CORRIDOR_SIDE_PRIORITY))
            legs[compass] = Leg(inbound, side_lanes, outbound, side_lanes)
        arterial_legs: tuple[Compass, ...] = ("W", "E")
        for compass in arterial_legs:
            legs[compass] = Leg(
                arterial_in[(signal.id, compass)], CORRIDOR_ARTERIAL_LANES + 1,
                arterial_out[(signal.id, compass)], CORRIDOR_ARTERIAL_LANES,
                left_bay=True,
            )
        spec.connections.extend(junction_connections(legs))
        spec.plans[signal.id] = corridor_plan(CORRIDOR_TIMINGS[signal.id])
    return spec


# --------------------------------------------------------------------------
# Grid: 3x3 signalised grid
# --------------------------------------------------------------------------

GRID_SIZE = 3
#: Distance between neighbouring grid junctions [m].
GRID_SPACING = 300.0
#: Length of the boundary entry/exit links [m].
GRID_BOUNDARY_LENGTH = 200.0
#: Lanes per direction on the west-east streets (rows) and north-south
#: streets (columns).
GRID_ROW_LANES = 2
GRID_COLUMN_LANES = 1
GRID_ROW_PRIORITY = 3
GRID_COLUMN_PRIORITY = 2


@dataclass(frozen=True)
class GridTiming:
    """Green times [s] of the two stages of a grid signal."""

    west_east: int
    north_south: int


#: Same plan at every grid junction: 33 + 27 s green + 2 x (4 + 2) s = 72 s.
GRID_TIMING = GridTiming(west_east=33, north_south=27)


def grid_plan(timing: GridTiming) -> list[PhaseSpec]:
    """Two-stage plan; left turns are permissive and yield to opposing traffic."""

    def stage(approaches: Iterable[Approach]) -> dict[Movement, str]:
        return {(a, t): ("g" if t == "l" else "G") for a in approaches for t in ("r", "s", "l")}

    west_east = stage(("EB", "WB"))
    north_south = stage(("NB", "SB"))
    return [
        PhaseSpec("west-east", timing.west_east, west_east),
        PhaseSpec("west-east yellow", YELLOW, {m: "y" for m in west_east}),
        PhaseSpec("all red", ALL_RED, {}),
        PhaseSpec("north-south", timing.north_south, north_south),
        PhaseSpec("north-south yellow", YELLOW, {m: "y" for m in north_south}),
        PhaseSpec("all red", ALL_RED, {}),
    ]


def grid_spec() -> NetworkSpec:
    """The 3x3 grid G00..G22 with boundary nodes N*, S*, W*, E*."""
    spec = NetworkSpec("grid")
    last = GRID_SIZE - 1
    x0 = GRID_BOUNDARY_LENGTH
    y0 = GRID_BOUNDARY_LENGTH + last * GRID_SPACING  # y of row 0 (north)
    add = spec.nodes.append
    for row in range(GRID_SIZE):
        for col in range(GRID_SIZE):
            add(Node(f"G{row}{col}", x0 + col * GRID_SPACING, y0 - row * GRID_SPACING, "traffic_light"))
    # Boundary nodes: N*/S* continue the columns, W*/E* continue the rows.
    for i in range(GRID_SIZE):
        add(Node(f"N{i}", x0 + i * GRID_SPACING, y0 + GRID_BOUNDARY_LENGTH))
    for i in range(GRID_SIZE):
        add(Node(f"S{i}", x0 + i * GRID_SPACING, y0 - last * GRID_SPACING - GRID_BOUNDARY_LENGTH))
    for i in range(GRID_SIZE):
        add(Node(f"W{i}", x0 - GRID_BOUNDARY_LENGTH, y0 - i * GRID_SPACING))
    for i in range(GRID_SIZE):
        add(Node(f"E{i}", x0 + last * GRID_SPACING + GRID_BOUNDARY_LENGTH, y0 - i * GRID_SPACING))

    def neighbour(row: int, col: int, compass: Compass) -> str:
        if compass == "N":
            return f"G{row - 1}{col}" if row > 0 else f"N{col}"
        if compass == "S":
            return f"G{row + 1}{col}" if row < last else f"S{col}"
        if compass == "W":
            return f"G{row}{col - 1}" if col > 0 else f"W{row}"
        return f"G{row}{col + 1}" if col < last else f"E{row}"

    def lanes(compass: Compass) -> int:
        return GRID_ROW_LANES if compass in ("W", "E") else GRID_COLUMN_LANES

    def priority(compass: Compass) -> int:
        return GRID_ROW_PRIORITY if compass in ("W", "E") else GRID_COLUMN_PRIORITY

    added: set[str] = set()
    for row in range(GRID_SIZE):
        for col in range(GRID_SIZE):
            jid = f"G{row}{col}"
            legs: dict[Compass, Leg] = {}
            for compass in CLOCKWISE:
                other = neighbour(row, col, compass)
                for a, b in ((other, jid), (jid, other)):
                    edge_id = f"{a}_{b}"
                    if edge_id not in added:
                        added.add(edge_id)
                        spec.edges.append(Edge(edge_id, a, b, lanes(compass), priority(compass)))
                legs[compass] = Leg(f"{other}_{jid}", lanes(compass), f"{jid}_{other}", lanes(compass))
            spec.connections.extend(junction_connections(legs))
            spec.plans[jid] = grid_plan(GRID_TIMING)
    return spec


# --------------------------------------------------------------------------
# Plain-XML writers
# --------------------------------------------------------------------------

def _fmt(value: float) -> str:
    """Format a number compactly and reproducibly."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _write_xml(path: Path, root_tag: str, schema: str, elements: Iterable[tuple[str, dict[str, str]]]) -> None:
    """Write a plain-XML file with one child element per item of ``elements``."""
    root = ET.Element(root_tag, {
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": f"http://sumo.dlr.de/xsd/{schema}",
    })
    for tag, attrib in elements:
        ET.SubElement(root, tag, attrib)
    _save(path, root)


def _save(path: Path, root: ET.Element) -> None:
    """Write ``root`` as an indented XML document with a provenance comment."""
    ET.indent(root, space="    ")
    text = ET.tostring(root, encoding="unicode")
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- Generated by networks/build.py; edit the script, not this file. -->\n"
    )
    path.write_text(header + text + "\n", encoding="utf-8")


def write_plain_inputs(spec: NetworkSpec) -> None:
    """Write the node, edge and connection files of ``spec``."""
    directory = spec.directory
    directory.mkdir(parents=True, exist_ok=True)
    _write_xml(directory / spec.file("nod.xml"), "nodes", "nodes_file.xsd", (
        ("node", {"id": n.id, "x": _fmt(n.x), "y": _fmt(n.y), "type": n.type}) for n in spec.nodes
    ))

    def edge_attrib(edge: Edge) -> dict[str, str]:
        attrib = {
            "id": edge.id, "from": edge.from_node, "to": edge.to_node, "priority": str(edge.priority),
            "numLanes": str(edge.num_lanes), "speed": _fmt(edge.speed),
        }
        if edge.shape is not None:
            attrib["shape"] = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in edge.shape)
        return attrib

    _write_xml(directory / spec.file("edg.xml"), "edges", "edges_file.xsd", (
        ("edge", edge_attrib(e)) for e in spec.edges
    ))
    _write_xml(directory / spec.file("con.xml"), "connections", "connections_file.xsd", (
        ("connection", {"from": c.from_edge, "to": c.to_edge,
                        "fromLane": str(c.from_lane), "toLane": str(c.to_lane)})
        for c in spec.connections
    ))


def compose_programs(
    spec: NetworkSpec, link_indices: Mapping[str, Mapping[ConnectionKey, int]]
) -> dict[str, list[tuple[PhaseSpec, str]]]:
    """Translate the movement-level plans into SUMO state strings.

    ``link_indices`` maps each traffic-light id to the link index of every
    connection it controls.
    """
    movement_of = {c.key: c.movement for c in spec.connections if c.movement is not None}
    programs: dict[str, list[tuple[PhaseSpec, str]]] = {}
    for tls_id, plan in spec.plans.items():
        links = link_indices.get(tls_id)
        if not links:
            raise BuildError(f"{spec.name}: netconvert did not create traffic light {tls_id}")
        size = max(links.values()) + 1
        movements: list[set[Movement]] = [set() for _ in range(size)]
        for key, index in links.items():
            if key not in movement_of:
                raise BuildError(f"{spec.name}: unexpected signalised connection {key} at {tls_id}")
            movements[index].add(movement_of[key])
        phases = []
        for phase in plan:
            state = []
            for index, group in enumerate(movements):
                letters = {phase.signals.get(m, "r") for m in group}
                if len(letters) != 1:
                    raise BuildError(f"{spec.name}: link {index} of {tls_id} has no unique signal ({group})")
                state.append(letters.pop())
            phases.append((phase, "".join(state)))
        programs[tls_id] = phases
    return programs


def write_programs(
    spec: NetworkSpec,
    programs: Mapping[str, Sequence[tuple[PhaseSpec, str]]],
    link_indices: Mapping[str, Mapping[ConnectionKey, int]],
) -> None:
    """Write the ``.tll.xml`` file: static programs plus controlled links."""
    root = ET.Element("tlLogics", {
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "http://sumo.dlr.de/xsd/tllogic_file.xsd",
    })
    for tls_id, phases in programs.items():
        logic = ET.SubElement(root, "tlLogic", {"id": tls_id, "type": "static", "programID": "0", "offset": "0"})
        for phase, state in phases:
            ET.SubElement(logic, "phase", {"duration": str(phase.duration), "state": state, "name": phase.name})
    for tls_id, links in link_indices.items():
        for (from_edge, from_lane, to_edge, to_lane), index in sorted(links.items(), key=lambda item: item[1]):
            ET.SubElement(root, "connection", {
                "from": from_edge, "to": to_edge, "fromLane": str(from_lane), "toLane": str(to_lane),
                "tl": tls_id, "linkIndex": str(index),
            })
    _save(spec.directory / spec.file("tll.xml"), root)


# --------------------------------------------------------------------------
# netconvert
# --------------------------------------------------------------------------

NETCONVERT_OPTIONS = (
    "--output.original-names", "false",
    "--offset.disable-normalization", "true",
    "--no-turnarounds", "true",
    "--default.lanewidth", _fmt(LANE_WIDTH),
    "--tls.default-type", "static",
)

#: The varying part of netconvert's header comment.
_GENERATED_ON = re.compile(r"^<!-- generated on [^>\n]*? by ", re.MULTILINE)


def find_tool(name: str) -> tuple[Path, dict[str, str]]:
    """Locate a SUMO binary and the environment to run it with.

    Looks in the ``eclipse-sumo`` Python package first, then in ``$SUMO_HOME``,
    next to the running Python interpreter and finally on ``PATH``.
    """
    env = dict(os.environ)
    try:
        import sumo  # type: ignore[import-untyped]

        home = Path(sumo.SUMO_HOME)
        candidate = home / "bin" / name
        if candidate.is_file():
            env.setdefault("SUMO_HOME", str(home))
            return candidate, env
    except ImportError:
        pass
    if "SUMO_HOME" in os.environ:
        candidate = Path(os.environ["SUMO_HOME"]) / "bin" / name
        if candidate.is_file():
            return candidate, env
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise BuildError(f"cannot find {name}; install eclipse-sumo (pip install eclipse-sumo) or set SUMO_HOME")
    return Path(found), env


def run_netconvert(spec: NetworkSpec, output: Path, with_programs: bool) -> None:
    """Build ``output`` from the plain-XML inputs of ``spec``."""
    netconvert, env = find_tool("netconvert")
    inputs = [
        "--node-files", spec.file("nod.xml"),
        "--edge-files", spec.file("edg.xml"),
        "--connection-files", spec.file("con.xml"),
    ]
    if with_programs:
        inputs += ["--tllogic-files", spec.file("tll.xml")]
    # Relative names keep the configuration recorded in the output reproducible.
    output_name = output.name if output.parent == spec.directory else str(output)
    command = [str(netconvert), *inputs, *NETCONVERT_OPTIONS, "--output-file", output_name]
    try:
        result = subprocess.run(
            command, cwd=spec.directory, env=env, capture_output=True, text=True, check=False
        )
    except OSError as error:
        raise BuildError(f"cannot run {netconvert}: {error}") from error
    messages = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    if result.returncode != 0:
        errors = [line for line in messages if line.startswith("Error")] or messages or ["(no output)"]
        raise BuildError(f"netconvert failed for {spec.name} (exit {result.returncode}): {errors[0]}")
    warnings = [line for line in messages if line.startswith("Warning")]
    if warnings:
        raise BuildError(f"netconvert warned for {spec.name}: {warnings[0]}")


def _read_net(net_file: Path, with_programs: bool = False) -> Any:
    """Load a network with sumolib (imported lazily, it ships with SUMO)."""
    try:
        import sumolib  # type: ignore[import-untyped]
    except ImportError as error:
        raise BuildError(
            "sumolib is required (pip install sumolib, or add $SUMO_HOME/tools to PYTHONPATH)"
        ) from error
    return sumolib.net.readNet(str(net_file), withPrograms=with_programs)


def read_link_indices(net_file: Path) -> dict[str, dict[ConnectionKey, int]]:
    """Link index of every signalised connection, per traffic light."""
    net = _read_net(net_file)
    result: dict[str, dict[ConnectionKey, int]] = {}
    for tls in net.getTrafficLights():
        links: dict[ConnectionKey, int] = {}
        for in_lane, out_lane, index in tls.getConnections():
            key = (in_lane.getEdge().getID(), in_lane.getIndex(), out_lane.getEdge().getID(), out_lane.getIndex())
            links[key] = index
        result[tls.getID()] = links
    return result


def strip_timestamp(net_file: Path) -> None:
    """Drop the generation date from netconvert's header comment."""
    text = net_file.read_text(encoding="utf-8")
    net_file.write_text(_GENERATED_ON.sub("<!-- generated by ", text, count=1), encoding="utf-8")


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

def verify(spec: NetworkSpec, net_file: Path, programs: Mapping[str, Sequence[tuple[PhaseSpec, str]]]) -> None:
    """Check the built network against ``spec`` and the signal safety rules.

    * every traffic light exists with program ``"0"`` exactly as composed,
    * no two conflicting links are green at the same time unless one of them
      is a minor green (``g``) that yields to the other,
    * every green ends with a yellow, and no link turns green while a
      conflicting link still shows yellow (clearance).
    """
    net = _read_net(net_file, with_programs=True)
    edge_ids = {edge.getID() for edge in net.getEdges()}
    missing = sorted({e.id for e in spec.edges} - edge_ids)
    if missing:
        raise BuildError(f"{spec.name}: edges missing from the built network: {', '.join(missing)}")

    for tls_id, expected in programs.items():
        tls = net.getTLS(tls_id)
        program = tls.getPrograms().get("0")
        if program is None:
            raise BuildError(f"{spec.name}: traffic light {tls_id} has no program '0'")
        states = [phase.state for phase in program.getPhases()]
        if states != [state for _, state in expected]:
            raise BuildError(f"{spec.name}: program of {tls_id} differs from the composed plan")

        try:
            check_signal_safety(_ConflictTable(net.getNode(tls_id), tls), states)
        except BuildError as error:
            raise BuildError(f"{spec.name}: {tls_id}: {error}") from None


class _ConflictTable:
    """Right-of-way relations between the links of one traffic light.

    Built from the ``<request>`` foes/response matrix that netconvert wrote for
    the junction, so it reflects the conflicts SUMO will actually use.
    """

    def __init__(self, node: Any, tls: Any) -> None:
        self._node = node
        # Junction-level connections (with their right-of-way index) per link.
        self._links: dict[int, list[tuple[Any, int]]] = {}
        for in_lane, out_lane, index in tls.getConnections():
            for conn in in_lane.getOutgoing():
                if conn.getToLane() == out_lane:
                    self._links.setdefault(index, []).append((conn, node.getLinkIndex(conn)))

    @property
    def links(self) -> list[int]:
        """All link indices of the traffic light."""
        return sorted(self._links)

    def foes(self, a: int, b: int) -> bool:
        """Whether links ``a`` and ``b`` cross or merge."""
        return any(self._node.areFoes(i, j) for _, i in self._links[a] for _, j in self._links[b])

    def yields(self, minor: int, major: int) -> bool:
        """Whether link ``minor`` gives way to every conflicting part of ``major``."""
        return all(
            self._node.forbids(major_conn, minor_conn)
            for minor_conn, i in self._links[minor]
            for major_conn, j in self._links[major]
            if self._node.areFoes(i, j)
        )


def check_signal_safety(table: _ConflictTable, states: Sequence[str]) -> None:
    """Raise :class:`BuildError` if the cyclic program ``states`` is unsafe."""
    links = table.links
    for number, state in enumerate(states):
        green = [i for i in links if state[i] in GREEN_STATES]
        for a, b in combinations(green, 2):
            if not table.foes(a, b):
                continue
            if not ((state[a] == "g" and table.yields(a, b)) or (state[b] == "g" and table.yields(b, a))):
                raise BuildError(f"phase {number} gives conflicting links {a} and {b} right of way")
        previous = states[number - 1]
        for i in links:
            if previous[i] in GREEN_STATES and state[i] == "r":
                raise BuildError(f"link {i} goes from green to red without yellow (phase {number})")
            if previous[i] == "y" and state[i] in GREEN_STATES:
                raise BuildError(f"link {i} goes from yellow back to green (phase {number})")
            if previous[i] == "r" and state[i] in GREEN_STATES:
                for j in links:
                    if previous[j] == "y" and table.foes(i, j):
                        raise BuildError(
                            f"phase {number} starts link {i} while conflicting link {j} is still yellow"
                        )


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

NETWORKS: dict[str, Callable[[], NetworkSpec]] = {
    "corridor": corridor_spec,
    "grid": grid_spec,
}


def build(spec: NetworkSpec) -> Path:
    """Write the inputs of ``spec``, run netconvert twice and verify the result."""
    write_plain_inputs(spec)
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-") as tmp:
        probe = Path(tmp) / spec.file("net.xml")
        run_netconvert(spec, probe, with_programs=False)
        link_indices = read_link_indices(probe)
    unexpected = sorted(set(link_indices) - set(spec.plans))
    if unexpected:
        raise BuildError(f"{spec.name}: unexpected traffic lights {', '.join(unexpected)}")
    programs = compose_programs(spec, link_indices)
    write_programs(spec, programs, link_indices)
    net_file = spec.directory / spec.file("net.xml")
    run_netconvert(spec, net_file, with_programs=True)
    strip_timestamp(net_file)
    verify(spec, net_file, programs)
    return net_file


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description="Regenerate the bundled SUMO networks.")
    parser.add_argument(
        "networks", nargs="*", metavar="NAME",
        help=f"networks to build: {', '.join(NETWORKS)} (default: all)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.networks if name not in NETWORKS]
    if unknown:
        parser.error(f"unknown network(s): {', '.join(unknown)}")
    names = args.networks or list(NETWORKS)
    try:
        for name in names:
            net_file = build(NETWORKS[name]())
            print(f"built {net_file.relative_to(NETWORKS_DIR.parent)}")
    except BuildError as error:
        print(f"build.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
