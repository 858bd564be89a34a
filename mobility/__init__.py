"""mobility: what traffic-signal timing costs in delay, stops and CO2, junction by junction.

Public API::

    from mobility import run, compare, load_scenario, Controller, GreenPhase
    res = compare("corridor", ["static", "sumo-actuated"], seeds=3)
    res.junctions  # one row per (run, junction)
"""

from __future__ import annotations

from ._version import __version__
from .controllers import (Controller, GreenPhase, NativeProgram, Observation, Safety, SiteSafety, TimingPlan,  # noqa: E402
                          available, make)
from .controllers.check import check_controller  # noqa: E402
from .errors import MobilityError  # noqa: E402
from .experiments.run import Results, run  # noqa: E402
from .experiments.sweep import compare  # noqa: E402
from .scenario import Scenario, load_scenario  # noqa: E402

__all__ = [
    "Controller", "GreenPhase", "MobilityError", "NativeProgram", "Observation", "Results", "Safety",
    "Scenario", "SiteSafety", "TimingPlan", "__version__", "available", "check_controller", "compare", "load_scenario", "make", "run",
]
