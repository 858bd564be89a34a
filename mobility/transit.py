"""Transit trips and priority events: the ``transit`` and ``transit_events`` tables.

``transit``: one row per trip of a transit vehicle (SUMO vehicle classes ``bus``, ``tram``,
``rail_urban``, plus the ``classes`` of ``+tsp``), in every run (with or without
priority), so that ``X`` and ``X+tsp`` compare trip for trip:

* ``vehicle_id``, ``line`` (SUMO's ``line`` attribute; the vehicle type when it has none),
  ``vtype``, ``vclass``;
* ``depart_s``, ``arrival_s`` (simulation clock, s; NaN if still running at the end) and
  ``finished``; ``measured``: departed after the warm-up;
* ``trip_time_s``: arrival − departure (NaN if unfinished);
* ``time_loss_s``: SUMO's ``timeLoss`` (time lost against driving at the desired speed; time at
  scheduled stops does not count), at the vehicle's last step;
* ``scheduled_stops``: stops of its schedule served (bus/tram stops); ``halts``: times it came to a
  halt (speed < 0.1 m/s) anywhere else (signals, queues);
* ``priority_events``, ``saved_s`` (sum over its events) and ``saved_s_per_event``: from
  ``transit_events`` (0, 0 and NaN without ``+tsp``).

``transit_events``: one row per priority event of ``+tsp`` (see :mod:`mobility.controllers.tsp`
for what counts and how ``saved_s``, the counterfactual seconds saved, is estimated): vehicle,
junction, link, ``kind`` (``extension`` / ``early_green``), ``program`` (what ran the junction:
``fixed`` or ``actuated`` SUMO program, or ``phase`` control by the actuator), ``checkin_s``, ``action_s``, ``pass_s``,
``changed_s`` (seconds of green held past its programmed end, or cut from conflicting phases) and
``saved_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

TRIP_COLUMNS = ["vehicle_id", "line", "vtype", "vclass", "depart_s", "arrival_s", "finished", "measured",
                "trip_time_s", "time_loss_s", "scheduled_stops", "halts", "priority_events", "saved_s",
                "saved_s_per_event"]
EVENT_COLUMNS = ["vehicle_id", "vclass", "junction_id", "link_index", "kind", "program", "checkin_s", "action_s", "pass_s",
                 "changed_s", "saved_s"]


def trips_table(rows: pd.DataFrame, stops: Sequence[tuple[str, float, float]], t_end: float,
                measure_from: float) -> pd.DataFrame:
    """The ``transit`` table (without the priority columns) from the tracker's rows and the step
    loop's scheduled stops (vehicle, begin, end)."""
    t = rows.copy()
    t["line"] = [ln if isinstance(ln, str) and ln else vt for ln, vt in zip(t["line"], t["vtype"])]
    t["finished"] = t["arrival_s"].notna()
    t["measured"] = t["depart_s"] >= measure_from - 1e-9
    t["trip_time_s"] = t["arrival_s"] - t["depart_s"]
    served: dict[str, int] = {}
    for v, _b, _e in stops:
        served[v] = served.get(v, 0) + 1
    t["scheduled_stops"] = t["vehicle_id"].map(served).fillna(0).astype(int)
    t["priority_events"] = 0
    t["saved_s"] = 0.0
    t["saved_s_per_event"] = np.nan
    return t[TRIP_COLUMNS]


def events_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def with_events(trips: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``trips`` with ``priority_events``, ``saved_s`` and ``saved_s_per_event`` from ``events``
    (``saved_s`` sums the events with an estimate; per event: over those)."""
    if trips.empty or events.empty:
        return trips
    g = events.groupby("vehicle_id")
    n = g.size()
    est = events[events["saved_s"].notna()].groupby("vehicle_id")["saved_s"].agg(["sum", "count"])
    t = trips.copy()
    t["priority_events"] = t["vehicle_id"].map(n).fillna(0).astype(int)
    t["saved_s"] = t["vehicle_id"].map(est["sum"]).fillna(0.0)
    t["saved_s_per_event"] = t["vehicle_id"].map(est["sum"] / est["count"])
    return t


def per_run(transit: pd.DataFrame, events: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per run: finished measured trips, mean trip time (s), mean time loss (s), halts per trip,
    priority events per trip, events, and mean seconds saved per event (over events with an
    estimate)."""
    t = transit[transit["finished"].astype(bool) & transit["measured"].astype(bool)]
    if t.empty:
        return pd.DataFrame()
    g = t.groupby(list(keys), sort=False)
    out = g.agg(trips=("vehicle_id", "size"), trip_time_s=("trip_time_s", "mean"),
                time_loss_s=("time_loss_s", "mean"), halts_per_trip=("halts", "mean"),
                events_per_trip=("priority_events", "mean")).reset_index()
    if not events.empty:
        e = events.groupby(list(keys), sort=False).agg(events=("kind", "size"), saved_s_per_event=("saved_s", "mean"))
        out = out.join(e, on=list(keys))
    else:
        out["events"], out["saved_s_per_event"] = 0, np.nan
    out["events"] = out["events"].fillna(0).astype(int)
    return out


def format_transit(transit: pd.DataFrame, events: pd.DataFrame, junctions: pd.DataFrame, label: Any) -> list[str]:
    """Lines for ``mobility compare``'s printout: per controller, transit trips (mean over seeds) and
    the delay of all vehicles at the junctions where priority events happened. ``label``: maps a
    table to one with the printed controller label (``experiment._labelled``)."""
    if transit.empty:
        return []
    t = label(transit)
    e = label(events) if not events.empty else events
    r = per_run(t, e, ["controller", "run_id"])
    if r.empty:
        return []
    order = list(dict.fromkeys(t["controller"]))
    m = r.groupby("controller", sort=False).mean(numeric_only=True).reindex(order)
    lines = ["", "Transit trips (buses, trams...: finished trips departed after the warm-up; mean over seeds):"]
    for c, row in m.iterrows():
        per = "" if not np.isfinite(row.get("saved_s_per_event", np.nan)) else f"  saved {row.saved_s_per_event:5.1f} s/event"
        lines.append(f"  {c:<26} trips {row.trips:5.1f}  trip time {row.trip_time_s:7.1f} s  delay {row.time_loss_s:6.1f} s"
                     f"  halts {row.halts_per_trip:4.2f}/trip  priority events {row.events:5.1f} ({row.events_per_trip:4.2f}/trip){per}")
    if not e.empty and not junctions.empty:
        treated = sorted(set(e["junction_id"]))
        j = label(junctions)
        j = j[j["junction_id"].isin(treated)]
        if not j.empty:
            pr = j.groupby(["controller", "run_id"], sort=False)[["vehicles", "delay_s"]].sum()
            pr["d"] = pr["delay_s"] / pr["vehicles"].where(pr["vehicles"] > 0)
            dm = pr.groupby(level="controller", sort=False)["d"].mean().reindex(order)
            lines.append(f"  delay of all vehicles at the {len(treated)} junction(s) with priority events "
                         f"({', '.join(treated[:6])}{' ...' if len(treated) > 6 else ''}), s/veh:")
            base = dm.iloc[0]
            for c, d in dm.items():
                chg = f" ({100 * (d - base) / base:+.1f}%)" if c != order[0] and base else ""
                lines.append(f"    {c:<26} {d:6.1f}{chg}")
    return lines
