"""Controllers used by the tests (importable as ``tests.helpers:Name``)."""

from __future__ import annotations

import numpy as np

from mobility.controllers import Controller, GreenPhase
from mobility.controllers.actuated import Actuated


class Crashing(Controller):
    """Fails at the first decision after the start (to test failure isolation)."""

    name = "crashing"
    description = "Raises ZeroDivisionError at t >= 50 s."
    decision_interval_s = 10.0

    def __init__(self) -> None:
        super().__init__()

    def act(self, observation):
        if observation.time_s >= 50:
            return {"J1": GreenPhase(1 // 0)}
        return {}


class Cyclic(Controller):
    """Serves green phases in program order, ``green_s`` each (phase-level control)."""

    name = "cyclic"
    description = "Round-robin over green phases with a fixed green time."
    decision_interval_s = 1.0

    def __init__(self, green_s: float = 20.0) -> None:
        super().__init__(green_s=green_s)

    def reset(self, network, seed):
        self.n = {j: len(network.junctions[j].green_phases) for j in network.junction_ids}
        self.current = {j: 0 for j in self.n}
        self.since = {j: 0.0 for j in self.n}

    def act(self, observation):
        out = {}
        for j, o in observation.junctions.items():
            if o.green is not None and o.green == self.current[j] and o.time_in_phase_s >= self._params["green_s"]:
                self.current[j] = (self.current[j] + 1) % self.n[j]
            out[j] = GreenPhase(self.current[j])
        return out


class GapRecorder(Actuated):
    """``actuated``, keeping every observation's detector gaps at junction ``C``."""

    def reset(self, network, seed):  # type: ignore[no-untyped-def]
        super().reset(network, seed)
        self.gaps: list[tuple[float, np.ndarray]] = []

    def act(self, observation):  # type: ignore[no-untyped-def]
        self.gaps.append((observation.time_s, observation.junctions["C"].detector_gap_s.copy()))
        return super().act(observation)
