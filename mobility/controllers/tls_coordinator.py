"""``tls-coordinator``: SUMO's own ``tlsCoordinator.py`` offsets on the green-wave's Webster plans.

Source: SUMO's tool ``tools/tlsCoordinator.py`` (https://sumo.dlr.de/docs/Tools/tls.html#tlscoordinatorpy),
shipped in the ``eclipse-sumo`` wheel. For every pair of consecutive signals on the vehicles' routes
it takes the travel time at ``speed_factor`` × the speed limit and the start of the first green of
the movement each route uses, then greedily fixes offsets pair by pair, busiest pairs (by road
priority, then vehicles per second of travel) first, so that a platoon released at the start of one
green arrives at the start of the next. It is the baseline ``green-wave`` must beat, on the SAME
plans: the corridor's common cycle and Webster splits of :func:`coordinated_webster`; only the
offsets differ.

Input given to the tool (in a temporary directory): the network; the Webster plans as a tls
additional file; and routes synthesised from the measured demand (``network.demand``, the period the
plans are designed for), because controllers see the demand per movement, not per vehicle: every
movement's vehicles/hour is followed to the next signal downstream and split over that signal's
movements in proportion to their volumes, one ``<route>`` per vehicle of the hour. The tool keys a
signal pair by its two approach edges and keeps the movement of the last route it reads for that
pair, so routes are written in increasing volume: each pair is timed for its busiest movement.
"""

from __future__ import annotations

import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ControllerError
from ..fields import is_number_in
from .coordination.greenwave import downstream_paths, plan_phases
from ..network import SignalNetwork
from .base import Action, Controller, Observation, TimingPlan
from .green_wave import WEBSTER_PARAMS, CoordinatedWebster, check_path, coordinated_webster
from .webster import _check_params


def synthesise_routes(network: SignalNetwork, period: int) -> list[tuple[tuple[str, ...], float]]:
    """Two-signal route fragments ``(edges, vehicles/hour)`` from the demand per movement: each
    movement's volume continued to the next signal and split over its movements by volume."""
    demand = network.demand
    moves: dict[tuple[str, str], float] = {}  # (approach, exit edge) -> veh/h
    for jid, j in network.junctions.items():
        if jid not in demand.link_vph:
            continue
        for lk, q in zip(j.links, demand.movement_vph(jid, period)):
            key = (network.lanes[lk.in_lane].edge, network.lanes[lk.out_lane].edge)
            moves[key] = moves.get(key, 0.0) + float(q)
    out_of: dict[str, list[tuple[str, float]]] = {}
    for (e, f), q in moves.items():
        out_of.setdefault(e, []).append((f, q))
    paths = downstream_paths(network, (m for m, q in moves.items() if q > 0))
    routes = []
    for (e, f), path in paths.items():
        if path is None:
            continue
        nxt = out_of.get(path[-1], [])
        total = sum(q for _, q in nxt)
        for g, q in nxt:
            if q > 0 and total > 0:
                routes.append(((*path, g), moves[(e, f)] * q / total))
    return routes


def write_tls(network: SignalNetwork, plan: CoordinatedWebster, out: Path,
              program_id: str = "mobility-webster") -> Path:
    """Write the plans as a SUMO tls additional file (static programs, offset 0)."""
    root = ET.Element("additional")
    for jid in sorted(plan.timings):
        tl = ET.SubElement(root, "tlLogic", id=jid, type="static", programID=program_id, offset="0")
        for ph in plan_phases(network.junctions[jid], plan.timings[jid].greens_s):
            ET.SubElement(tl, "phase", duration=repr(ph.duration), state=ph.state)
    ET.indent(root)
    out.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
    return out


def run_tls_coordinator(net_file: Path, tls_file: Path, routes: Sequence[tuple[tuple[str, ...], float]],
                        workdir: Path, speed_factor: float) -> dict[str, float]:
    """Run SUMO's ``tlsCoordinator.py`` and return its offset (s) per signal."""
    from ..tools import run as run_sumo, tool_path

    tool = tool_path("tlsCoordinator.py")
    if not tool.exists():
        raise ControllerError(f"controller 'tls-coordinator': {tool} not found; "
                              "reinstall with `pip install eclipse-sumo==1.28.0`")
    root = ET.Element("routes")
    k = 0
    for edges, vph in sorted(routes, key=lambda r: (r[1], r[0])):
        for _ in range(max(1, round(vph))):  # one route per vehicle of the hour
            ET.SubElement(root, "route", id=f"r{k}", edges=" ".join(edges))
            k += 1
    ET.indent(root)  # the tool reads one element per line
    route_file = workdir / "coordinator.rou.xml"
    route_file.write_bytes(ET.tostring(root, xml_declaration=True, encoding="utf-8"))
    out = workdir / "coordinator-offsets.add.xml"
    cmd = [sys.executable, str(tool), "-n", str(net_file), "-r", str(route_file), "-a", str(tls_file),
           "-o", str(out), "--speed-factor", repr(speed_factor)]
    proc = run_sumo(cmd, cwd=workdir, env=os.environ)
    if proc.returncode != 0 or not out.exists():
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no message)"]
        raise ControllerError(f"controller 'tls-coordinator': tlsCoordinator.py failed: {lines[-1]}")
    return {el.get("id", ""): float(el.get("offset", "0")) for el in ET.parse(out).getroot().iter("tlLogic")}


class TlsCoordinator(Controller):
    """SUMO's ``tlsCoordinator.py`` offsets on Webster splits with a common corridor cycle.

    Parameters
    ----------
    path, cycle_s, saturation_flow_vph_per_lane, lost_time_s_per_phase, min_green_s, min_cycle_s,
        max_cycle_s: as for ``green-wave`` (the same corridor, common cycle and splits).
    speed_factor: travel speed as a fraction of the speed limit, given to the tool as
        ``--speed-factor``; default 0.9, the design speed of ``green-wave`` (the tool's own default
        is 0.8).

    After :meth:`reset`: ``plan_`` (:class:`CoordinatedWebster`), ``offsets_`` (s per signal).
    """

    name = "tls-coordinator"
    description = "SUMO's tlsCoordinator.py offsets on Webster splits with a common corridor cycle."
    decision_interval_s = None
    needs_demand = True

    def __init__(self, path: Sequence[str] | None = None, cycle_s: float | None = None, speed_factor: float = 0.9,
                 saturation_flow_vph_per_lane: float = 1800.0, lost_time_s_per_phase: float = 4.0,
                 min_green_s: float = 7.0, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0) -> None:
        super().__init__(path=path, cycle_s=cycle_s, speed_factor=speed_factor,
                         saturation_flow_vph_per_lane=saturation_flow_vph_per_lane,
                         lost_time_s_per_phase=lost_time_s_per_phase, min_green_s=min_green_s,
                         min_cycle_s=min_cycle_s, max_cycle_s=max_cycle_s)
        check_path(self, path)
        if not is_number_in(speed_factor, 0, low_open=True):
            raise self._param_error("speed_factor", "a positive number", speed_factor)
        _check_params({k: self._params[k] for k in (*WEBSTER_PARAMS, "cycle_s")}, self._param_error)
        self.plan_: CoordinatedWebster | None = None
        self.offsets_: dict[str, float] = {}
        self._actions: dict[str, TimingPlan] = {}

    def reset(self, network: SignalNetwork, seed: int) -> None:
        p = self._params
        cycle = p["cycle_s"]
        if cycle is None:  # the same common cycle green-wave would choose: same splits, only offsets differ
            from .green_wave import GreenWave

            gw = GreenWave(path=p["path"], **{k: p[k] for k in WEBSTER_PARAMS})
            gw.reset(network, seed)
            assert gw.plan_ is not None
            cycle = gw.plan_.cycle_s
        plan = coordinated_webster(self.name, network, p["path"], cycle, {k: p[k] for k in WEBSTER_PARAMS})
        with tempfile.TemporaryDirectory(prefix="mobility-tlscoord-") as wd:
            tls = write_tls(network, plan, Path(wd) / "webster.tll.xml")
            offsets = run_tls_coordinator(Path(network.path), tls, synthesise_routes(network, plan.period),
                                          Path(wd), float(p["speed_factor"]))
        self.plan_ = plan
        self.offsets_ = {jid: offsets.get(jid, 0.0) % plan.timings[jid].cycle_s for jid in plan.timings}
        self._actions = {jid: TimingPlan(t.greens_s, self.offsets_[jid]) for jid, t in plan.timings.items()}

    def act(self, observation: Observation) -> Mapping[str, Action]:
        return {j: a for j, a in self._actions.items() if j in observation.junctions}

    def report(self) -> dict[str, Any]:
        """The plan and the tool's offsets, for recording with the results (after :meth:`reset`)."""
        if self.plan_ is None:
            raise ControllerError(f"controller '{self.name}': report() needs reset() first")
        return {"corridor": list(self.plan_.corridor.junctions), "period": self.plan_.period,
                "cycle_s": self.plan_.cycle_s, "offsets_s": dict(self.offsets_)}
