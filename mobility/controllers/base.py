"""The controller contract.

A controller is a small class that never imports SUMO:

* ``__init__(**params)`` only stores its keyword parameters (validated), so :meth:`get_params`
  can record them with every result and a copy can be made;
* :meth:`reset` receives the :class:`~mobility.network.SignalNetwork` and the run's seed and builds
  whatever the controller derives from the network;
* :meth:`act` receives an :class:`Observation` every ``decision_interval_s`` seconds (or once, at the
  start, when ``decision_interval_s`` is ``None``) and returns, for the junctions it wants to change,
  one :data:`Action`:

  - :class:`GreenPhase`: "serve this green phase next" (phase-level control, e.g. max-pressure);
  - :class:`TimingPlan`: a fixed-time plan (cycle, green splits, offset) for plan-level control;
  - :class:`NativeProgram`: let SUMO run one of its own program types (e.g. gap-based actuated).

Safety is not the controller's business: the actuator (:mod:`mobility.signals`) inserts yellow and
clearance red between greens, holds a green for at least the minimum green and ends it at the
maximum green. A controller cannot produce an unsafe signal state.

Example — longest queue first, in a dozen lines::

    class LongestQueue(Controller):
        name = "longest-queue"
        description = "Serve the green phase whose lanes hold the most halted vehicles."
        decision_interval_s = 5.0

        def reset(self, network, seed):
            self.lanes_of = {j: network.junctions[j].green_lanes() for j in network.junction_ids}

        def act(self, obs):
            out = {}
            for jid, o in obs.junctions.items():
                q = [sum(o.queue(l) for l in lanes) for lanes in self.lanes_of[jid]]
                out[jid] = GreenPhase(max(range(len(q)), key=q.__getitem__))
            return out
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ControllerError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..network import Junction, SignalNetwork


def stage_positions(junction: Junction, lanes: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per stage, the positions in ``junction.incoming_lanes`` (the order of an observation's lane
    arrays) of the lanes given for it (e.g. :meth:`~mobility.network.Junction.served_lanes`)."""
    return [np.array([junction.incoming_lanes.index(lane) for lane in stage], dtype=int) for stage in lanes]


@dataclass(frozen=True)
class GreenPhase:
    """Serve green phase ``index`` of the junction next (an index into ``Junction.green_phases``:
    0 is the first green phase of the network's program, 1 the second, …)."""

    index: int


@dataclass(frozen=True)
class TimingPlan:
    """A fixed-time plan: the network program's green phases get ``greens_s`` (one per green phase,
    in program order); transitions keep their durations. ``offset_s``: the cycle starts when
    ``(time - offset_s) % cycle == 0``. ``states``: see below."""

    greens_s: tuple[float, ...]
    offset_s: float = 0.0
    #: optional signal states replacing those of the network program, one per phase (for a plan
    #: that reorders movements, e.g. a lagging instead of a leading left turn, see
    #: :func:`mobility.controllers.coordination.greenwave.mirror_states`). The actuator refuses states that give two
    #: conflicting links (SUMO's foes) a priority green together, end a green without yellow, or move
    #: the green phases.
    states: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NativeProgram:
    """Let SUMO run its own logic on the junction's phases (``kind``: ``"actuated"``), with SUMO
    parameters (e.g. ``max-gap``) and min/max green for the green phases."""

    kind: str
    min_green_s: float
    max_green_s: float
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseRemaining:
    """End the running SUMO program's current phase in ``remaining_s`` seconds (for a junction its
    program drives, e.g. ``static``, a :class:`TimingPlan` or a :class:`NativeProgram`): hold a green
    longer, or cut it short. The actuator accepts it only on a green phase (no yellow) and never
    below ``Safety.min_green_s`` of green; the program's own yellow and red phases then run as
    programmed. Used by transit signal priority (``+tsp``)."""

    remaining_s: float


Action = GreenPhase | TimingPlan | NativeProgram | PhaseRemaining


@dataclass(frozen=True)
class TransitVehicle:
    """A transit vehicle (bus, tram, ... by vehicle class) approaching a signal, at one decision time.

    ``junction_id``, ``link_index``: its next signal and the link (index into the signal's state) it
    will use there (SUMO's ``getNextTLS``); ``distance_m``: to that stop line; ``speed_m_s``;
    ``at_stop``: halted at a scheduled stop (a dwell, not waiting for the signal); ``stop_before``:
    at a scheduled stop or with its next one before the signal (it will dwell before crossing)."""

    vehicle_id: str
    vclass: str
    junction_id: str
    link_index: int
    distance_m: float
    speed_m_s: float
    at_stop: bool = False
    stop_before: bool = False


@dataclass(frozen=True)
class Safety:
    """Signal safety applied by the actuator to phase-level control (seconds).

    ``program_yellow``: at each junction the yellow lasts at least as long as the longest yellow
    phase of the junction's own program (wide junctions have 4–5 s yellows in their real programs;
    a shorter one leaves vehicles in the junction when the next green starts).
    ``transitions``: see below."""

    yellow_s: float = 3.0
    all_red_s: float = 2.0
    min_green_s: float = 5.0
    max_green_s: float = 90.0
    program_yellow: bool = False
    #: ``"generic"``: every change of green is yellow (``yellow_s``) then clearance red
    #: (``all_red_s``). ``"program"``: between two stages that the junction's own program joins
    #: (:meth:`mobility.network.Junction.transition`), the program's own phases are replayed with their
    #: durations (yellow, red, clearance tails, red-amber), each yellow at least ``yellow_s``; other
    #: changes are generic, with at least the program's longest yellow (as ``program_yellow``).
    transitions: str = "generic"

    def at_least(self, site: SiteSafety) -> Safety:
        """These settings lengthened to the site's floors (a controller may lengthen the site's
        yellow, all-red and minimum green, never shorten them); max green at least the min green."""
        min_green = max(self.min_green_s, site.min_green_s)
        return replace(self, yellow_s=max(self.yellow_s, site.yellow_s), all_red_s=max(self.all_red_s, site.all_red_s),
                       min_green_s=min_green, max_green_s=max(self.max_green_s, min_green))


@dataclass(frozen=True)
class SiteSafety:
    """The site's safety floors (seconds), from the scenario (``[safety]``): the actuator never shows
    a shorter yellow, all-red (clearance) or minimum green (e.g. a pedestrian crossing's walk and
    clearance time) under phase-level control than these, whatever the controller's
    :class:`Safety` says. Plans (:class:`TimingPlan`) keep the transitions of the junction's program."""

    yellow_s: float = 3.0
    all_red_s: float = 1.0
    min_green_s: float = 0.0


@dataclass
class JunctionObservation:
    """What a controller sees of one junction at one decision time.

    Incoming-lane arrays follow ``Junction.incoming_lanes`` order, outgoing-lane arrays
    ``Junction.outgoing_lanes``; a movement (link) ``k`` of the junction goes from
    ``lanes.index(link.in_lane)`` to ``out_lanes.index(link.out_lane)``. Counts in vehicles, speeds
    in m/s; queues count halted vehicles (speed < 0.1 m/s) on the whole lane.
    """

    junction_id: str
    lanes: tuple[str, ...]
    queue_veh: np.ndarray  # halted vehicles (speed < 0.1 m/s) per incoming lane
    count_veh: np.ndarray  # vehicles per incoming lane
    speed_m_s: np.ndarray  # mean speed per incoming lane (lane speed limit when empty)
    phase: int  # current phase index of the junction's program (or the green served, under phase control)
    green: int | None  # index into Junction.green_phases if a green phase is showing, else None
    time_in_phase_s: float
    out_lanes: tuple[str, ...] = ()
    out_count_veh: np.ndarray = field(default_factory=lambda: np.zeros(0))  # vehicles per outgoing lane
    out_queue_veh: np.ndarray = field(default_factory=lambda: np.zeros(0))  # halted per outgoing lane
    #: per incoming lane, seconds since a vehicle was last over one of the lane's induction loops (0 while one
    #: is on it; ``inf`` if none has been yet); empty unless the controller declares
    #: :meth:`Controller.detectors`
    detector_gap_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: for controllers that declare :meth:`Controller.transit_classes` (transit priority): the signal
    #: state now (one character per link), the phases of the SUMO program running the junction
    #: (empty while the actuator drives it phase by phase) and seconds until its current phase ends
    state: str = ""
    program: tuple[Any, ...] = ()  # mobility.network.Phase
    next_switch_s: float = float("inf")
    #: per incoming lane, vehicles (and halted vehicles) on the lane *and* on its approach upstream
    #: (:meth:`mobility.network.SignalNetwork.approach`: the unsignalised lane chain up to
    #: :meth:`Controller.approach_m` metres from the stop line, weighted by the share bound for the
    #: lane); empty unless the controller declares :meth:`Controller.approach_m`
    approach_count_veh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    approach_queue_veh: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def queue(self, lane: str) -> float:
        """Halted vehicles on an incoming lane."""
        return float(self.queue_veh[self.lanes.index(lane)])

    def count(self, lane: str) -> float:
        """Vehicles on an incoming or outgoing lane."""
        if lane in self.lanes:
            return float(self.count_veh[self.lanes.index(lane)])
        return float(self.out_count_veh[self.out_lanes.index(lane)])


@dataclass
class Observation:
    """All junctions at one decision time (simulation seconds)."""

    time_s: float
    junctions: dict[str, JunctionObservation]
    #: transit vehicles approaching a signal (only for controllers that declare
    #: :meth:`Controller.transit_classes`)
    transit: tuple[TransitVehicle, ...] = ()


class Controller(ABC):
    """Base class for signal controllers. Subclasses set ``name`` and ``description``, declare their
    parameters as keyword arguments of ``__init__`` (stored unchanged), and implement :meth:`act`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: seconds between calls of :meth:`act`; ``None``: called once, at the start of the run
    decision_interval_s: float | None = None
    #: if True, ``reset`` receives a network whose ``demand`` holds the scenario's demand per
    #: movement and period (:class:`mobility.inputs.demand.Demand`), e.g. for Webster timing
    needs_demand: bool = False

    def __init__(self, **params: Any) -> None:
        self._params = dict(params)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as given (recorded with every result)."""
        return dict(self._params)

    def safety(self) -> Safety:
        """Safety settings the actuator applies to this controller's phase-level actions."""
        return Safety()

    def detectors(self) -> float | None:
        """Distance upstream of the stop line (m) at which the run places an induction loop (SUMO E1)
        on every incoming lane of every controlled junction; on a shorter lane, on each lane feeding
        it through unsignalised connections, at that distance along the chain
        (:meth:`~mobility.network.SignalNetwork.detector_sites`; a loop at the start of a 6 m lane
        would see a queue only once it reached the stop line). Readings arrive in
        :attr:`JunctionObservation.detector_gap_s`. ``None`` (the default): no detectors."""
        return None

    def stop_line_detectors(self) -> bool:
        """True: the loops are stop-line detectors (SCATS measures the degree of saturation on them):
        on a lane shorter than :meth:`detectors`' distance, the loop goes at the start of the lane
        itself, never on the lanes feeding it, whose vehicles may be bound for other lanes and
        stages. False (the default): advance detection, placed along the feeding chain."""
        return False

    def protected_turn_stages(self) -> bool:
        """True: a program's protected-turn tails are stages of their own in the run's network
        (:attr:`~mobility.network.Junction.turn_stages`), so the controller can serve a turn
        protected and for as long as it needs. False (the default): they stay the clearance at the
        end of the stage before, as the program runs them (plans and max-pressure)."""
        return False

    def transit_classes(self) -> tuple[str, ...]:
        """SUMO vehicle classes whose vehicles the run reports in :attr:`Observation.transit` (and
        whose signal programs it reports in the junction observations); ``()`` (the default): none."""
        return ()

    def approach_m(self) -> float | None:
        """Distance upstream of the stop line (m) over which the observation counts each incoming
        lane's queue, through the unsignalised lanes feeding it (on real networks the lane in front
        of a stop line is often a short piece of a longer approach); readings arrive in
        :attr:`JunctionObservation.approach_count_veh` / ``approach_queue_veh``. ``None`` (the
        default): no approach readings."""
        return None

    def reset(self, network: SignalNetwork, seed: int) -> None:  # noqa: B027 - optional hook
        """Prepare for a new run on ``network`` with the run's ``seed`` (for any randomness of the
        controller): build here what is derived from the network, never in the constructor."""

    @abstractmethod
    def act(self, observation: Observation) -> Mapping[str, Action]:
        """Actions for the junctions to change (others keep what they do)."""

    # helpers for parameter validation, scikit-learn style
    def _param_error(self, param: str, expected: str, got: Any) -> ControllerError:
        return ControllerError(f"controller '{self.name}': parameter '{param}': expected {expected}, got {got!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"
