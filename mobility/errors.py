"""Errors that are the user's to fix.

Every :class:`MobilityError` carries one line that names the file, field or id at fault and what
was expected. The CLI prints that line on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations


class MobilityError(Exception):
    """Bad input: a missing file, a malformed spec, an unknown name or id."""

    exit_code = 2


class ScenarioError(MobilityError):
    """A scenario file (TOML or .sumocfg) is missing, malformed or inconsistent."""


class ControllerError(MobilityError):
    """An unknown controller name or a bad controller parameter."""


class NetworkError(MobilityError):
    """A network file cannot be read, or an id is not in the network."""


class SimulationError(Exception):
    """SUMO failed during a run, or a controller crashed: fails that run, not the sweep."""
