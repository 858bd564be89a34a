"""Recovery after events (incidents and demand surges, see :class:`mobility.scenario.Incident`).

**Recovery time** of a junction after an event, in seconds: from SUMO's edgeData output of the run
(one interval per minute, written into the run's work folder), ``W(t)`` is the waiting time of the
vehicles on the junction's incoming edges in the minute starting at ``t`` (veh·s halted, speed
< 0.1 m/s). The *pre-event level* ``P`` is the mean of ``W`` over the (up to) ten whole minutes before
the event begins. The junction has recovered at the start of the first minute, beginning at or after
the event's end, with ``W <= 1.1 P + 60`` (within 10 % of the pre-event level, with a floor of one
vehicle halted for the whole minute so that nearly empty approaches do not flap); the recovery time is
that start minus the event's end (minutes start on the run's begin + k·60 s, so the resolution is one
minute: a value under 60 s means back to normal in the first minute after the end). ``NaN`` with ``recovered = False``: not back by the end of the run; ``NaN`` with
``recovered`` missing (NA): no whole minute before the event to compare with.

Columns added to the ``junctions`` table, per event (incidents first, then surges, in TOML order):
``incident0_recovery_s``, ``incident0_recovered``, ``surge0_recovery_s``, ... .
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .network import SignalNetwork
from .scenario import Scenario

TOLERANCE = 0.10  # within 10 % of the pre-event level
FLOOR_VEH_S = 60.0  # ... or one vehicle halted for the whole minute above it
PRE_MINUTES = 10


def waiting_by_junction(edgedata: Path, net: SignalNetwork, junction_ids: Sequence[str]) -> pd.DataFrame:
    """Minute × junction: the waiting time (veh·s) on the junction's incoming edges, from SUMO's
    edgeData output; the index is each interval's begin (s)."""
    edges_of = {j: {net.lanes[lane].edge for lane in net.junctions[j].incoming_lanes} for j in junction_ids}
    rows: dict[float, dict[str, float]] = {}
    for iv in ET.parse(edgedata).getroot().iter("interval"):
        w = {e.get("id", ""): float(e.get("waitingTime", 0.0)) for e in iv.iter("edge")}
        rows[float(iv.get("begin", "nan"))] = {j: sum(w.get(e, 0.0) for e in es) for j, es in edges_of.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(junction_ids)).sort_index().fillna(0.0)


def recovery(series: pd.Series, begin_s: float, end_s: float, period_s: float = 60.0) -> tuple[float, bool | None]:
    """(recovery time in s, recovered) of one junction's per-minute waiting series after an event
    lasting ``begin_s``..``end_s`` (see the module docstring)."""
    pre = series[(series.index >= begin_s - PRE_MINUTES * period_s - 1e-9) & (series.index + period_s <= begin_s + 1e-9)]
    if pre.empty:
        return math.nan, None
    level = TOLERANCE * pre.mean() + pre.mean() + FLOOR_VEH_S
    after = series[series.index >= end_s - 1e-9]
    ok = after[after <= level]
    if ok.empty:
        return math.nan, False
    return float(ok.index[0] - end_s), True


def recovery_columns(sc: Scenario, edgedata: Path, net: SignalNetwork, junction_ids: Sequence[str]) -> pd.DataFrame:
    """Per junction (index), ``<event>_recovery_s`` and ``<event>_recovered`` for every event of ``sc``."""
    w = waiting_by_junction(edgedata, net, junction_ids)
    events = [(f"incident{i}", e.begin_s, e.end_s) for i, e in enumerate(sc.incidents)]
    events += [(f"surge{i}", e.begin_s, e.end_s) for i, e in enumerate(sc.surges)]
    out = pd.DataFrame(index=pd.Index(list(junction_ids), name="junction_id"))
    for name, b, e in events:
        res = [recovery(w[j], b, e) for j in junction_ids]
        out[f"{name}_recovery_s"] = np.array([r[0] for r in res], dtype=float)
        out[f"{name}_recovered"] = pd.array([r[1] for r in res], dtype="boolean")
    return out
