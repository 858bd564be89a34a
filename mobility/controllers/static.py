"""``static``: the network's own signal programs, exactly as they are in the ``.net.xml``."""

from __future__ import annotations

from collections.abc import Mapping

from .base import Action, Controller, Observation


class Static(Controller):
    """Run the signal programs of the network unchanged (the "existing timing" baseline).

    No parameters. For a ``.sumocfg`` scenario this includes any programs its additional files load.
    """

    name = "static"
    description = "The network's own signal programs, unchanged (existing timing)."
    decision_interval_s = None

    def __init__(self) -> None:
        super().__init__()

    def act(self, observation: Observation) -> Mapping[str, Action]:
        return {}
