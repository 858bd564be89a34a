"""``sumo-actuated``: SUMO's own gap-based actuated control on the same junctions and phases.

Source: SUMO's ``actuated`` traffic-light type (https://sumo.dlr.de/docs/Simulation/Traffic_Lights.html,
"Type 'actuated'"): induction loops placed by SUMO upstream of the stop line on each controlled lane;
a green phase is extended while vehicles arrive with time gaps below ``max_gap_s``, between the
minimum and maximum green. This is the native baseline every adaptive controller must beat.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..fields import is_number_in
from ..network import SignalNetwork
from .base import Action, Controller, NativeProgram, Observation


class SumoActuated(Controller):
    """Convert every junction's program to SUMO's gap-based actuated type.

    Parameters
    ----------
    min_green_s: minimum duration of each green phase (s), default 5.
    max_green_s: maximum duration of each green phase (s), default 60.
    max_gap_s: largest time gap between successive vehicles that extends a green (s), default 3.
    detector_gap_s: distance of the detectors upstream of the stop line, as travel time at the lane
        speed (s), default 2 (SUMO's default).
    passing_time_s: time added for each detected vehicle to reach the stop line (s), default 1.9.
    """

    name = "sumo-actuated"
    description = "SUMO's native gap-based actuated control on the network's phases."
    decision_interval_s = None

    def __init__(self, min_green_s: float = 5.0, max_green_s: float = 60.0, max_gap_s: float = 3.0,
                 detector_gap_s: float = 2.0, passing_time_s: float = 1.9) -> None:
        super().__init__(min_green_s=min_green_s, max_green_s=max_green_s, max_gap_s=max_gap_s,
                         detector_gap_s=detector_gap_s, passing_time_s=passing_time_s)
        for p in ("min_green_s", "max_green_s", "max_gap_s", "detector_gap_s", "passing_time_s"):
            v = self._params[p]
            if not is_number_in(v, 0, low_open=True):
                raise self._param_error(p, "a positive number of seconds", v)
        if max_green_s < min_green_s:
            raise self._param_error("max_green_s", f"at least min_green_s={min_green_s}", max_green_s)
        self._junctions: list[str] = []

    def reset(self, network: SignalNetwork, seed: int) -> None:
        self._junctions = list(network.junction_ids)

    def act(self, observation: Observation) -> Mapping[str, Action]:
        p = self._params
        action = NativeProgram(
            "actuated", p["min_green_s"], p["max_green_s"],
            {"max-gap": str(p["max_gap_s"]), "detector-gap": str(p["detector_gap_s"]),
             "passing-time": str(p["passing_time_s"])},
        )
        return {j: action for j in observation.junctions}
