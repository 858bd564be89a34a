"""``actuated``: transparent vehicle-actuated control with gap-out and max-out, on real detectors.

The logic of a fully actuated controller with recall off (see e.g. the FHWA *Traffic Signal Timing
Manual*, 2nd ed., 2015, ch. 5 "Actuated control"), written out in a few lines so that every decision
can be read:

* one induction loop (SUMO E1) per incoming lane, ``detector_distance_m`` upstream of the stop line
  (placed by the run; see :meth:`Controller.detectors`); its reading is the time since a vehicle was
  last over it;
* stages (the network's green phases) are served in program order; a stage is skipped if none of its
  lanes holds a vehicle (no call);
* once the minimum green has run (the program's ``minDur`` where it sets one), the green is
  extended while some lane the stage serves with every link of the lane
  (:meth:`~mobility.network.Junction.extending_lanes`) has a detector gap below ``max_gap_s``;
  it ends on *gap-out* (no such lane) or *max-out* (``max_green_s``, or the program's
  ``maxDur``, since the green began), and the next stage with a call is served;
* with no call on any other stage the green rests where it is (it neither gaps out nor maxes out).

Yellow and clearance red are inserted by the actuator (:mod:`mobility.signals`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import ControllerError
from ..network import SignalNetwork
from .base import Action, Controller, GreenPhase, Observation, Safety, stage_positions


class Actuated(Controller):
    """Gap-out / max-out actuated control, decided every second from lane detectors.

    Parameters
    ----------
    min_green_s: minimum green (s), default 5; the floor of every stage's minimum.
    max_green_s: maximum green (s) when another stage has a call, default 50.
    program_bounds: where SUMO runs the junction's own program as vehicle-actuated logic, a stage
        keeps that program's minimum and maximum green (``minDur``/``maxDur`` of its phase, at least
        ``min_green_s``) instead of ``min_green_s``/``max_green_s``, default True. netconvert
        writes 5 / 50, our defaults; a city that set its own keeps them (hamburg-tavf's
        ``joined1``: a 20 s minimum on its main stage, a 15 s maximum on a turn stage; with every
        program replaced, ten seeds: 58.3 s/veh against 61.9 without, static 64.5). In a
        fixed-time program SUMO ignores ``minDur``/``maxDur``, and so does ``actuated``: taken
        from RESCO's ingolstadt21 (7–10 s minima in ``type="static"`` programs) they locked it
        (seeds 6–10: 238.8 s/veh against 117.9; docs/benchmarks.md "Seventh pass").
    max_gap_s: a green is extended while the detector gap of a lane it serves with every link of the
        lane is below this (s), default 3.
    detector_distance_m: distance of the induction loops upstream of the stop line (m), default 30.
    all_red_s: clearance red the actuator inserts after each yellow (s), default 0, as the real
        programs of the city models and RESCO's maps have it (a scenario's ``[safety]`` floor, 1 s on
        the bundled scenarios, still applies). With 2 s, every change of stage lost 2 s more and on
        the RESCO maps ``actuated`` locked (cologne3 seed 1: 68.6 s/veh against 18.9 with 0;
        ingolstadt21 seeds 1–2: 168.5 / 291.9 against 113.1 / 115.4; docs/benchmarks.md).
    transitions: ``"program"``: between consecutive stages the actuator replays the junction's own
        program transition (its yellows, intergreens, clearance tails; :class:`Safety`) instead of a
        3 s yellow and ``all_red_s``; ``"generic"`` (default): always yellow + all-red.
    keep_actuated: a junction whose real program is already vehicle-actuated (SUMO runs it with its
        own loops) is left to it, as ``cycle-adaptive`` does, default True.
    keep_short_linked: signals joined to another by a short link (room for two standing vehicles,
        :func:`~mobility.network.short_linked_signals`) keep their own program:
        in the field such pairs are one controller whose stages keep the link clear; gapping out
        each on its own locked RESCO's ingolstadt21 (and deciding them together did not help,
        docs/benchmarks.md). Default True.
    blocked_gap_out: a lane whose vehicles all stand while it has green (a queue blocked downstream,
        spillback) does not extend the green, although its loop is occupied: standing on the loop is
        not demand the green can serve (as ``cycle-adaptive`` counts it), default False.

    A lane "served" by a stage has at least one link with priority (``'G'``) or permissive (``'g'``)
    green in it. A stage has a call when its served lanes hold at least one vehicle. Only a served
    lane all of whose links have green in the stage extends it (the test SUMO applies to its loops,
    :meth:`~mobility.network.Junction.extending_lanes`): a vehicle on a shared lane may be waiting
    for a movement that is red, and its loop held a green nobody used (hamburg-tavf with every
    program replaced, seed 1: 57.9 s/veh network delay against 60.9 when every served lane
    extended, static 64.6). Where the city's program is vehicle-actuated, its protected-turn tails
    are stages too (SUMO extends them; see :meth:`~mobility.network.SignalNetwork.with_turn_stages`),
    and the tail follows its through stage whenever its lanes held a vehicle during that stage,
    even if they are empty now: the turners it clears may be waiting inside the junction, where no
    loop sees them (hamburg-tavf ``cluster_683859663``, seed 6: left-turners of two opposing
    approaches waiting inside the junction blocked each other: 105 s/veh there, 14–16 under the
    city's timing in seeds 2–5). The seed-1 figures above are with ``program_bounds=False``.
    """

    name = "actuated"
    description = "Vehicle-actuated: extend greens while loops see gaps < max_gap_s; gap-out, max-out, skip empty stages."
    decision_interval_s = 1.0

    def __init__(self, min_green_s: float = 5.0, max_green_s: float = 50.0, max_gap_s: float = 3.0,
                 detector_distance_m: float = 30.0, all_red_s: float = 0.0, transitions: str = "generic",
                 keep_actuated: bool = True, blocked_gap_out: bool = False, keep_short_linked: bool = True,
                 program_bounds: bool = True) -> None:
        super().__init__(min_green_s=min_green_s, max_green_s=max_green_s, max_gap_s=max_gap_s,
                         detector_distance_m=detector_distance_m, all_red_s=all_red_s, transitions=transitions,
                         keep_actuated=keep_actuated, blocked_gap_out=blocked_gap_out,
                         keep_short_linked=keep_short_linked, program_bounds=program_bounds)
        for b in ("keep_actuated", "blocked_gap_out", "keep_short_linked", "program_bounds"):
            if not isinstance(self._params[b], bool):
                raise self._param_error(b, "True or False", self._params[b])
        if transitions not in ("generic", "program"):
            raise self._param_error("transitions", "'generic' or 'program'", transitions)
        if isinstance(all_red_s, bool) or not isinstance(all_red_s, (int, float)) or not 0 <= all_red_s < float("inf"):
            raise self._param_error("all_red_s", "a number of seconds >= 0", all_red_s)
        for p in ("min_green_s", "max_green_s", "max_gap_s", "detector_distance_m"):  # all_red_s may be 0
            v = self._params[p]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise self._param_error(p, "a positive number" + (" of metres" if p.endswith("_m") else " of seconds"), v)
        if max_green_s < min_green_s:
            raise self._param_error("max_green_s", f"at least min_green_s={min_green_s}", max_green_s)
        self._served: dict[str, list[np.ndarray]] = {}
        self._extending: dict[str, list[np.ndarray]] = {}
        self._target: dict[str, int] = {}
        self._kept: set[str] = set()
        self._tails: dict[str, frozenset[int]] = {}
        self._seen: dict[str, np.ndarray] = {}

    def detectors(self) -> float:
        return float(self._params["detector_distance_m"])

    def protected_turn_stages(self) -> bool:
        return True

    def safety(self) -> Safety:
        # max-out is this controller's decision (only when another stage has a call), so the
        # actuator's own maximum green is not used
        return Safety(all_red_s=float(self._params["all_red_s"]), min_green_s=float(self._params["min_green_s"]),
                      max_green_s=float("inf"), transitions=str(self._params["transitions"]))

    def reset(self, network: SignalNetwork, seed: int) -> None:
        """For each junction and stage, the positions (in ``incoming_lanes``) of the lanes it serves."""
        from ..network import short_linked_signals

        self._served, self._extending, self._target, self._tails, self._seen, self._bounds = {}, {}, {}, {}, {}, {}
        actuated_programs = network.vehicle_actuated()
        self._kept = set(actuated_programs) if self._params["keep_actuated"] else set()
        if self._params["keep_short_linked"]:
            self._kept |= short_linked_signals(network)
        lo, hi = float(self._params["min_green_s"]), float(self._params["max_green_s"])
        for jid in network.junction_ids:
            j = network.junctions[jid]
            self._served[jid] = stage_positions(j, j.served_lanes())
            self._extending[jid] = stage_positions(j, j.extending_lanes())
            self._tails[jid] = frozenset(j.protected_turn_tails)
            own = self._params["program_bounds"] and jid in actuated_programs
            self._bounds[jid] = [(max(lo, ph.min_dur), max(lo, ph.max_dur)) if own and ph.min_dur < ph.max_dur else (lo, hi)
                                 for ph in (j.phases[i] for i in j.green_phases)]
            self._seen[jid] = np.zeros(len(j.incoming_lanes), dtype=bool)

    def act(self, observation: Observation) -> Mapping[str, Action]:
        p = self._params
        out: dict[str, Action] = {}
        for jid, o in observation.junctions.items():
            if jid in self._kept:
                continue
            stages = self._served[jid]
            target = self._target.get(jid)
            seen = self._seen[jid]
            seen |= o.count_veh > 0  # lanes that held a vehicle since the stage began
            if target is None:  # first decision: take over the stage SUMO's program is showing
                target = o.green if o.green is not None else 0
            elif o.green == target and o.time_in_phase_s >= self._bounds[jid][target][0] - 1e-9:
                if o.detector_gap_s.size != len(o.lanes):
                    raise ControllerError(f"controller '{self.name}': junction '{jid}' has no detector readings; "
                                          "run it through mobility.run/compare, which places the detectors")
                lanes = self._extending[jid][target]
                active = o.detector_gap_s[lanes] < p["max_gap_s"]
                if p["blocked_gap_out"]:  # every vehicle of the lane standing in green: blocked, not demand
                    active &= ~((o.count_veh[lanes] > 0) & (o.queue_veh[lanes] >= o.count_veh[lanes]))
                extend = bool(active.any())
                if not extend or o.time_in_phase_s >= self._bounds[jid][target][1] - 1e-9:  # gap-out or max-out
                    for k in range(1, len(stages)):
                        nxt = (target + k) % len(stages)
                        # the protected-turn tail of this stage runs if a turner came during the
                        # stage: it may be waiting inside the junction, where no loop sees it
                        if o.count_veh[stages[nxt]].sum() > 0 or (k == 1 and nxt in self._tails[jid]
                                                                  and bool(seen[stages[nxt]].any())):
                            target = nxt
                            break
            if target != self._target.get(jid, target):
                seen[:] = False
            self._target[jid] = target
            out[jid] = GreenPhase(target)
        return out
