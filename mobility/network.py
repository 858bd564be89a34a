"""The signalised network, read offline from a SUMO ``.net.xml`` with sumolib.

:class:`SignalNetwork` knows every lane (including internal lanes inside junctions), every
traffic-light-controlled link (incoming lane → outgoing lane, via internal lanes, link index), the
signal programs, and a networkx graph of edges. It never talks to a running SUMO.

Throughout ``mobility`` a *junction* means a signal controller (a SUMO traffic-light id): that is
what a controller drives and what a planner times. In most networks it equals the junction id; where
SUMO joined several nodes into one controller, the controller id names them all.
"""

from __future__ import annotations

import functools
import gzip
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import NetworkError


@dataclass(frozen=True)
class Link:
    """One signal-controlled connection: ``state[index]`` of the program drives it."""

    index: int
    in_lane: str
    out_lane: str
    via: tuple[str, ...]  # internal lanes crossed, in order
    direction: str  # SUMO direction code: s, l, r, t, L, R


@dataclass(frozen=True)
class Phase:
    """One phase of a signal program (durations in seconds)."""

    state: str
    duration: float
    min_dur: float
    max_dur: float

    @property
    def is_green(self) -> bool:
        """A phase that gives some movement right of way and is not a transition."""
        return ("G" in self.state or "g" in self.state) and "y" not in self.state and "Y" not in self.state


@dataclass(frozen=True)
class Junction:
    """A signal controller and what it controls."""

    id: str
    links: tuple[Link, ...]
    phases: tuple[Phase, ...]  # the network's own program (the one SUMO starts with)
    program_id: str
    offset_s: float
    incoming_lanes: tuple[str, ...]  # lanes ending at the stop line, ordered by first link index
    outgoing_lanes: tuple[str, ...]
    internal_lanes: tuple[str, ...]
    #: pairs ``(a, b)``, ``a < b``, of link indices whose paths cross or merge (SUMO's junction logic,
    #: ``<request foes=…>``): they must never both show a priority green ``G``
    foes: frozenset[tuple[int, int]] = frozenset()
    #: protected-turn tails are stages (:attr:`protected_turn_tails`); set for the controllers that
    #: ask for them (:meth:`~mobility.controllers.Controller.protected_turn_stages`), see
    #: :meth:`SignalNetwork.with_turn_stages`
    turn_stages: bool = False

    @property
    def green_phases(self) -> tuple[int, ...]:
        """Indices (into ``phases``) of the green phases (stages) a controller may choose between.

        A phase with green and no yellow is a stage unless it is the clearance tail of a transition:
        it follows a yellow phase and only keeps movements that were already green through it.
        Every movement the program serves is served by some stage: a tail that holds a link's only
        green of the program is a stage (hamburg-tavf's junction ``94`` releases its left turns
        permissively inside a yellow and then protects them in a 6 s phase of their own, with
        ``minDur``/``maxDur``: read as a tail, those turns never got a green from a controller).

        With ``turn_stages``, so is a tail that holds a link's only protected green (``'G'``;
        elsewhere ``'g'``, yielding to the opposing stream): the protected turn phase netconvert
        writes after a through stage with permissive left turns (6 s, ``minDur`` 5, ``maxDur`` 50 in
        its actuated programs), which SUMO's actuated logic extends. Read as a tail, ``actuated``
        (with every program replaced) could serve those turns only permissively, and at
        hamburg-tavf's ``cluster_683859663`` left-turners waiting inside the junction locked it
        (seed 2: 112 s/veh against 15, 16 teleports). Plans (Webster, green waves, cycle-adaptive)
        and max-pressure keep them as the clearance the program runs them as."""
        return self._stages[0]

    @property
    def protected_turn_tails(self) -> tuple[int, ...]:
        """Indices (into ``green_phases``) of the stages that are a program's protected-turn tail: a
        clearance tail made a stage only because it holds a link's only protected green (``'G'``; the
        link is ``'g'`` in the stage before). Empty unless ``turn_stages``."""
        stages, promoted = self._stages
        return tuple(stages.index(i) for i in promoted)

    @functools.cached_property
    def _stages(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``green_phases`` and, of those, the phases made stages by their protected green alone."""
        out = []
        promoted = []
        n = len(self.phases)
        tails = []
        for i, p in enumerate(self.phases):
            if not p.is_green:
                continue
            prev = self.phases[i - 1] if n > 1 else None
            if prev is not None and ("y" in prev.state or "Y" in prev.state):
                kept = {k for k, c in enumerate(p.state) if c in "Gg"}
                before = {k for k, c in enumerate(prev.state) if c in "Gg"}
                if kept <= before:
                    tails.append(i)
                    continue
            out.append(i)
        covered = {k for i in out for k, c in enumerate(self.phases[i].state) if c in "Gg"}
        protected = {k for i in out for k, c in enumerate(self.phases[i].state) if c == "G"}
        for i in tails:
            state = self.phases[i].state
            only = {k for k, c in enumerate(state) if c in "Gg"} - covered
            only_protected = {k for k, c in enumerate(state) if c == "G"} - protected if self.turn_stages else set()
            if only or only_protected:
                out.append(i)
                if not only:
                    promoted.append(i)
                covered |= only
                protected |= only_protected
        return tuple(sorted(out)), tuple(promoted)

    def transition(self, a: int, b: int) -> tuple[Phase, ...] | None:
        """The program's own phases between stage ``a`` and stage ``b`` (indices into
        ``green_phases``): the phases met going forward in the program from ``a`` to ``b`` (yellows,
        clearance tails, red-amber, and intermediate stages), or None if that path shows a green to
        a link that neither ``a`` nor ``b`` serves (the program never goes from ``a`` straight to
        ``b``: it serves another stage in between). ``()`` if ``b`` follows ``a`` directly."""
        if a == b:
            return ()
        greens = self.green_phases
        ia, ib, n = greens[a], greens[b], len(self.phases)
        allowed = {k for i in (ia, ib) for k, c in enumerate(self.phases[i].state) if c in "Gg"}
        path = []
        k = (ia + 1) % n
        while k != ib:
            ph = self.phases[k]
            if any(c in "Gg" and i not in allowed for i, c in enumerate(ph.state)):
                return None
            path.append(ph)
            k = (k + 1) % n
        return tuple(path)

    @property
    def cycle_s(self) -> float:
        return sum(p.duration for p in self.phases)

    def with_states(self, states: Sequence[str]) -> Junction:
        """This junction with its program's signal states replaced, phase by phase (durations kept)."""
        return replace(self, phases=tuple(Phase(st, p.duration, p.min_dur, p.max_dur) for st, p in zip(states, self.phases)))

    def green_lanes(self) -> list[tuple[str, ...]]:
        """For each green phase (in ``green_phases`` order), the incoming lanes it serves with
        priority ('G')."""
        return self._lanes_with("G")

    def served_lanes(self) -> list[tuple[str, ...]]:
        """For each green phase (in ``green_phases`` order), the incoming lanes with at least one link
        green in it, priority (``'G'``) or permissive (``'g'``): the lanes whose vehicles call it."""
        return self._lanes_with("Gg")

    def _lanes_with(self, signals: str) -> list[tuple[str, ...]]:
        """For each green phase, the incoming lanes (in link order) with a link showing one of ``signals``."""
        out = []
        for i in self.green_phases:
            st = self.phases[i].state
            out.append(tuple(dict.fromkeys(lk.in_lane for lk in self.links if lk.index < len(st) and st[lk.index] in signals)))
        return out

    def extending_lanes(self) -> list[tuple[str, ...]]:
        """For each green phase (in ``green_phases`` order), the served lanes whose detectors may extend
        it: every link from the lane has green in it, priority (``'G'``) or permissive (``'g'``).

        A vehicle on a lane shared by movements of different stages may be waiting for one that is
        red; its detector would hold a green it cannot use. At hamburg-tavf's ``cluster_18`` a right
        turn green in both stages put the main road's lane into the side-road stage, whose green the
        main road's vehicles on that lane then held (in every stage with the straight movement of
        the lane red). SUMO's own actuated logic applies the same test to its loops
        (``MSActuatedTrafficLightLogic::init``, "check1"), and further counts a permissive link as
        green only beside a priority one on its lane; that stricter reading took dedicated
        permissive left-turn lanes and shared through-and-left lanes out of their stages, and
        locked RESCO's ingolstadt21 (seed 2: 263.7 s/veh against 128.1 with this rule). A phase
        with no such lane keeps every lane it serves."""
        by_lane: dict[str, list[Link]] = {}
        for lk in self.links:
            by_lane.setdefault(lk.in_lane, []).append(lk)
        out = []
        for i, served in zip(self.green_phases, self.served_lanes()):
            st = self.phases[i].state
            out.append(tuple(lane for lane in served
                             if all(lk.index < len(st) and st[lk.index] in "Gg" for lk in by_lane[lane])) or served)
        return out


@dataclass
class _LaneInfo:
    length: float
    speed: float
    edge: str
    internal: bool
    successors: list[tuple[tuple[str, ...], str, str]] = field(default_factory=list)  # (via, to, tls)
    predecessors: list[tuple[tuple[str, ...], str, str]] = field(default_factory=list)  # (via, from, tls)


class SignalNetwork:
    """Signal controllers, lanes and the edge graph of one SUMO network file."""

    def __init__(self, path: Path, junctions: dict[str, Junction], lanes: dict[str, _LaneInfo],
                 graph: nx.DiGraph, demand: Any = None) -> None:
        self.path = path
        self.junctions = junctions
        self.lanes = lanes
        self.graph = graph
        #: the run's demand per movement (a :class:`mobility.inputs.demand.Demand`), set for controllers
        #: that declare ``needs_demand = True``; None otherwise
        self.demand = demand

    def with_turn_stages(self) -> SignalNetwork:
        """A view of this network in which the junctions whose program SUMO runs as vehicle-actuated
        logic (``type="actuated"`` or ``"delay_based"`` in the network file) take protected-turn tails
        as stages (:attr:`Junction.turn_stages`): such a program extends the tail (``minDur`` <
        ``maxDur``) as it does any stage. In a fixed-time program the tail is a fixed clearance at the
        end of the through stage, and stays one: served as a stage on RESCO's fixed-time cologne
        maps (whose turn lanes are shared with the through movement, ``rGG``), ``actuated`` went from
        −46 % to +88 % delay against the program on cologne1 and from −57 % to +106 % on cologne8
        (docs/benchmarks.md, "Sixth pass")."""
        actuated = self.vehicle_actuated()
        junctions = {jid: replace(j, turn_stages=True) if jid in actuated else j for jid, j in self.junctions.items()}
        return SignalNetwork(self.path, junctions, self.lanes, self.graph, self.demand)

    def vehicle_actuated(self) -> set[str]:
        """Signals whose own program (the one SUMO starts with) is not fixed-time (``type`` other than
        ``static`` in the network file); none for a network built in memory."""
        kinds = program_kinds(self.path) if self.path.exists() else {}
        return {jid for jid, j in self.junctions.items() if kinds.get((jid, j.program_id), "static") != "static"}

    def with_demand(self, demand: Any) -> SignalNetwork:
        """A view of this network carrying the run's demand (the network itself is shared)."""
        return SignalNetwork(self.path, self.junctions, self.lanes, self.graph, demand)

    @property
    def junction_ids(self) -> list[str]:
        """Signal controller ids, sorted."""
        return sorted(self.junctions)

    def has_edge(self, edge_id: str) -> bool:
        return edge_id in self.graph

    def lane_length(self, lane: str) -> float:
        return self.lanes[lane].length

    def lane_speed(self, lane: str) -> float:
        return self.lanes[lane].speed

    def detector_sites(self, lane: str, distance_m: float) -> list[tuple[str, float]]:
        """Where induction loops ``distance_m`` upstream of incoming lane ``lane``'s stop line go:
        ``[(lane id, position from the lane's start in m), …]``. On a lane at least ``distance_m``
        long, one loop on it. On a shorter lane (real networks hold 1–10 m pieces between a
        junction's clusters) the loops go on the lanes feeding it through *unsignalised*
        connections, one per feeding chain, each at ``distance_m`` along the chain (internal junction
        lanes do not count), as SUMO's own actuated logic does for a lane with one predecessor; a
        chain that ends earlier (network boundary, a signal-controlled connection) gets its loop at
        the start of its last lane. A vehicle over any of them is a vehicle approaching ``lane``."""
        sites: dict[tuple[str, float], None] = {}
        stack: list[tuple[str, float, tuple[str, ...]]] = [(lane, 0.0, (lane,))]  # lane, metres below it
        while stack:
            cur, below, seen = stack.pop()
            length = self.lanes[cur].length
            if below + length >= distance_m - 1e-9:
                sites[(cur, round(below + length - distance_m, 3))] = None
                continue
            ups = [frm for _via, frm, tls in self.lanes[cur].predecessors
                   if not tls and frm not in seen and not self.lanes[frm].internal]
            if not ups:
                sites[(cur, 0.0)] = None
            for frm in ups:
                stack.append((frm, below + length, (*seen, frm)))
        return list(sites)

    def approach(self, lane: str, distance_m: float) -> dict[str, float]:
        """The lanes upstream of incoming lane ``lane`` whose vehicles queue for its stop line: the
        chain of lanes feeding it through unsignalised connections, up to ``distance_m`` upstream of
        the stop line (``lane``'s own length counts; a signal-controlled connection ends the chain:
        what waits there is the previous signal's queue). Returns ``{upstream lane: weight}``, the
        weight being the expected share of that lane's vehicles bound for ``lane``: a lane feeding
        ``n`` lanes gives each ``1/n`` (vehicles are not told apart by route), times the fraction of
        its length inside ``distance_m``. Empty if ``lane`` is at least ``distance_m`` long."""
        out: dict[str, float] = {}
        stack: list[tuple[str, float, float, tuple[str, ...]]] = [(lane, self.lanes[lane].length, 1.0, (lane,))]
        while stack:
            cur, dist, w, seen = stack.pop()
            if dist >= distance_m - 1e-9:
                continue
            for _via, frm, tls in self.lanes[cur].predecessors:
                if tls or frm in seen or self.lanes[frm].internal:
                    continue
                n = max(1, len({to for _v, to, _t in self.lanes[frm].successors}))
                length = self.lanes[frm].length
                share = w / n
                out[frm] = out.get(frm, 0.0) + share * min(1.0, (distance_m - dist) / max(length, 1e-9))
                stack.append((frm, dist + length, share, (*seen, frm)))
        return out

    @staticmethod
    def load(path: str | Path) -> SignalNetwork:
        """Read a network (cached per path and modification time)."""
        p = Path(path).resolve()
        if not p.exists():
            raise NetworkError(f"{p}: network file does not exist")
        return _load_cached(p, p.stat().st_mtime_ns)


def _cycle_length(phases: Sequence[Any]) -> int:
    """How many phases of a program SUMO cycles through: the program order from phase 0, each phase
    followed by its ``next`` where it names one. Real programs keep phases the cycle never reaches
    after a ``next="0"`` (10 of hamburg-tavf's 43: copies of the main stages, a tram or bus branch
    called only by the field controller); they are dropped when they are the program's tail, so
    that stages, cycle length and plans are those SUMO runs. A program whose ``next`` branches, or
    skips phases in the middle, is kept whole."""
    n, i, seen = len(phases), 0, []
    while i not in seen:
        seen.append(i)
        nxt = [int(k) for k in (getattr(phases[i], "next", None) or [])]
        if len(nxt) > 1 or any(not 0 <= k < n for k in nxt):
            return n
        i = nxt[0] if nxt else (i + 1) % n
    return len(seen) if i == 0 and seen == list(range(len(seen))) else n


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, _mtime: int) -> SignalNetwork:
    import sumolib  # local import: sumolib is only needed when reading networks

    try:
        net = sumolib.net.readNet(str(path), withInternal=True, withPrograms=True)
    except Exception as e:  # sumolib raises SAX errors and assorted KeyErrors on bad files
        raise NetworkError(f"{path}: cannot read SUMO network: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

    lanes: dict[str, _LaneInfo] = {}
    for edge in net.getEdges(withInternal=True):
        internal = edge.getFunction() == "internal"
        for lane in edge.getLanes():
            lanes[lane.getID()] = _LaneInfo(lane.getLength(), lane.getSpeed(), edge.getID(), internal)
    # edge graph: nodes are edges, arcs are connections (what routing and corridors need)
    graph = nx.DiGraph()
    for edge in net.getEdges(withInternal=False):
        graph.add_node(edge.getID(), length=edge.getLength(), speed=edge.getSpeed(),
                       from_node=edge.getFromNode().getID(), to_node=edge.getToNode().getID())

    def via_chain(conn: object) -> tuple[str, ...]:
        chain: list[str] = []
        via = conn.getViaLaneID()  # type: ignore[attr-defined]
        while via and via in lanes and via not in chain:
            chain.append(via)
            nxt = [c.getViaLaneID() for c in net.getLane(via).getOutgoing() if c.getViaLaneID()]
            via = nxt[0] if nxt else ""
        return tuple(chain)

    for edge in net.getEdges(withInternal=False):
        for lane in edge.getLanes():
            for c in lane.getOutgoing():
                to_lane = c.getToLane().getID()
                via = via_chain(c)
                tls = c.getTLSID() or ""
                lanes[lane.getID()].successors.append((via, to_lane, tls))
                lanes[to_lane].predecessors.append((via, lane.getID(), tls))
                to_edge = c.getToLane().getEdge().getID()
                if to_edge in graph:  # walking areas and crossings are no nodes: no attribute-less nodes
                    graph.add_edge(edge.getID(), to_edge)

    junctions: dict[str, Junction] = {}
    for tls in net.getTrafficLights():
        links: dict[int, Link] = {}
        for in_lane, out_lane, idx in tls.getConnections():
            conns = [c for c in in_lane.getOutgoing() if c.getToLane() is out_lane and c.getTLLinkIndex() == idx]
            via = via_chain(conns[0]) if conns else ()
            direction = conns[0].getDirection() if conns else "s"
            links.setdefault(idx, Link(idx, in_lane.getID(), out_lane.getID(), via, direction))
        programs = tls.getPrograms()
        if not programs:
            continue
        prog_id, prog = next(iter(programs.items()))
        run_phases = prog.getPhases()
        phases = tuple(
            Phase(ph.state, float(ph.duration),
                  float(ph.minDur) if ph.minDur is not None and ph.minDur >= 0 else float(ph.duration),
                  float(ph.maxDur) if ph.maxDur is not None and ph.maxDur >= 0 else float(ph.duration))
            for ph in run_phases[:_cycle_length(run_phases)]
        )
        ordered = [links[i] for i in sorted(links)]
        foes = _foes(tls)
        incoming = tuple(dict.fromkeys(lk.in_lane for lk in ordered))
        outgoing = tuple(dict.fromkeys(lk.out_lane for lk in ordered))
        internal = tuple(dict.fromkeys(v for lk in ordered for v in lk.via))
        junctions[tls.getID()] = Junction(
            tls.getID(), tuple(ordered), phases, str(prog_id), float(prog.getOffset() or 0),
            incoming, outgoing, internal, foes,
        )
    return SignalNetwork(path, junctions, lanes, graph)


def _foes(tls: object) -> frozenset[tuple[int, int]]:
    """Link-index pairs of a traffic light whose connections are foes at their junction."""
    by_node: dict[str, list[tuple[int, object, object]]] = {}
    for in_lane, out_lane, idx in tls.getConnections():  # type: ignore[attr-defined]
        for c in in_lane.getOutgoing():
            if c.getToLane() is out_lane and c.getTLLinkIndex() == idx:
                node = in_lane.getEdge().getToNode()
                by_node.setdefault(node.getID(), []).append((idx, node, c))
    out: set[tuple[int, int]] = set()
    for items in by_node.values():
        node = items[0][1]
        try:
            req = [(idx, node.getLinkIndex(c)) for idx, _, c in items]  # type: ignore[attr-defined]
            for i, (a, ra) in enumerate(req):
                for b, rb in req[i + 1:]:
                    if a != b and ra >= 0 and rb >= 0 and node.areFoes(ra, rb):  # type: ignore[attr-defined]
                        out.add((min(a, b), max(a, b)))
        except (IndexError, KeyError, AttributeError):  # a node without junction logic: no foes known
            continue
    return frozenset(out)


def states_problem(j: Junction, states: Sequence[str]) -> str:
    """Why ``states`` cannot replace the signal states of ``j``'s program ("" if they can): one state
    per phase, one character per link, from ``GgyYrOo``; the same green phases (stages) in the same
    places; no two foes (``j.foes``) both ``G``; no link that goes from green to red without yellow."""
    n = len(j.phases)
    width = len(j.phases[0].state) if j.phases else 0
    if len(states) != n:
        return f"have {len(states)} phases; expected {n}"
    for k, st in enumerate(states):
        if not isinstance(st, str) or len(st) != width or set(st) - set("GgyYrOous"):
            return f"phase {k} {st!r}: expected {width} characters from 'GgyYrOous'"
        both = [(a, b) for a, b in sorted(j.foes) if st[a] == "G" and st[b] == "G"]
        if both:
            return f"phase {k} gives conflicting links {both[0][0]} and {both[0][1]} green together"
    for k in range(n):
        a, b = states[k], states[(k + 1) % n]
        lost = [i for i in range(width) if a[i] in "Gg" and b[i] in "rs"]
        if lost:
            return f"phase {k} -> {(k + 1) % n} ends link {lost[0]}'s green without yellow"
    moved = j.with_states(states)
    if moved.green_phases != j.green_phases:
        return f"move the green phases to {list(moved.green_phases)}; expected {list(j.green_phases)}"
    return ""


#: a link between two signals holding at most this many standing vehicles (7.5 m each) is short
SHORT_LINK_VEH = 2


def short_link(network: SignalNetwork, jid: str, lane: str) -> tuple[str, tuple[int, ...]] | None:
    """If outgoing lane ``lane`` of signal ``jid`` is a *short link* into another signal (room for at
    most :data:`SHORT_LINK_VEH` standing vehicles, every connection out of it controlled by that one
    signal): that signal and the link indices leaving ``lane`` there; else None. Two signals joined
    by such a link are one controller in the field: a vehicle stopping on the link stands in the
    junction behind it."""
    info = network.lanes.get(lane)
    if info is None or info.length >= 7.5 * (SHORT_LINK_VEH + 1) or not info.successors:
        return None
    tls = {t for _via, _to, t in info.successors}
    if len(tls) != 1 or "" in tls:
        return None
    (nxt,) = tls
    if nxt == jid or nxt not in network.junctions:
        return None
    ks = tuple(sorted(lk.index for lk in network.junctions[nxt].links if lk.in_lane == lane))
    return (nxt, ks) if ks else None


def short_linked_signals(network: SignalNetwork) -> set[str]:
    """Signals with a short link (:func:`short_link`) to or from another signal."""
    out: set[str] = set()
    for jid in network.junction_ids:
        for lane in network.junctions[jid].outgoing_lanes:
            nxt = short_link(network, jid, lane)
            if nxt is not None:
                out |= {jid, nxt[0]}
    return out


def coupled_signals(network: SignalNetwork) -> list[tuple[str, ...]]:
    """Groups of signals joined by short links (:func:`short_link`) whose programs
    have the same phases (number, green positions and durations) and offset: their programs run in
    lockstep, stage ``i`` of one with stage ``i`` of the other, as one controller. Sorted ids."""
    def key(jid: str) -> tuple[object, ...]:
        j = network.junctions[jid]
        return (j.green_phases, tuple(round(p.duration, 3) for p in j.phases), round(j.offset_s, 3))

    g = nx.Graph()
    for jid in network.junction_ids:
        for lane in network.junctions[jid].outgoing_lanes:
            nxt = short_link(network, jid, lane)
            if nxt is not None and key(jid) == key(nxt[0]):
                g.add_edge(jid, nxt[0])
    return sorted(tuple(sorted(c)) for c in nx.connected_components(g))


def short_link_plan(network: SignalNetwork, kept: set[str]) -> tuple[list[tuple[str, ...]], set[str]]:
    """How a controller treats signals joined by short links, given the signals ``kept`` on their own
    program anyway: the lockstep groups (:func:`coupled_signals`) with no kept member, which decide
    as one junction, and the other short-linked signals (:func:`short_linked_signals`), which are
    left to their programs (how the field controller coordinates them is not known)."""
    groups = [g for g in coupled_signals(network) if not set(g) & kept]
    return groups, short_linked_signals(network) - {m for g in groups for m in g}


@functools.lru_cache(maxsize=8)
def program_kinds(net_file: Path) -> dict[tuple[str, str], str]:
    """``(tls id, program id) -> type`` (``static``, ``actuated``, …) of the programs in a SUMO
    network file (plain or gzipped XML); read once per file."""
    opener = gzip.open if str(net_file).endswith(".gz") else open
    out: dict[tuple[str, str], str] = {}
    with opener(net_file, "rb") as f:
        for _, el in ET.iterparse(f, events=("end",)):
            if el.tag == "tlLogic":
                out[(el.get("id", ""), el.get("programID", ""))] = el.get("type", "static")
            if el.tag in ("edge", "tlLogic", "junction", "connection"):
                el.clear()
    return out
