"""Statistics across seeds: means with t confidence intervals, paired differences against a baseline.

Definitions (used by ``mobility sweep``, ``mobility report`` and ``docs/experiments.md``):

* **Arm**: one (scenario, demand scale, controller variant). A *variant* is a controller with the
  parameters given for it (``max-pressure(min_green_s=5)``); its runs differ only by seed.
* **Mean and 95 % CI across seeds**: for *n* valid runs of an arm with values ``x_i``, the mean
  ``x̄`` and ``x̄ ± t(0.975, n−1) · s / √n`` with ``s`` the sample standard deviation (ddof = 1).
  With *n* < 2 the interval is undefined (NaN).
* **Paired difference against a baseline**: the same seed gives every controller the same demand
  (same Poisson arrivals, same vehicle types), so runs are paired by seed. For each seed where both
  the variant's and the baseline's run are valid, ``d_i = x_variant,i − x_baseline,i``; the mean
  difference and its 95 % t interval over those pairs (a paired t-test at the 5 % level rejects
  "no difference" exactly when the interval excludes zero). ``pct_change`` is
  ``100 · mean(d) / mean(x_baseline)`` over the same pairs, and its interval is the difference's
  interval scaled the same way. ``ci_includes_zero`` is True when the interval contains zero *or*
  is undefined (fewer than 2 pairs): the data do not show a difference.
* **Valid run**: status ``ok`` and not flagged as gridlocked (:func:`gridlock_reason`). Failed and
  gridlocked runs are never averaged in; :func:`excluded_runs` lists them with the reason, and the
  report and the sweep printout show that list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

CONFIDENCE = 0.95

#: a run is flagged as gridlocked when SUMO teleported any vehicle (``--time-to-teleport``: a vehicle
#: stood still that long, so SUMO removed it; its delay and CO2 while removed are missing) or when
#: more than this share of the vehicles seen could not even enter the network by the end
#: (``insertion_backlog_veh``: queues reached the network's edge)
GRIDLOCK_BACKLOG_SHARE = 0.10

#: the arm of a run: scenario, demand scale and controller variant (runs of an arm differ by seed)
ARM = ["scenario", "demand_scale", "variant"]

#: metrics summarised per junction and for the network (when present in the tables)
JUNCTION_METRICS = ("vehicles", "delay_s_per_veh", "stops_per_veh", "halted_veh_s", "queue_max_veh", "co2_kg",
                    "co2_idle_kg", "co2_g_per_veh", "fuel_kg", "nox_g", "co2_total_kg")
NETWORK_METRICS = ("vehicles_seen", "vehicles_arrived", "delay_s_per_veh", "stops_per_veh", "co2_kg", "co2_idle_kg",
                   "fuel_kg", "nox_g", "co2_total_kg", "teleports", "insertion_backlog_veh")

#: pseudo junction id used for network rows in combined tables
NETWORK = "(network)"


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """``(mean, ci_low, ci_high, n)`` of the finite values: Student-t interval (NaN bounds if n < 2)."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(v.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half, n


def gridlock_reason(teleports: float, insertion_backlog_veh: float, vehicles_seen: float,
                    collision_teleports: float = 0.0) -> str:
    """Why a run counts as gridlocked ("" if it does not); see :data:`GRIDLOCK_BACKLOG_SHARE`.
    ``collision_teleports``: those of the ``teleports`` that SUMO made after a collision
    (``--collision.action teleport``, its default), not because a vehicle was stuck: they are no
    sign of gridlock (tables written before this column existed count every teleport as stuck)."""
    why = []
    stuck = float(teleports or 0) - float(collision_teleports or 0)
    if stuck > 0:
        why.append(f"{stuck:.0f} teleports (SUMO removed vehicles stuck longer than --time-to-teleport)")
    seen = max(float(vehicles_seen or 0), 1.0)
    if insertion_backlog_veh and insertion_backlog_veh > GRIDLOCK_BACKLOG_SHARE * seen:
        why.append(f"{insertion_backlog_veh:.0f} vehicles ({100 * insertion_backlog_veh / seen:.0f} % of those seen) "
                   "could not enter the network")
    return "; ".join(why)


def with_arm_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Tables written before sweeps existed lack ``variant`` and ``demand_scale``: fill them
    (variant = controller name, scale 1)."""
    if df.empty or "controller" not in df.columns:
        return df
    df = df.copy()
    if "variant" not in df.columns:
        df["variant"] = df["controller"]
    if "demand_scale" not in df.columns:
        df["demand_scale"] = 1.0
    df["variant"] = df["variant"].fillna(df["controller"]).astype(str)
    df["demand_scale"] = df["demand_scale"].fillna(1.0).astype(float)
    return df


def _or0(v: Any) -> float:
    """A number, 0 for a missing value (NaN in tables written before a column existed)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if f != f else f


def excluded_runs(runs: pd.DataFrame, network: pd.DataFrame | None = None) -> pd.DataFrame:
    """Runs that are not averaged in, with the reason: failed runs and gridlocked runs.

    The gridlock rule is applied to ``network`` (teleports, insertion backlog) when given, else to the
    ``gridlock``/``gridlock_reason`` columns of ``runs``. Columns: run_id, scenario, demand_scale,
    variant, seed, status, reason."""
    runs = with_arm_columns(runs)
    cols = ["run_id", *ARM, "seed", "status", "reason"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    reason = pd.Series("", index=runs.index, dtype=object)
    failed = runs["status"].astype(str) != "ok"
    reason[failed] = "failed: " + runs.loc[failed, "error"].fillna("").astype(str)
    if network is not None and not network.empty and "teleports" in network.columns:
        net = network.drop_duplicates("run_id").set_index("run_id")
        why = {rid: gridlock_reason(r.get("teleports", 0), r.get("insertion_backlog_veh", 0), r.get("vehicles_seen", 0),
                                    _or0(r.get("collision_teleports", 0)))
               for rid, r in net.iterrows()}
        g = runs["run_id"].map(why).fillna("")
    elif "gridlock_reason" in runs.columns:
        g = runs["gridlock_reason"].fillna("").astype(str)
    else:
        g = pd.Series("", index=runs.index)
    gl = ~failed & (g != "")
    reason[gl] = "gridlock: " + g[gl]
    out = runs.loc[reason != "", ["run_id", *ARM, "seed", "status"]].copy()
    out["reason"] = reason[reason != ""]
    return out.reset_index(drop=True)


def _valid(table: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    table = with_arm_columns(table)
    if table.empty:
        return table
    return table[~table["run_id"].isin(set(excluded["run_id"]))]


def describe(table: pd.DataFrame, excluded: pd.DataFrame, metrics: Sequence[str], by: Sequence[str] = (),
             confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Mean and t interval over seeds of each metric, per arm and ``by`` (e.g. ``junction_id``).

    Long table: scenario, demand_scale, variant, *by, metric, n_seeds, mean, ci_low, ci_high."""
    t = _valid(table, excluded)
    keys = [*ARM, *by]
    cols = [*keys, "metric", "n_seeds", "mean", "ci_low", "ci_high"]
    metrics = [m for m in metrics if m in t.columns]
    if t.empty or not metrics:
        return pd.DataFrame(columns=cols)
    rows: list[dict[str, Any]] = []
    for key, g in t.groupby(keys, sort=False):
        for m in metrics:
            mean, lo, hi, n = t_interval(g[m].to_numpy(dtype=float), confidence)
            rows.append({**dict(zip(keys, key)), "metric": m, "n_seeds": n, "mean": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=cols)


def paired(table: pd.DataFrame, excluded: pd.DataFrame, metrics: Sequence[str], baseline: str,
           by: Sequence[str] = (), confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Paired differences (variant − baseline, matched by seed) with a t interval, per arm and ``by``.

    Long table: scenario, demand_scale, variant, *by, metric, n_pairs, baseline_mean, mean_diff,
    diff_ci_low, diff_ci_high, pct_change, pct_ci_low, pct_ci_high, ci_includes_zero. The baseline's
    own rows are not included."""
    t = _valid(table, excluded)
    group = ["scenario", "demand_scale", *by]
    cols = [*ARM, *by, "metric", "n_pairs", "baseline_mean", "mean_diff", "diff_ci_low", "diff_ci_high",
            "pct_change", "pct_ci_low", "pct_ci_high", "ci_includes_zero"]
    metrics = [m for m in metrics if m in t.columns]
    if t.empty or not metrics or baseline not in set(t["variant"]):
        return pd.DataFrame(columns=cols)
    rows: list[dict[str, Any]] = []
    for key, g in t.groupby(group, sort=False):
        base = g[g["variant"] == baseline].drop_duplicates("seed").set_index("seed")
        if base.empty:
            continue
        for variant, gv in g[g["variant"] != baseline].groupby("variant", sort=False):
            gv = gv.drop_duplicates("seed").set_index("seed")
            seeds = gv.index.intersection(base.index)
            for m in metrics:
                x, b = gv.loc[seeds, m].to_numpy(dtype=float), base.loc[seeds, m].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(b)
                d = x[ok] - b[ok]
                mean, lo, hi, n = t_interval(d, confidence)
                bmean = float(b[ok].mean()) if n else math.nan
                scale = 100.0 / bmean if bmean and math.isfinite(bmean) else math.nan
                includes_zero = not (n >= 2 and math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0))
                rows.append({**dict(zip(group, key)), "variant": variant, "metric": m, "n_pairs": n,
                             "baseline_mean": bmean, "mean_diff": mean, "diff_ci_low": lo, "diff_ci_high": hi,
                             "pct_change": mean * scale, "pct_ci_low": lo * scale, "pct_ci_high": hi * scale,
                             "ci_includes_zero": includes_zero})
    return pd.DataFrame(rows, columns=cols)


def pick_baseline(variants: Sequence[str], controllers: Sequence[str] = (), baseline: str | None = None) -> str:
    """The baseline variant: ``baseline`` if given (a variant label, or a controller name that has
    exactly one variant), else the first variant. Raises ``ValueError`` with the known labels."""
    variants = list(dict.fromkeys(variants))
    if not variants:
        raise ValueError("no runs to compare")
    if baseline is None:
        return variants[0]
    if baseline in variants:
        return baseline
    matches = [v for v, c in zip(variants, controllers) if c == baseline] if controllers else []
    if len(set(matches)) == 1:
        return matches[0]
    raise ValueError(f"baseline '{baseline}' is not a controller of these results; known: {', '.join(variants)}")


def summary(junctions: pd.DataFrame, network: pd.DataFrame, runs: pd.DataFrame, baseline: str | None = None,
            confidence: float = CONFIDENCE) -> dict[str, pd.DataFrame | str]:
    """Everything the report and the sweep printout show, as tables.

    Returns ``{"baseline": label, "excluded": ..., "junctions": describe per junction,
    "junction_diffs": paired per junction, "network": describe of the network rows,
    "network_diffs": paired of the network rows}``. The ``(unattributed)`` rows are kept in the
    junction tables (they are part of the network total); callers may drop them."""
    runs = with_arm_columns(runs)
    excl = excluded_runs(runs, network)
    arms = runs.drop_duplicates("variant")
    base = pick_baseline(list(arms["variant"]), list(arms["controller"]), baseline)
    return {
        "baseline": base,
        "excluded": excl,
        "junctions": describe(junctions, excl, JUNCTION_METRICS, ["junction_id"], confidence),
        "junction_diffs": paired(junctions, excl, JUNCTION_METRICS, base, ["junction_id"], confidence),
        "network": describe(network, excl, NETWORK_METRICS, (), confidence),
        "network_diffs": paired(network, excl, NETWORK_METRICS, base, (), confidence),
    }
