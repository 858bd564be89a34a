"""A self-contained HTML report of a results directory (``mobility report RESULTS --out FILE``).

One file, no network access needed to open it: CSS and a small script (sorting tables, switching the
map's controller layer) inline, every chart an inline SVG drawn from the tables (no plotting library,
no CDN). The markup lives in Jinja2 templates shipped as package data (``mobility/templates``:
``report.html.j2``, ``svg.html.j2``, ``report.css``, ``report.js``), rendered with autoescaping, so
every value from the tables is escaped by the template engine; this module only computes what is
shown (numbers, formatted text, SVG geometry). It holds, for each scenario and demand scale:

* network totals and the per-junction comparison table (mean and 95 % CI over seeds, HCM level of
  service, % change against the baseline paired by seed with its CI; click a header to sort);
* bar charts of delay, stops and CO2 per junction per controller (with CI whiskers);
* a network map drawn from the network geometry (sumolib edge shapes), each signalised junction
  coloured by the CO2 saved against the baseline (a selector switches the controller);
* per approach (when the results hold the ``approaches`` table): vehicles, delay and HCM LOS, stops,
  queue, volume-to-capacity, congestion index, CO2, spillback and blocked green; and the junctions
  with spillback or blocked green;
* time–space diagrams (signal states and vehicle trajectories along the corridor) when the results
  hold ``timespace_*`` tables: ``mobility compare``/``sweep`` record them for the first seed of each
  controller on a scenario with a ``corridor``; ``mobility run --timespace`` for its one run;
* the methodology: metric definitions (``docs/metrics.md``), zones, vehicle mix and emission
  classes, seeds, statistics, exclusions, versions.

Runs that failed or gridlocked (:mod:`mobility.experiments.stats`) are listed in a visible note and excluded
from every mean.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import __version__
from .errors import MobilityError
from .files import atomic_file
from .metrics import LOS_BANDS, UNATTRIBUTED, level_of_service
from .experiments.stats import ARM, GRIDLOCK_BACKLOG_SHARE, describe, pick_baseline, summary, with_arm_columns

#: colours of the controllers (Tableau 10), in order of appearance
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
#: time–space diagrams show this much of the measurement window (s), from its start
TIMESPACE_WINDOW_S = 900.0
#: trajectories are drawn with one point every this many seconds
TIMESPACE_POINT_EVERY_S = 2.0

CHARTS = (("delay_s_per_veh", "Delay per vehicle", "s/veh"), ("stops_per_veh", "Stops per vehicle", "stops/veh"),
          ("co2_kg", "CO2", "kg"))
#: columns of the per-approach section (mean ± CI over seeds) and their decimals
APPROACH_METRICS = (("vehicles", 0), ("delay_s_per_veh", 1), ("stops_per_veh", 2), ("queue_p95_veh", 1),
                    ("queue_max_veh", 1), ("vc_ratio", 2), ("congestion_index", 2), ("co2_kg", 2),
                    ("spillback_events", 1), ("spillback_s", 0), ("blocked_green_s", 0))
SPILLBACK_METRICS = ("spillback_events", "spillback_s", "blocked_green_s")


class ReportError(MobilityError):
    """The results directory cannot be reported (missing tables, unknown baseline)."""


def esc(x: Any) -> str:
    """HTML-escaped text (kept for callers; the report itself is escaped by its templates)."""
    return html.escape(str(x), quote=True)


def fnum(x: float, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}".replace("-", "−")


def _digits(metric: str) -> int:
    return 2 if metric.startswith("stops") else (0 if metric in ("vehicles", "vehicles_seen", "teleports") else 1)


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    """The Jinja2 environment of the report's templates (package data), autoescaping everything."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("mobility", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _svg(name: str, ctx: dict[str, Any]) -> str:
    """One SVG macro of ``svg.html.j2`` rendered (markup safe to embed)."""
    return _env().get_template("svg.html.j2").module.__getattribute__(name)(ctx)


# ------------------------------------------------------------------------------------------
# loading


def load_results(results: str | Path) -> dict[str, Any]:
    """The tables of a results directory (``junctions``, ``network``, ``runs`` required)."""
    d = Path(results)
    if not d.is_dir():
        raise ReportError(f"{d}: no such directory; expected the --out directory of mobility run, compare or sweep")
    from .files import check_results_dir, read_table

    check_results_dir(d)
    t: dict[str, Any] = {}
    for name in ("junctions", "network", "runs"):
        f = d / f"{name}.parquet"
        if not f.exists():
            raise ReportError(f"{f}: missing; expected the tables written by mobility run, compare or sweep")
        t[name] = with_arm_columns(read_table(f))
    for name in ("corridor", "timespace_signals", "timespace_trajectories", "approaches"):
        f = d / f"{name}.parquet"
        t[name] = with_arm_columns(read_table(f)) if f.exists() else pd.DataFrame()
    missing = [c for c in ("run_id", "controller", "status") if c not in t["runs"].columns]
    if missing:
        raise ReportError(f"{d / 'runs.parquet'}: no column {missing[0]!r}; expected the runs table written by "
                          "mobility run, compare or sweep")
    for name in ("junctions", "network"):
        if not t[name].empty and "run_id" not in t[name].columns:
            raise ReportError(f"{d / (name + '.parquet')}: no column 'run_id'; expected the {name} table written by "
                              "mobility run, compare or sweep")
    spec = d / "sweep.json"
    try:
        t["sweep"] = json.loads(spec.read_text(encoding="utf-8")) if spec.exists() else {}
    except (OSError, ValueError) as e:
        raise ReportError(f"{spec}: unreadable ({str(e).splitlines()[0][:100]}); expected the JSON written by mobility "
                          "sweep or compare, re-run it") from None
    if not isinstance(t["sweep"], dict):
        raise ReportError(f"{spec}: expected a JSON object written by mobility sweep or compare")
    if t["runs"].empty:
        raise ReportError(f"{d / 'runs.parquet'}: no runs to report")
    return t


# ------------------------------------------------------------------------------------------
# SVG pieces (geometry here, markup in svg.html.j2)


def _nice_ticks(hi: float, n: int = 5) -> list[float]:
    if not np.isfinite(hi) or hi <= 0:
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(hi / step)) + 1)]


def bar_chart(rows: pd.DataFrame, metric: str, title: str, unit: str, colors: dict[str, str],
              junction_order: Sequence[str]) -> str:
    """Horizontal grouped bars: one group per junction, one bar per controller, CI whiskers.

    ``rows``: the :func:`mobility.experiments.stats.describe` rows of one metric (junction_id, variant, mean,
    ci_low, ci_high)."""
    variants = [v for v in colors if v in set(rows["variant"])]
    bh, gap, left, right, top = 11, 9, 96, 24, 34
    width = 700
    ng = len(junction_order)
    height = top + ng * (len(variants) * bh + gap) + 28
    hi = float(np.nanmax(np.r_[rows["mean"].to_numpy(float), rows["ci_high"].to_numpy(float), 0.0]))
    ticks = _nice_ticks(hi)
    xmax = ticks[-1] or 1.0
    sx = (width - left - right) / xmax
    axis_y = height - 22
    idx = rows.set_index(["junction_id", "variant"])
    groups = []
    y = top
    for j in junction_order:
        bars = []
        label_y = f"{y + len(variants) * bh / 2 + 4:.1f}"
        for v in variants:
            if (j, v) in idx.index:
                r = idx.loc[(j, v)]
                m = float(r["mean"])
                if np.isfinite(m):
                    ci = f" [{fnum(r['ci_low'], 3)}, {fnum(r['ci_high'], 3)}]" if np.isfinite(r["ci_low"]) else ""
                    path = ""
                    if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
                        x0, x1 = left + max(r["ci_low"], 0) * sx, left + r["ci_high"] * sx
                        yc = y + bh / 2
                        path = f"M{x0:.1f} {yc:.1f}H{x1:.1f}M{x0:.1f} {yc - 3:.1f}V{yc + 3:.1f}M{x1:.1f} {yc - 3:.1f}V{yc + 3:.1f}"
                    bars.append({"y": y + 1, "width": f"{max(m * sx, 0.5):.1f}", "height": bh - 2, "color": colors[v],
                                 "tip": f"{j} · {v}: {fnum(m, 3)} {unit}{ci}", "ci": path})
            y += bh
        groups.append({"label": j, "y": label_y, "bars": bars})
        y += gap
    return _svg("bar_chart", {"width": width, "height": height, "left": left, "right": right, "top": top,
                              "axis_y": axis_y, "title": title, "unit": unit, "groups": groups,
                              "ticks": [{"x": f"{left + t * sx:.1f}", "label": f"{t:g}"} for t in ticks]})


def legend(colors: dict[str, str]) -> str:
    return _svg("legend", list(colors.items()))  # type: ignore[arg-type]


def _co2_color(saved_pct: float, scale: float) -> str:
    """Diverging: green = CO2 saved against the baseline, red = more CO2, grey = no value."""
    if not np.isfinite(saved_pct):
        return "#bdbdbd"
    f = max(-1.0, min(1.0, saved_pct / scale))
    if f >= 0:  # white → green
        a, b = (247, 247, 247), (26, 152, 80)
    else:
        a, b, f = (247, 247, 247), (215, 48, 39), -f
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))


def network_map(net_file: Path, junction_ids: Sequence[str], saved: dict[str, dict[str, tuple[float, bool]]],
                key: str) -> str:
    """SVG map of the network: edges from their shapes, signalised junctions as circles coloured by
    CO2 saved (%) against the baseline, one layer per controller (``saved[variant][junction] =
    (saved_pct, ci_includes_zero)``)."""
    import sumolib

    try:
        net = sumolib.net.readNet(str(net_file), withInternal=False)
    except Exception as e:  # noqa: BLE001 - sumolib raises SAX errors and assorted KeyErrors on bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReportError(f"{net_file}: cannot read SUMO network ({first[:120]}); expected the .net.xml the runs "
                          "used (runs.net_file)") from None
    xmin, ymin, xmax, ymax = net.getBoundary()
    dx, dy = max(xmax - xmin, 1.0), max(ymax - ymin, 1.0)
    width = 760.0
    pad = 24.0
    plot_h = min(max((width - 2 * pad) * dy / dx + 2 * pad, 160.0), 620.0)
    height = plot_h + 34.0  # + the legend band
    s = min((width - 2 * pad) / dx, (plot_h - 2 * pad) / dy)
    ox = (width - s * dx) / 2
    oy = (plot_h - s * dy) / 2

    def xy(p: tuple[float, float]) -> tuple[float, float]:
        return ox + (p[0] - xmin) * s, plot_h - oy - (p[1] - ymin) * s

    paths = []
    for edge in net.getEdges():
        shape = edge.getShape()
        if len(shape) >= 2:
            paths.append("M" + "L".join("{:.1f} {:.1f}".format(*xy(p)) for p in shape))
    pos = {}
    for jid in junction_ids:
        try:
            tls = net.getTLS(jid)
            pts = [e.getToNode().getCoord() for e in tls.getEdges()]
        except KeyError:
            try:
                pts = [net.getNode(jid).getCoord()]
            except KeyError:
                continue
        if pts:
            pos[jid] = (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
    finite = [abs(v[0]) for d in saved.values() for v in d.values() if np.isfinite(v[0])]
    scale = max(5.0, math.ceil(max(finite, default=5.0) / 5) * 5)
    layers = []
    for variant in list(saved) or [""]:
        vals = saved.get(variant, {})
        js = []
        for jid, p in pos.items():
            pct, ns = vals.get(jid, (math.nan, True))
            x, y = xy(p)
            tip = (f"{jid}: CO2 saved {pct:+.1f} % vs baseline" + (" (95 % CI includes 0)" if ns else "")
                   if np.isfinite(pct) else f"{jid}: no comparison")
            js.append({"id": jid, "x": f"{x:.1f}", "y": f"{y:.1f}", "lx": f"{x + 10:.1f}", "ly": f"{y - 10:.1f}",
                       "ns": ns, "fill": _co2_color(pct, scale), "tip": tip})
        layers.append({"variant": variant, "junctions": js})
    return _svg("network_map", {
        "key": key, "width": f"{width:.0f}", "height": f"{height:.0f}", "edges": " ".join(paths), "layers": layers,
        "labels": len(pos) <= 40, "scale": f"{scale:g}", "lx": width - 230, "ly": height - 12,
        "stops": [{"offset": f"{k / 8:.3f}", "color": _co2_color(scale * (k / 4 - 1), scale)} for k in range(9)]})


SIGNAL_COLORS = {"G": "#1a9850", "y": "#f2b600", "r": "#d73027"}


def timespace_diagram(traj: pd.DataFrame, signals: pd.DataFrame, t0: float, t1: float, title: str) -> str:
    """Time–space diagram of one direction: distance along the corridor over time; trajectories
    (one polyline per trip) and the through-movement signal state at each junction's stop line."""
    width, height, left, bottom, top, right = 720, 380, 56, 34, 28, 16
    dmax = float(max(traj["distance_m"].max() if len(traj) else 0.0,
                     signals["distance_m"].max() if len(signals) else 0.0, 1.0))
    sx = (width - left - right) / max(t1 - t0, 1.0)
    sy = (height - top - bottom) / dmax

    def X(t: np.ndarray | float) -> Any:
        return left + (t - t0) * sx

    def Y(d: np.ndarray | float) -> Any:
        return height - bottom - d * sy

    ticks = _nice_ticks(t1 - t0, 6)
    step = ticks[1] - ticks[0]
    xticks = []
    t = math.ceil(t0 / step - 1e-9) * step
    while t <= t1 + 1e-9:
        xticks.append({"x": f"{X(t):.1f}", "label": f"{t:g}"})
        t += step
    yticks = [{"y": f"{Y(d) + 4:.1f}", "label": f"{d:g}"} for d in _nice_ticks(dmax, 5) if d <= dmax + 1e-9]
    tr = traj[(traj["time_s"] >= t0) & (traj["time_s"] <= t1)]
    keep = np.isclose(np.mod(tr["time_s"].to_numpy() - t0, TIMESPACE_POINT_EVERY_S), 0.0) | \
        np.isclose(np.mod(tr["time_s"].to_numpy() - t0, TIMESPACE_POINT_EVERY_S), TIMESPACE_POINT_EVERY_S)
    tr = tr[keep].sort_values(["trip", "time_s"])
    polys = []
    for _, g in tr.groupby("trip", sort=False):
        if len(g) < 2:
            continue
        xs, ys = X(g["time_s"].to_numpy()), Y(g["distance_m"].to_numpy())
        polys.append(" ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys)))
    segs = []
    labels = []
    for (jid, dist), g in signals.groupby(["junction_id", "distance_m"], sort=False):
        g = g.sort_values("time_s")
        times, states = g["time_s"].to_numpy(float), g["state"].to_numpy()
        before = times <= t0
        start_state = states[before][-1] if before.any() else None
        cur_t, cur_s = t0, start_state
        for t, s in zip(times[~before], states[~before]):
            if t > t1:
                break
            if cur_s is not None and t > cur_t:
                segs.append((cur_t, t, dist, cur_s))
            cur_t, cur_s = t, s
        if cur_s is not None and t1 > cur_t:
            segs.append((cur_t, t1, dist, cur_s))
        labels.append({"id": jid, "y": f"{Y(dist) - 4:.1f}"})
    sig = []
    for state, color in SIGNAL_COLORS.items():
        d = "".join(f"M{X(a):.1f} {Y(dist):.1f}H{X(b):.1f}" for a, b, dist, s in segs if s == state)
        if d:
            sig.append({"color": color, "d": d})
    return _svg("timespace", {"width": width, "height": height, "left": left, "bottom": bottom, "top": top,
                              "right": right, "title": title, "xticks": xticks, "yticks": yticks, "polylines": polys,
                              "junction_labels": labels, "signals": sig})


# ------------------------------------------------------------------------------------------
# markdown (docs/metrics.md) → HTML, the small subset the docs use


def _inline(text: str) -> str:
    from markupsafe import escape

    t = str(escape(text))
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", t)
    t = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", t)
    return t


def markdown(md: str, shift: int = 2) -> str:
    """Headings, paragraphs, ``-`` lists and pipe tables (what ``docs/metrics.md`` uses); the text is
    escaped first, the markup added after."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if i == 0 and line.startswith("# "):  # the document's title: the section has its own
            i += 1
            continue
        if not line.strip():
            flush()
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            flush()
            lvl = min(len(m.group(1)) + shift, 6)
            out.append(f"<h{lvl}>{_inline(m.group(2))}</h{lvl}>")
            i += 1
        elif line.lstrip().startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, body = rows[0], rows[1:]
            out.append("<table class=\"doc\"><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) +
                       "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                                                        for r in body) + "</tbody></table>")
        elif re.match(r"^\s*[-*]\s+", line):
            flush()
            items: list[str] = []
            while i < len(lines) and lines[i].strip():
                cur = lines[i]
                if re.match(r"^\s*[-*]\s+", cur):
                    items.append(re.sub(r"^\s*[-*]\s+", "", cur))
                elif items:
                    items[-1] += " " + cur.strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
        else:
            para.append(line.strip())
            i += 1
    flush()
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# the report: what each table shows (the markup is in report.html.j2)


def _ci(mean: float, lo: float, hi: float, digits: int) -> dict[str, Any]:
    """A mean ± CI cell: its sort value, its text and the CI half-width ("" when undefined)."""
    return {"v": mean if np.isfinite(mean) else "", "text": fnum(mean, digits),
            "ci": fnum((hi - lo) / 2, digits) if np.isfinite(lo) and np.isfinite(hi) else ""}


def _pct(d: pd.Series | None) -> dict[str, Any] | None:
    """A paired % change cell (None: no comparison)."""
    if d is None or not np.isfinite(d["pct_change"]):
        return None
    ns = bool(d["ci_includes_zero"])
    return {"baseline": False, "v": d["pct_change"], "cls": "ns" if ns else ("better" if d["pct_change"] < 0 else "worse"),
            "title": f"paired over {int(d['n_pairs'])} seeds" + ("; the 95 % CI includes 0" if ns else ""),
            "text": f"{d['pct_change']:+.1f} %" + (" ≈0" if ns else ""),
            "ci": f"[{fnum(d['pct_ci_low'], 1)}, {fnum(d['pct_ci_high'], 1)}]" if np.isfinite(d["pct_ci_low"]) else "(no CI)"}


_BASELINE = {"baseline": True}


def _sel(df: pd.DataFrame, **eq: Any) -> pd.DataFrame:
    m = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        m &= (df[k] == v).to_numpy()
    return df[m]


def build_report(results: str | Path, baseline: str | None = None) -> str:
    """The report's HTML text for a results directory."""
    t = load_results(results)
    runs, junctions, network = t["runs"], t["junctions"], t["network"]
    arms = runs.drop_duplicates("variant")
    try:
        base = pick_baseline(list(arms["variant"]), list(arms["controller"]), baseline or t["sweep"].get("baseline"))
    except ValueError as e:
        raise ReportError(f"--baseline: {e}") from None
    s = summary(junctions, network, runs, base)
    excl: pd.DataFrame = s["excluded"]
    jdesc: pd.DataFrame = s["junctions"]
    jdiff: pd.DataFrame = s["junction_diffs"]
    ndesc: pd.DataFrame = s["network"]
    ndiff: pd.DataFrame = s["network_diffs"]
    variants = list(dict.fromkeys([base, *runs["variant"]]))
    colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}
    name = t["sweep"].get("name") or ", ".join(dict.fromkeys(runs["scenario"].astype(str)))
    adesc = describe(t["approaches"], excl, [m for m, _ in APPROACH_METRICS], ["junction_id", "approach"]) \
        if not t["approaches"].empty else pd.DataFrame()
    sdesc = describe(junctions, excl, SPILLBACK_METRICS, ["junction_id"]) \
        if set(SPILLBACK_METRICS) <= set(junctions.columns) else pd.DataFrame()
    groups = []
    for gi, (scen, scale) in enumerate(runs.drop_duplicates(["scenario", "demand_scale"])[["scenario", "demand_scale"]]
                                       .itertuples(index=False)):
        key = f"g{gi}"
        grun = _sel(runs, scenario=scen, demand_scale=scale)
        gvars = [v for v in variants if v in set(grun["variant"])]
        jd = _sel(jdesc, scenario=scen, demand_scale=scale)
        jd = jd[jd["junction_id"] != UNATTRIBUTED]
        jf = _sel(jdiff, scenario=scen, demand_scale=scale) if not jdiff.empty else jdiff
        jorder = list(dict.fromkeys(jd["junction_id"]))
        charts = [bar_chart(jd[jd["metric"] == m], m, label, unit, {v: colors[v] for v in gvars}, jorder)
                  for m, label, unit in CHARTS if not jd[jd["metric"] == m].empty]
        groups.append({
            "key": key, "title": f"{scen}, demand × {scale:g}",
            "network": _network_table(_sel(ndesc, scenario=scen, demand_scale=scale),
                                      _sel(ndiff, scenario=scen, demand_scale=scale) if not ndiff.empty else ndiff,
                                      grun, gvars, base),
            "junctions": _junction_rows(jd, jf, gvars, base),
            "legend": [(v, colors[v]) for v in gvars], "charts": charts,
            "map": _map_section(grun, jorder, jf, gvars, base, key),
            "approaches": _approach_rows(_sel(adesc, scenario=scen, demand_scale=scale) if not adesc.empty else adesc,
                                         t["approaches"], gvars),
            "spillback": _spillback_rows(_sel(sdesc, scenario=scen, demand_scale=scale) if not sdesc.empty else sdesc,
                                         gvars),
            "corridor": _corridor_rows(_sel(t["corridor"], scenario=scen, demand_scale=scale), excl, gvars)
            if not t["corridor"].empty else [],
            "timespace": _timespace(grun, t, gvars, t["corridor"])
            if not t["timespace_trajectories"].empty and not t["timespace_signals"].empty else None,
        })
    from markupsafe import Markup

    ctx: dict[str, Any] = {"name": name, "n_runs": len(runs), "results": str(Path(results).resolve()), "base": base,
           "version": __version__,
           "sumo_versions": ", ".join(runs.get("sumo_version", pd.Series(["?"])).dropna().astype(str).unique()),
           "notes": _notes(runs, network, excl), "groups": groups, "method": _methodology(runs)}
    if ctx["method"]["definitions"] is not None:
        ctx["method"]["definitions"] = Markup(ctx["method"]["definitions"])  # our own markdown, escaped inside
    return _env().get_template("report.html.j2").render(ctx)


def _notes(runs: pd.DataFrame, network: pd.DataFrame, excl: pd.DataFrame) -> dict[str, Any]:
    excluded = [{"scenario": r.scenario, "scale": f"{r.demand_scale:g}", "variant": r.variant, "seed": r.seed,
                 "run_id": r.run_id, "reason": r.reason} for r in excl.itertuples()]
    backlog = []
    if "insertion_backlog_veh" in network.columns:
        back = network[(network["insertion_backlog_veh"] > 0) & ~network["run_id"].isin(set(excl["run_id"]))]
        backlog = [{"scenario": r.scenario, "scale": f"{r.demand_scale:g}", "variant": r.variant, "seed": r.seed,
                    "waiting": f"{r.insertion_backlog_veh:.0f}"} for r in back.itertuples()]
    seeds = runs.groupby(ARM)["seed"].nunique()
    return {"excluded": excluded, "backlog": backlog, "one_seed": bool(len(seeds) and seeds.max() < 2),
            "backlog_share": f"{GRIDLOCK_BACKLOG_SHARE:.0%}"}


def _network_table(nd: pd.DataFrame, nf: pd.DataFrame, runs: pd.DataFrame, variants: list[str], base: str) -> dict[str, Any]:
    metrics = [("delay_s_per_veh", "delay s/veh"), ("stops_per_veh", "stops/veh"), ("co2_kg", "CO2 kg")]
    if "co2_total_kg" in set(nd["metric"]):
        metrics.append(("co2_total_kg", "CO2 incl. scope 2, kg"))
    rows = []
    for v in variants:
        d = nd[nd["variant"] == v]
        valid = int(d["n_seeds"].max()) if not d.empty else 0
        cells = []
        for m, _ in metrics:
            r = d[d["metric"] == m]
            mean, lo, hi = r.iloc[0][["mean", "ci_low", "ci_high"]] if not r.empty else (np.nan,) * 3
            c = _ci(mean, lo, hi, _digits(m))
            f = nf[(nf["variant"] == v) & (nf["metric"] == m)] if not nf.empty else nf
            cells.append((c, _BASELINE if v == base else _pct(f.iloc[0] if not f.empty else None)))
        health = []
        for m in ("teleports", "insertion_backlog_veh"):
            r = d[d["metric"] == m]
            health.append(_ci(r.iloc[0]["mean"], np.nan, np.nan, 0 if m == "teleports" else 1) if not r.empty else None)
        rows.append({"variant": v, "valid": valid, "total": int((runs["variant"] == v).sum()), "cells": cells,
                     "health": health})
    return {"metrics": [lbl for _, lbl in metrics], "rows": rows}


def _junction_rows(jd: pd.DataFrame, jf: pd.DataFrame, variants: list[str], base: str) -> list[dict[str, Any]]:
    w = jd.pivot_table(index=["junction_id", "variant"], columns="metric", values=["mean", "ci_low", "ci_high", "n_seeds"],
                       aggfunc="first", sort=False)
    fidx = jf.set_index(["junction_id", "variant", "metric"]) if not jf.empty else None
    rows = []
    for j in dict.fromkeys(jd["junction_id"]):
        for v in variants:
            if (j, v) not in w.index:
                continue
            r = w.loc[(j, v)]

            def get(stat: str, m: str) -> float:
                return float(r[(stat, m)]) if (stat, m) in r.index else math.nan

            def cell(m: str, digits: int) -> dict[str, Any]:
                return _ci(get("mean", m), get("ci_low", m), get("ci_high", m), digits)

            def diff(m: str) -> dict[str, Any] | None:
                if v == base:
                    return _BASELINE
                key = (j, v, m)
                return _pct(fidx.loc[key] if fidx is not None and key in fidx.index else None)

            co2 = get("mean", "co2_kg")
            idle = 100 * get("mean", "co2_idle_kg") / co2 if co2 else math.nan
            rows.append({"junction": j, "variant": v, "seeds": f"{get('n_seeds', 'delay_s_per_veh'):.0f}",
                         "vehicles": cell("vehicles", 0), "delay": cell("delay_s_per_veh", 1),
                         "los": level_of_service(get("mean", "delay_s_per_veh")), "d_delay": diff("delay_s_per_veh"),
                         "stops": cell("stops_per_veh", 2), "d_stops": diff("stops_per_veh"),
                         "co2": cell("co2_kg", 2), "d_co2": diff("co2_kg"),
                         "idle": {"v": idle if np.isfinite(idle) else "", "text": fnum(idle, 0)}})
    return rows


def _approach_rows(ad: pd.DataFrame, approaches: pd.DataFrame, variants: list[str]) -> list[dict[str, Any]]:
    """Per (junction, approach, controller): mean ± CI of :data:`APPROACH_METRICS`; the pseudo
    approach ``(none)`` is left out (it holds no served vehicle by construction of the table)."""
    if ad.empty:
        return []
    ad = ad[(ad["approach"] != "(none)") & (ad["junction_id"] != UNATTRIBUTED)]
    w = ad.pivot_table(index=["junction_id", "approach", "variant"], columns="metric",
                       values=["mean", "ci_low", "ci_high"], aggfunc="first", sort=False)
    lanes = approaches.drop_duplicates(["junction_id", "approach"]).set_index(["junction_id", "approach"])["lanes"] \
        if "lanes" in approaches.columns else pd.Series(dtype=float)
    rows = []
    for j, a in dict.fromkeys(zip(ad["junction_id"], ad["approach"])):
        for v in variants:
            if (j, a, v) not in w.index:
                continue
            r = w.loc[(j, a, v)]

            def cell(m: str, digits: int) -> dict[str, Any]:
                get = lambda s: float(r[(s, m)]) if (s, m) in r.index else math.nan  # noqa: E731
                return _ci(get("mean"), get("ci_low"), get("ci_high"), digits)

            c = {m: cell(m, d) for m, d in APPROACH_METRICS}
            delay = float(r[("mean", "delay_s_per_veh")]) if ("mean", "delay_s_per_veh") in r.index else math.nan
            rows.append({"junction": j, "approach": a, "variant": v, "lanes": int(lanes.get((j, a), 0)),
                         "vehicles": c["vehicles"], "delay": c["delay_s_per_veh"], "los": level_of_service(delay),
                         "stops": c["stops_per_veh"], "q95": c["queue_p95_veh"], "qmax": c["queue_max_veh"],
                         "vc": c["vc_ratio"], "ci": c["congestion_index"], "co2": c["co2_kg"],
                         "spill_n": c["spillback_events"], "spill_s": c["spillback_s"],
                         "blocked": c["blocked_green_s"]})
    return rows


def _spillback_rows(sd: pd.DataFrame, variants: list[str]) -> list[dict[str, Any]]:
    """Junctions where some controller had spillback or blocked green (mean over seeds > 0)."""
    if sd.empty:
        return []
    sd = sd[sd["junction_id"] != UNATTRIBUTED]
    hit = set(sd.loc[(sd["metric"].isin(SPILLBACK_METRICS)) & (sd["mean"] > 0), "junction_id"])
    w = sd.pivot_table(index=["junction_id", "variant"], columns="metric", values=["mean", "ci_low", "ci_high"],
                       aggfunc="first", sort=False)
    rows = []
    for j in dict.fromkeys(sd["junction_id"]):
        if j not in hit:
            continue
        for v in variants:
            if (j, v) not in w.index:
                continue
            r = w.loc[(j, v)]
            get = lambda s, m: float(r[(s, m)]) if (s, m) in r.index else math.nan  # noqa: E731
            cell = lambda m, d: _ci(get("mean", m), get("ci_low", m), get("ci_high", m), d)  # noqa: E731
            rows.append({"junction": j, "variant": v, "events": cell("spillback_events", 1),
                         "secs": cell("spillback_s", 0), "blocked": cell("blocked_green_s", 0)})
    return rows


def _map_section(runs: pd.DataFrame, jorder: list[str], jf: pd.DataFrame, variants: list[str], base: str,
                 key: str) -> dict[str, Any]:
    net_file = None
    if "net_file" in runs.columns and runs["net_file"].notna().any():
        net_file = Path(str(runs["net_file"].dropna().iloc[0]))
    else:
        from .scenario import load_scenario

        try:
            net_file = load_scenario(str(runs["scenario_source"].iloc[0])).net_file
        except (MobilityError, KeyError):
            net_file = None
    if net_file is None or not net_file.exists():
        return {"missing": str(net_file)}
    saved: dict[str, dict[str, tuple[float, bool]]] = {}
    others = [v for v in variants if v != base]
    for v in others:
        d = jf[(jf["variant"] == v) & (jf["metric"] == "co2_kg")] if not jf.empty else jf
        saved[v] = {r.junction_id: (-float(r.pct_change), bool(r.ci_includes_zero)) for r in d.itertuples()}
    return {"missing": "", "others": others, "svg": network_map(net_file, jorder, saved, key), "file": net_file.name}


def _corridor_rows(c: pd.DataFrame, excl: pd.DataFrame, variants: list[str]) -> list[dict[str, Any]]:
    if c.empty:
        return []
    from .experiments.stats import t_interval

    c = c[~c["run_id"].isin(set(excl["run_id"]))]
    metrics = [("vehicles", 0), ("travel_time_s_mean", 1), ("delay_s_per_veh", 1), ("stops_per_veh", 2),
               ("co2_g_per_veh", 0), ("congestion_index", 2)]
    rows = []
    for (direction, fj, tj), g in c.groupby(["direction", "from_junction", "to_junction"], sort=False):
        for v in variants:
            gv = g[g["variant"] == v]
            if gv.empty:
                continue
            cells = []
            for m, dg in metrics:
                vals = gv[m].to_numpy(float) if m in gv.columns else np.full(len(gv), np.nan)
                mean, lo, hi, _ = t_interval(vals)
                cells.append(_ci(mean, lo, hi, dg))
            rows.append({"label": f"{direction} {fj}→{tj}", "variant": v, "cells": cells})
    return rows


def _timespace(runs: pd.DataFrame, t: dict[str, Any], variants: list[str], corridor: pd.DataFrame) -> dict[str, Any] | None:
    traj, sig = t["timespace_trajectories"], t["timespace_signals"]
    have = set(traj["run_id"]) & set(sig["run_id"]) & set(runs["run_id"])
    if not have:
        return None
    rows = []
    for v in variants:
        r = runs[(runs["variant"] == v) & runs["run_id"].isin(have)]
        if r.empty:
            continue
        r = r.sort_values("seed").iloc[0]
        t0 = float(r.get("begin_s", 0.0)) + float(r.get("warmup_s", 0.0))
        t1 = min(float(r.get("end_s", t0 + TIMESPACE_WINDOW_S)), t0 + TIMESPACE_WINDOW_S)
        tr, sg = traj[traj["run_id"] == r["run_id"]], sig[sig["run_id"] == r["run_id"]]
        row = []
        for direction in dict.fromkeys(sg["direction"]):
            span = ""
            if not corridor.empty:
                cd = corridor[(corridor["run_id"] == r["run_id"]) & (corridor["direction"] == direction)]
                if not cd.empty:
                    span = f" ({cd.iloc[0]['from_junction']} → {cd.iloc[0]['to_junction']})"
            row.append(timespace_diagram(tr[tr["direction"] == direction], sg[sg["direction"] == direction], t0, t1,
                                         f"{v}, seed {r['seed']}: {direction}{span}"))
        rows.append(row)
    return {"every": f"{TIMESPACE_POINT_EVERY_S:g}", "window": f"{TIMESPACE_WINDOW_S:g}", "rows": rows}


def _methodology(runs: pd.DataFrame) -> dict[str, Any]:
    from .scenario import ROOT

    first = runs.drop_duplicates("scenario")
    scen, mixes = [], []
    for r in first.itertuples():
        def g(k: str) -> Any:
            return getattr(r, k, "–")
        scen.append({"scenario": r.scenario, "source": g("scenario_source"), "hash": g("scenario_hash"),
                     "begin": g("begin_s"), "end": g("end_s"), "warmup": g("warmup_s"), "step": g("step_length_s"),
                     "up": g("zone_upstream_m"), "down": g("zone_downstream_m")})
        mix = json.loads(getattr(r, "vehicle_mix", "[]") or "[]") if isinstance(getattr(r, "vehicle_mix", None), str) else []
        grid = getattr(r, "grid_kg_co2_per_kwh", None)
        mixes.append({"scenario": r.scenario, "fleet": getattr(r, "fleet", "") or "",
                      "mix": [{**m, "share": f"{100 * float(m['share']):.1f}"} for m in mix],
                      "grid": f"{grid:g}" if grid is not None and np.isfinite(grid) else None,
                      "grid_source": getattr(r, "grid_factor_source", ""), "grid_year": getattr(r, "grid_factor_year", "")})
    seeds = runs.groupby(ARM, sort=False)["seed"].apply(lambda s: ", ".join(str(x) for x in sorted(s.unique())))
    cols = [c for c in ("sumo_version", "mobility_version", "python_version", "backend", "sumo_args") if c in runs.columns]
    doc = ROOT / "docs" / "metrics.md"
    return {"scenarios": scen, "mixes": mixes,
            "seeds": [{"scenario": k[0], "scale": f"{k[1]:g}", "variant": k[2], "seeds": v} for k, v in seeds.items()],
            "bands": ", ".join(f"{g} ≤ {lim:g}" for lim, g in LOS_BANDS),
            "version_cols": cols, "versions": [list(r) for r in runs[cols].drop_duplicates().itertuples(index=False)],
            "definitions": markdown(doc.read_text(encoding="utf-8"), shift=3) if doc.exists() else None}


def write_report(results: str | Path, out: str | Path | None = None, *, baseline: str | None = None) -> Path:
    """Write the report of ``results`` to ``out`` (default ``results/report.html``) atomically."""
    text = build_report(results, baseline)
    path = Path(out) if out is not None else Path(results) / "report.html"
    if path.is_dir():
        raise ReportError(f"--out {path}: is a directory; expected an .html file name")
    if not path.parent.exists():
        raise ReportError(f"--out {path}: directory {path.parent} does not exist")
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
