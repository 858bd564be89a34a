"""A self-contained HTML report of a results directory (``mobility report RESULTS --out FILE``).

One file, no network access needed to open it: CSS and a small script inline, every chart an inline
SVG drawn here from the tables (no plotting library, no CDN). It holds, for each scenario and demand
scale:

* network totals and the per-junction comparison table (mean and 95 % CI over seeds, HCM level of
  service, % change against the baseline paired by seed with its CI; click a header to sort);
* bar charts of delay, stops and CO2 per junction per controller (with CI whiskers);
* a network map drawn from the network geometry (sumolib edge shapes), each signalised junction
  coloured by the CO2 saved against the baseline (a selector switches the controller);
* time–space diagrams (signal states and vehicle trajectories along the corridor) when the results
  hold ``timespace_*`` tables: ``mobility compare``/``sweep`` record them for the first seed of each
  controller on a scenario with a ``corridor``; ``mobility run --timespace`` for its one run;
* the methodology: metric definitions (``docs/metrics.md``), zones, vehicle mix and emission
  classes, seeds, statistics, exclusions, versions.

Runs that failed or gridlocked (:mod:`mobility.experiments.stats`) are listed in a visible note and excluded
from every mean.
"""

from __future__ import annotations

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
from .metrics import LOS_BANDS, UNATTRIBUTED, level_of_service
from .experiments.stats import ARM, GRIDLOCK_BACKLOG_SHARE, pick_baseline, summary, with_arm_columns

#: colours of the controllers (Tableau 10), in order of appearance
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
#: time–space diagrams show this much of the measurement window (s), from its start
TIMESPACE_WINDOW_S = 900.0
#: trajectories are drawn with one point every this many seconds
TIMESPACE_POINT_EVERY_S = 2.0

CHARTS = (("delay_s_per_veh", "Delay per vehicle", "s/veh"), ("stops_per_veh", "Stops per vehicle", "stops/veh"),
          ("co2_kg", "CO2", "kg"))


class ReportError(MobilityError):
    """The results directory cannot be reported (missing tables, unknown baseline)."""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fnum(x: float, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}".replace("-", "−")


def _digits(metric: str) -> int:
    return 2 if metric.startswith("stops") else (0 if metric in ("vehicles", "vehicles_seen", "teleports") else 1)


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
    for name in ("corridor", "timespace_signals", "timespace_trajectories"):
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
# SVG pieces


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
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{esc(title)} per junction">',
           f'<text x="{left}" y="16" class="ttl">{esc(title)} ({esc(unit)}), mean and 95 % CI over seeds</text>']
    axis_y = height - 22
    for t in ticks:
        x = left + t * sx
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{axis_y}" class="grid"/>'
                   f'<text x="{x:.1f}" y="{axis_y + 14}" class="tick" text-anchor="middle">{t:g}</text>')
    idx = rows.set_index(["junction_id", "variant"])
    y = top
    for j in junction_order:
        out.append(f'<text x="{left - 6}" y="{y + len(variants) * bh / 2 + 4:.1f}" text-anchor="end" class="lbl">'
                   f'{esc(j)}</text>')
        for v in variants:
            if (j, v) in idx.index:
                r = idx.loc[(j, v)]
                m = float(r["mean"])
                if np.isfinite(m):
                    ci = (f" [{fnum(r['ci_low'], 3)}, {fnum(r['ci_high'], 3)}]" if np.isfinite(r["ci_low"]) else "")
                    out.append(f'<rect class="bar" x="{left}" y="{y + 1}" width="{max(m * sx, 0.5):.1f}" '
                               f'height="{bh - 2}" fill="{colors[v]}"><title>{esc(j)} · {esc(v)}: '
                               f'{fnum(m, 3)} {esc(unit)}{ci}</title></rect>')
                    if np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"]):
                        x0, x1 = left + max(r["ci_low"], 0) * sx, left + r["ci_high"] * sx
                        yc = y + bh / 2
                        out.append(f'<path class="ci" d="M{x0:.1f} {yc:.1f}H{x1:.1f}M{x0:.1f} {yc - 3:.1f}'
                                   f'V{yc + 3:.1f}M{x1:.1f} {yc - 3:.1f}V{yc + 3:.1f}"/>')
            y += bh
        y += gap
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" class="axis"/>')
    out.append("</svg>")
    return "".join(out)


def legend(colors: dict[str, str]) -> str:
    return '<p class="legend">' + " ".join(
        f'<span><i style="background:{c}"></i>{esc(v)}</span>' for v, c in colors.items()) + "</p>"


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

    def xy(p: tuple[float, float]) -> str:
        return f"{ox + (p[0] - xmin) * s:.1f} {plot_h - oy - (p[1] - ymin) * s:.1f}"

    paths = []
    for e in net.getEdges():
        shape = e.getShape()
        if len(shape) >= 2:
            paths.append("M" + "L".join(xy(p) for p in shape))
    out = [f'<svg class="map" id="map-{esc(key)}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
           f'height="{height:.0f}" role="img" aria-label="network map">',
           f'<path class="edge" d="{" ".join(paths)}"/>']
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
    layers = list(saved) or [""]
    finite = [abs(v[0]) for d in saved.values() for v in d.values() if np.isfinite(v[0])]
    scale = max(5.0, math.ceil(max(finite, default=5.0) / 5) * 5)
    for i, variant in enumerate(layers):
        vals = saved.get(variant, {})
        hidden = "" if i == 0 else ' style="display:none"'
        out.append(f'<g class="mapvariant" data-variant="{esc(variant)}"{hidden}>')
        for jid, p in pos.items():
            pct, ns = vals.get(jid, (math.nan, True))
            xs, ys = xy(p).split()
            tip = (f"{jid}: CO2 saved {pct:+.1f} % vs baseline" + (" (95 % CI includes 0)" if ns else "")
                   if np.isfinite(pct) else f"{jid}: no comparison")
            out.append(f'<circle class="junction{" ns" if ns else ""}" cx="{xs}" cy="{ys}" r="8" '
                       f'fill="{_co2_color(pct, scale)}"><title>{esc(tip)}</title></circle>')
            if len(pos) <= 40:
                out.append(f'<text class="jl" x="{float(xs) + 10:.1f}" y="{float(ys) - 10:.1f}">{esc(jid)}</text>')
        out.append("</g>")
    # legend: gradient from -scale (more CO2) to +scale (saved)
    gid = f"grad-{esc(key)}"
    stops = "".join(f'<stop offset="{k / 8:.3f}" stop-color="{_co2_color(scale * (k / 4 - 1), scale)}"/>'
                    for k in range(9))
    lx, ly = width - 230, height - 12
    out.append(f'<defs><linearGradient id="{gid}">{stops}</linearGradient></defs>'
               f'<rect x="{lx}" y="{ly - 10}" width="200" height="8" fill="url(#{gid})" stroke="#999" stroke-width=".5"/>'
               f'<text class="tick" x="{lx}" y="{ly + 9}">−{scale:g} % (more)</text>'
               f'<text class="tick" x="{lx + 200}" y="{ly + 9}" text-anchor="end">+{scale:g} % saved</text>'
               f'<text class="tick" x="{lx + 100}" y="{ly - 14}" text-anchor="middle">CO2 vs baseline</text>')
    out.append("</svg>")
    return "".join(out)


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

    out = [f'<svg class="timespace" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{esc(title)}">', f'<text x="{left}" y="16" class="ttl">{esc(title)}</text>']
    ticks = _nice_ticks(t1 - t0, 6)
    step = ticks[1] - ticks[0]
    t = math.ceil(t0 / step - 1e-9) * step
    while t <= t1 + 1e-9:
        out.append(f'<line class="grid" x1="{X(t):.1f}" y1="{top}" x2="{X(t):.1f}" y2="{height - bottom}"/>'
                   f'<text class="tick" x="{X(t):.1f}" y="{height - bottom + 14}" text-anchor="middle">{t:g}</text>')
        t += step
    for d in _nice_ticks(dmax, 5):
        if d <= dmax + 1e-9:
            out.append(f'<text class="tick" x="{left - 5}" y="{Y(d) + 4:.1f}" text-anchor="end">{d:g}</text>')
    out.append(f'<text class="tick" x="{(left + width - right) / 2}" y="{height - 4}" text-anchor="middle">'
               f'simulation time (s)</text><text class="tick" transform="translate(12 {(top + height - bottom) / 2}) '
               f'rotate(-90)" text-anchor="middle">distance (m)</text>')
    # trajectories
    tr = traj[(traj["time_s"] >= t0) & (traj["time_s"] <= t1)]
    keep = np.isclose(np.mod(tr["time_s"].to_numpy() - t0, TIMESPACE_POINT_EVERY_S), 0.0) | \
        np.isclose(np.mod(tr["time_s"].to_numpy() - t0, TIMESPACE_POINT_EVERY_S), TIMESPACE_POINT_EVERY_S)
    tr = tr[keep].sort_values(["trip", "time_s"])
    polys = []
    for _, g in tr.groupby("trip", sort=False):
        if len(g) < 2:
            continue
        xs, ys = X(g["time_s"].to_numpy()), Y(g["distance_m"].to_numpy())
        polys.append('<polyline points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys)) + '"/>')
    out.append('<g class="traj">' + "".join(polys) + "</g>")
    # signal states: one bar per junction stop line, coloured by state over time
    segs = []
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
        out.append(f'<text class="tick" x="{width - right}" y="{Y(dist) - 4:.1f}" text-anchor="end">{esc(jid)}</text>')
    for state, color in SIGNAL_COLORS.items():
        d = "".join(f"M{X(a):.1f} {Y(dist):.1f}H{X(b):.1f}" for a, b, dist, s in segs if s == state)
        if d:
            out.append(f'<path class="sig" stroke="{color}" d="{d}"/>')
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------------
# markdown (docs/metrics.md) → HTML, the small subset the docs use


def _inline(text: str) -> str:
    t = esc(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", t)
    t = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", t)
    return t


def markdown(md: str, shift: int = 2) -> str:
    """Headings, paragraphs, ``-`` lists and pipe tables (what ``docs/metrics.md`` uses)."""
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
# the report


def _ci_cell(mean: float, lo: float, hi: float, digits: int) -> str:
    ci = f'<span class="ci">±{fnum((hi - lo) / 2, digits)}</span>' if np.isfinite(lo) and np.isfinite(hi) else ""
    return f'<td data-v="{mean if np.isfinite(mean) else ""}">{fnum(mean, digits)} {ci}</td>'


def _pct_cell(d: pd.Series | None) -> str:
    if d is None or not np.isfinite(d["pct_change"]):
        return '<td data-v="" class="na">–</td>'
    ci = (f'<span class="ci">[{fnum(d["pct_ci_low"], 1)}, {fnum(d["pct_ci_high"], 1)}]</span>'
          if np.isfinite(d["pct_ci_low"]) else '<span class="ci">(no CI)</span>')
    cls = "ns" if d["ci_includes_zero"] else ("better" if d["pct_change"] < 0 else "worse")
    mark = " ≈0" if d["ci_includes_zero"] else ""
    return (f'<td data-v="{d["pct_change"]}" class="{cls}" title="paired over {int(d["n_pairs"])} seeds'
            f'{"; the 95 % CI includes 0" if d["ci_includes_zero"] else ""}">{d["pct_change"]:+.1f} %{mark} {ci}</td>')


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
    excl: pd.DataFrame = s["excluded"]  # type: ignore[assignment]
    jdesc: pd.DataFrame = s["junctions"]  # type: ignore[assignment]
    jdiff: pd.DataFrame = s["junction_diffs"]  # type: ignore[assignment]
    ndesc: pd.DataFrame = s["network"]  # type: ignore[assignment]
    ndiff: pd.DataFrame = s["network_diffs"]  # type: ignore[assignment]
    variants = list(dict.fromkeys([base, *runs["variant"]]))
    colors = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}
    name = t["sweep"].get("name") or ", ".join(dict.fromkeys(runs["scenario"].astype(str)))
    body: list[str] = [f"<h1>mobility report: {esc(name)}</h1>",
                       f'<p class="sub">{len(runs)} runs from <code>{esc(Path(results).resolve())}</code>; '
                       f"baseline <b>{esc(base)}</b>; mobility {esc(__version__)}, SUMO "
                       f"{esc(', '.join(runs.get('sumo_version', pd.Series(['?'])).dropna().astype(str).unique()))}</p>"]
    body.append(_notes(runs, network, excl))
    groups = runs.drop_duplicates(["scenario", "demand_scale"])[["scenario", "demand_scale"]].itertuples(index=False)
    toc = []
    for gi, (scen, scale) in enumerate(groups):
        key = f"g{gi}"
        title = f"{scen}, demand × {scale:g}"
        toc.append(f'<a href="#{key}">{esc(title)}</a>')
        body.append(f'<section id="{key}"><h2>{esc(title)}</h2>')
        gvars = [v for v in variants if v in set(_sel(runs, scenario=scen, demand_scale=scale)["variant"])]
        body.append(_network_table(_sel(ndesc, scenario=scen, demand_scale=scale),
                                   _sel(ndiff, scenario=scen, demand_scale=scale) if not ndiff.empty else ndiff,
                                   _sel(runs, scenario=scen, demand_scale=scale), gvars, base))
        jd = _sel(jdesc, scenario=scen, demand_scale=scale)
        jd = jd[jd["junction_id"] != UNATTRIBUTED]
        jf = _sel(jdiff, scenario=scen, demand_scale=scale) if not jdiff.empty else jdiff
        jorder = list(dict.fromkeys(jd["junction_id"]))
        body.append("<h3>Per junction</h3>" + _junction_table(jd, jf, gvars, base))
        body.append("<h3>Charts</h3>" + legend({v: colors[v] for v in gvars}))
        for metric, label, unit in CHARTS:
            rows = jd[jd["metric"] == metric]
            if not rows.empty:
                body.append(bar_chart(rows, metric, label, unit, {v: colors[v] for v in gvars}, jorder))
        body.append(_map_section(_sel(runs, scenario=scen, demand_scale=scale), jorder, jf, gvars, base, key))
        if not t["corridor"].empty:
            body.append(_corridor_table(_sel(t["corridor"], scenario=scen, demand_scale=scale), excl, gvars))
        if not t["timespace_trajectories"].empty and not t["timespace_signals"].empty:
            body.append(_timespace_section(_sel(runs, scenario=scen, demand_scale=scale), t, gvars, t["corridor"]))
        body.append("</section>")
    body.append(_methodology(runs, excl))
    nav = '<nav>' + " · ".join([*toc, '<a href="#methodology">Methodology</a>']) + "</nav>"
    return _page(f"mobility report: {name}", nav + "\n".join(body))


def _notes(runs: pd.DataFrame, network: pd.DataFrame, excl: pd.DataFrame) -> str:
    parts = []
    if not excl.empty:
        items = "".join(f"<li>{esc(r.scenario)} ×{r.demand_scale:g} <b>{esc(r.variant)}</b> seed {r.seed} "
                        f"(<code>{esc(r.run_id)}</code>): {esc(r.reason)}</li>" for r in excl.itertuples())
        parts.append(f'<div class="note warn" id="excluded"><b>{len(excl)} run(s) excluded from every mean and '
                     f"difference</b> (failed, or gridlocked: teleports, or more than {GRIDLOCK_BACKLOG_SHARE:.0%} of "
                     f"the vehicles could not enter). Their seeds are also left out of the paired differences of the "
                     f"other controllers.<ul>{items}</ul></div>")
    if "insertion_backlog_veh" in network.columns:
        back = network[(network["insertion_backlog_veh"] > 0) & ~network["run_id"].isin(set(excl["run_id"]))]
        if not back.empty:
            items = "".join(f"<li>{esc(r.scenario)} ×{r.demand_scale:g} {esc(r.variant)} seed {r.seed}: "
                            f"{r.insertion_backlog_veh:.0f} vehicles waiting to enter at the end</li>"
                            for r in back.itertuples())
            parts.append('<div class="note"><b>Demand not fully served</b> in these runs (kept in the means): '
                         "vehicles that could not enter the network are not in any junction's delay, so "
                         f"those junctions look better than they are.<ul>{items}</ul></div>")
    seeds = runs.groupby(ARM)["seed"].nunique()
    if len(seeds) and seeds.max() < 2:
        parts.append('<div class="note">One seed per controller: no confidence intervals. Use more seeds '
                     "(<code>--seeds 5</code>) before drawing conclusions.</div>")
    return "\n".join(parts)


def _network_table(nd: pd.DataFrame, nf: pd.DataFrame, runs: pd.DataFrame, variants: list[str], base: str) -> str:
    metrics = [("delay_s_per_veh", "delay s/veh"), ("stops_per_veh", "stops/veh"), ("co2_kg", "CO2 kg")]
    if "co2_total_kg" in set(nd["metric"]):
        metrics.append(("co2_total_kg", "CO2 incl. scope 2, kg"))
    head = "<tr><th>controller</th><th>valid runs</th>" + "".join(
        f"<th>{esc(lbl)}</th><th>Δ vs {esc(base)}</th>" for _, lbl in metrics) + "<th>teleports</th><th>not inserted</th></tr>"
    rows = []
    for v in variants:
        d = nd[nd["variant"] == v]
        total = int((runs["variant"] == v).sum())
        valid = int(d["n_seeds"].max()) if not d.empty else 0
        cells = [f"<td>{esc(v)}</td>", f'<td data-v="{valid}">{valid}/{total}</td>']
        for m, _ in metrics:
            r = d[d["metric"] == m]
            cells.append(_ci_cell(*(r.iloc[0][["mean", "ci_low", "ci_high"]] if not r.empty else (np.nan,) * 3),
                                  _digits(m)))
            f = nf[(nf["variant"] == v) & (nf["metric"] == m)] if not nf.empty else nf
            cells.append(_pct_cell(f.iloc[0] if not f.empty else None) if v != base else "<td>baseline</td>")
        for m in ("teleports", "insertion_backlog_veh"):
            r = d[d["metric"] == m]
            cells.append(_ci_cell(r.iloc[0]["mean"], np.nan, np.nan, 0 if m == "teleports" else 1)
                         if not r.empty else "<td>–</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<h3>Network totals</h3><table class="sortable"><thead>' + head + "</thead><tbody>" + "".join(rows) +
            "</tbody></table>")


def _junction_table(jd: pd.DataFrame, jf: pd.DataFrame, variants: list[str], base: str) -> str:
    head = ("<tr><th>junction</th><th>controller</th><th>seeds</th><th>vehicles</th><th>delay s/veh</th>"
            "<th>LOS</th><th>Δ delay</th><th>stops/veh</th><th>Δ stops</th><th>CO2 kg</th><th>Δ CO2</th>"
            "<th>idle CO2 %</th></tr>")
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

            def diff(m: str) -> str:
                if v == base:
                    return '<td data-v="0" class="na">baseline</td>'
                key = (j, v, m)
                return _pct_cell(fidx.loc[key] if fidx is not None and key in fidx.index else None)

            delay = get("mean", "delay_s_per_veh")
            los = level_of_service(delay)
            idle = 100 * get("mean", "co2_idle_kg") / get("mean", "co2_kg") if get("mean", "co2_kg") else math.nan
            rows.append(
                f"<tr><td>{esc(j)}</td><td>{esc(v)}</td><td data-v=\"{get('n_seeds', 'delay_s_per_veh'):.0f}\">"
                f"{get('n_seeds', 'delay_s_per_veh'):.0f}</td>"
                + _ci_cell(get("mean", "vehicles"), get("ci_low", "vehicles"), get("ci_high", "vehicles"), 0)
                + _ci_cell(delay, get("ci_low", "delay_s_per_veh"), get("ci_high", "delay_s_per_veh"), 1)
                + f'<td class="los los{los}">{los}</td>' + diff("delay_s_per_veh")
                + _ci_cell(get("mean", "stops_per_veh"), get("ci_low", "stops_per_veh"), get("ci_high", "stops_per_veh"), 2)
                + diff("stops_per_veh")
                + _ci_cell(get("mean", "co2_kg"), get("ci_low", "co2_kg"), get("ci_high", "co2_kg"), 2)
                + diff("co2_kg") + f'<td data-v="{idle if np.isfinite(idle) else ""}">{fnum(idle, 0)}</td></tr>')
    return (f'<table class="sortable junctions"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            '<p class="hint">Mean over valid seeds ± half-width of the 95 % t interval. Δ: change against the '
            "baseline, paired by seed, with its 95 % CI in brackets; grey with ≈0 where that CI includes 0. "
            "LOS: HCM level of service from the mean delay. Click a column header to sort.</p>")


def _map_section(runs: pd.DataFrame, jorder: list[str], jf: pd.DataFrame, variants: list[str], base: str,
                 key: str) -> str:
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
        return f'<h3>Network map</h3><p class="note">Network file {esc(net_file)} not found here: map not drawn.</p>'
    saved: dict[str, dict[str, tuple[float, bool]]] = {}
    others = [v for v in variants if v != base]
    for v in others:
        d = jf[(jf["variant"] == v) & (jf["metric"] == "co2_kg")] if not jf.empty else jf
        saved[v] = {r.junction_id: (-float(r.pct_change), bool(r.ci_includes_zero)) for r in d.itertuples()}
    select = ""
    if len(others) > 1:
        select = (f'<label>controller: <select class="mapselect" data-map="map-{key}">' +
                  "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in others) + "</select></label>")
    caption = (f"CO2 saved per junction by <b>{esc(others[0])}</b> against <b>{esc(base)}</b> (paired mean over "
               "seeds); a dashed ring: the 95 % CI of the change includes 0." if len(others) == 1 else
               f"CO2 saved per junction against <b>{esc(base)}</b> (paired mean over seeds); choose the controller; "
               "a dashed ring: the 95 % CI of the change includes 0." if others else
               "Only one controller: no savings to colour.")
    return (f"<h3>Network map</h3><p>{caption} {select}</p>" +
            network_map(net_file, jorder, saved, key) + f'<p class="hint">Geometry: {esc(net_file.name)}.</p>')


def _corridor_table(c: pd.DataFrame, excl: pd.DataFrame, variants: list[str]) -> str:
    if c.empty:
        return ""
    from .experiments.stats import t_interval

    c = c[~c["run_id"].isin(set(excl["run_id"]))]
    rows = []
    for (direction, fj, tj), g in c.groupby(["direction", "from_junction", "to_junction"], sort=False):
        for v in variants:
            gv = g[g["variant"] == v]
            if gv.empty:
                continue
            cells = [f"<td>{esc(direction)} {esc(fj)}→{esc(tj)}</td><td>{esc(v)}</td>"]
            for m, dg in (("vehicles", 0), ("travel_time_s_mean", 1), ("delay_s_per_veh", 1), ("stops_per_veh", 2),
                          ("co2_g_per_veh", 0)):
                mean, lo, hi, _ = t_interval(gv[m].to_numpy(float))
                cells.append(_ci_cell(mean, lo, hi, dg))
            rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<h3>Along the corridor</h3><p class="hint">Vehicles that travel the whole arterial, per direction '
            "(mean ± 95 % CI over seeds).</p><table class=\"sortable\"><thead><tr><th>direction</th><th>controller</th>"
            "<th>trips</th><th>travel time s</th><th>delay s/veh</th><th>stops/veh</th><th>CO2 g/veh</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")


def _timespace_section(runs: pd.DataFrame, t: dict[str, Any], variants: list[str], corridor: pd.DataFrame) -> str:
    traj, sig = t["timespace_trajectories"], t["timespace_signals"]
    have = set(traj["run_id"]) & set(sig["run_id"]) & set(runs["run_id"])
    if not have:
        return ""
    out = ["<h3>Time–space diagrams</h3>",
           f'<p class="hint">One run per controller (its first seed): each line is a vehicle travelling the '
           f"corridor (a point every {TIMESPACE_POINT_EVERY_S:g} s; flat parts are stops); the coloured bars are the "
           f"through-movement signal at each stop line (green, yellow, red). First {TIMESPACE_WINDOW_S:g} s of the "
           "measurement window.</p>"]
    for v in variants:
        r = runs[(runs["variant"] == v) & runs["run_id"].isin(have)]
        if r.empty:
            continue
        r = r.sort_values("seed").iloc[0]
        t0 = float(r.get("begin_s", 0.0)) + float(r.get("warmup_s", 0.0))
        t1 = min(float(r.get("end_s", t0 + TIMESPACE_WINDOW_S)), t0 + TIMESPACE_WINDOW_S)
        tr, sg = traj[traj["run_id"] == r["run_id"]], sig[sig["run_id"] == r["run_id"]]
        out.append('<div class="tsrow">')
        for direction in dict.fromkeys(sg["direction"]):
            span = ""
            if not corridor.empty:
                cd = corridor[(corridor["run_id"] == r["run_id"]) & (corridor["direction"] == direction)]
                if not cd.empty:
                    span = f" ({cd.iloc[0]['from_junction']} → {cd.iloc[0]['to_junction']})"
            out.append(timespace_diagram(tr[tr["direction"] == direction], sg[sg["direction"] == direction], t0, t1,
                                         f"{v}, seed {r['seed']}: {direction}{span}"))
        out.append("</div>")
    return "".join(out)


def _methodology(runs: pd.DataFrame, excl: pd.DataFrame) -> str:
    from .scenario import ROOT

    out = ['<section id="methodology"><h2>Methodology</h2>']
    first = runs.drop_duplicates("scenario")
    rows = []
    for r in first.itertuples():
        def g(k: str) -> Any:
            return getattr(r, k, "–")
        rows.append(f"<tr><td>{esc(r.scenario)}</td><td><code>{esc(g('scenario_source'))}</code></td>"
                    f"<td><code>{esc(g('scenario_hash'))}</code></td><td>{g('begin_s')}–{g('end_s')}</td>"
                    f"<td>{g('warmup_s')}</td><td>{g('step_length_s')}</td><td>{g('zone_upstream_m')}</td>"
                    f"<td>{g('zone_downstream_m')}</td></tr>")
    out.append("<h3>Scenarios and zones</h3><table><thead><tr><th>scenario</th><th>source</th><th>content hash</th>"
               "<th>window s</th><th>warm-up s</th><th>step s</th><th>zone upstream m</th><th>zone downstream m</th>"
               "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
               "<p>Metrics count only the steps after the warm-up. A junction's zone reaches <i>upstream</i> metres back "
               "from its stop lines and <i>downstream</i> metres past it (definitions below).</p>")
    # vehicle mix and emission classes
    out.append("<h3>Vehicle mix and emission classes</h3>")
    for r in first.itertuples():
        mix = json.loads(getattr(r, "vehicle_mix", "[]") or "[]") if isinstance(getattr(r, "vehicle_mix", None), str) else []
        fleet = getattr(r, "fleet", "") or ""
        grid = getattr(r, "grid_kg_co2_per_kwh", None)
        if mix:
            out.append(f"<p><b>{esc(r.scenario)}</b>{' (fleet preset ' + esc(fleet) + ')' if fleet else ''}:</p>"
                       "<table><thead><tr><th>type</th><th>share</th><th>vClass</th><th>emission class (SUMO)</th></tr>"
                       "</thead><tbody>" + "".join(
                           f"<tr><td>{esc(m['id'])}</td><td>{100 * float(m['share']):.1f} %</td><td>{esc(m['vclass'])}"
                           f"</td><td><code>{esc(m['emission_class'])}</code></td></tr>" for m in mix) + "</tbody></table>")
        else:
            out.append(f"<p><b>{esc(r.scenario)}</b>: vehicle types and emission classes as given in the SUMO route "
                       "files of the scenario.</p>")
        if grid is not None and np.isfinite(grid):
            out.append(f"<p>Scope-2 grid factor: {grid:g} kg CO2/kWh ({esc(getattr(r, 'grid_factor_source', ''))}, "
                       f"{esc(getattr(r, 'grid_factor_year', ''))}).</p>")
    # seeds and statistics
    seeds = runs.groupby(ARM, sort=False)["seed"].apply(lambda s: ", ".join(str(x) for x in sorted(s.unique())))
    out.append("<h3>Seeds and statistics</h3><table><thead><tr><th>scenario</th><th>demand ×</th><th>controller</th>"
               "<th>seeds</th></tr></thead><tbody>" + "".join(
                   f"<tr><td>{esc(k[0])}</td><td>{k[1]:g}</td><td>{esc(k[2])}</td><td>{esc(v)}</td></tr>"
                   for k, v in seeds.items()) + "</tbody></table>")
    out.append(
        "<p>The same seed gives every controller the same demand (the same Poisson arrivals and vehicle types). "
        "Means are over the valid runs of a controller; the 95 % confidence interval is Student's t over seeds "
        "(mean ± t<sub>0.975, n−1</sub>·s/√n), undefined with one seed. Changes against the baseline are "
        "<b>paired by seed</b>: the mean of the per-seed differences with its 95 % t interval (a paired t-test); "
        "% change = mean difference / baseline mean over the same seeds. A change whose interval includes 0 is "
        "marked ≈0 and shown grey: the runs do not show a difference. "
        f"A run is excluded from all of this when it failed or gridlocked: any teleport (SUMO removed a vehicle "
        f"stuck longer than its time-to-teleport), or more than {GRIDLOCK_BACKLOG_SHARE:.0%} of the vehicles "
        f"unable to enter the network by the end. {len(excl)} run(s) excluded here.</p>")
    bands = ", ".join(f"{g} ≤ {lim:g}" for lim, g in LOS_BANDS)
    out.append(f"<p>Level of service (HCM, signalised intersections) from the mean delay per vehicle: {bands} s/veh, "
               "F above.</p>")
    # versions
    cols = [c for c in ("sumo_version", "mobility_version", "python_version", "backend", "sumo_args") if c in runs.columns]
    vers = runs[cols].drop_duplicates()
    out.append("<h3>Versions</h3><table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) +
               "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>"
                                                for r in vers.itertuples(index=False)) + "</tbody></table>")
    doc = ROOT / "docs" / "metrics.md"
    out.append('<h3>Metric definitions</h3><div class="doc">')
    if doc.exists():
        out.append(markdown(doc.read_text(encoding="utf-8"), shift=3))
    else:
        out.append(f"<p>See docs/metrics.md of mobility {esc(__version__)} (not installed next to this copy).</p>")
    out.append("</div></section>")
    return "\n".join(out)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0 auto;max-width:1180px;
padding:12px 24px 48px}
h1{font-size:24px;margin:12px 0 4px}h2{border-bottom:2px solid #4e79a7;padding-bottom:3px;margin-top:36px}
h3{margin:22px 0 6px}.sub{color:#555;margin-top:0}nav{margin:8px 0 16px;font-size:13px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:right;vertical-align:top}th{background:#f3f5f8;text-align:center}td:first-child,td:nth-child(2){text-align:left}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[data-dir=asc]:after{content:" ▲"}
table.sortable th[data-dir=desc]:after{content:" ▼"}.ci{color:#777;font-size:11px}
td.better{color:#1a7a3a}td.worse{color:#b2182b}td.ns{color:#888}td.na{color:#999;text-align:center}
td.los{text-align:center;font-weight:600}.losA,.losB{background:#e6f4ea}.losC,.losD{background:#fff6db}
.losE,.losF{background:#fde2e0}.note{background:#f3f5f8;border-left:4px solid #4e79a7;padding:6px 12px;margin:10px 0}
.note.warn{background:#fff4e5;border-color:#e8590c}.hint{color:#666;font-size:12px;margin-top:0}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;
margin-right:5px;vertical-align:-1px}svg{display:block;margin:4px 0 12px;max-width:100%;height:auto}
svg .ttl{font-size:13px;font-weight:600}svg .tick,svg .lbl{font-size:11px;fill:#444}svg .grid{stroke:#eee}
svg .axis{stroke:#888}svg .ci{stroke:#222;stroke-width:1;fill:none}svg .edge{fill:none;stroke:#9aa3ad;stroke-width:2;
stroke-linecap:round}svg .junction{stroke:#222;stroke-width:1.5}svg .junction.ns{stroke-dasharray:3 2}
svg .jl{font-size:11px;fill:#222}svg .traj polyline{fill:none;stroke:#2c3e75;stroke-width:.7;stroke-opacity:.65}
svg .sig{stroke-width:4;fill:none}.tsrow{display:flex;flex-wrap:wrap;gap:8px}
table.doc td,section#methodology td{text-align:left}code{font-size:12px;background:#f3f3f3;padding:0 3px}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function val(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) return {num: false, v: cell.textContent.trim()};
    var x = parseFloat(v);
    return {num: true, v: isNaN(x) ? -Infinity : x};
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
    th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
    rows.sort(function (a, b) {
      var x = val(a.cells[col]), y = val(b.cells[col]);
      if (x.num && y.num) return dir * (x.v - y.v);
      return dir * String(x.v).localeCompare(String(y.v), undefined, {numeric: true});
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.addEventListener("click", function () { sortBy(table, i, th); });
    });
  });
  document.querySelectorAll("select.mapselect").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var map = document.getElementById(sel.getAttribute("data-map"));
      map.querySelectorAll("g.mapvariant").forEach(function (g) {
        g.style.display = g.getAttribute("data-variant") === sel.value ? "" : "none";
      });
    });
  });
  // self-check: what was drawn (read by the browser test; harmless for readers)
  function drawn(selector, part) {
    var n = 0;
    document.querySelectorAll(selector).forEach(function (svg) {
      var box = svg.getBBox();
      if (box.width > 0 && box.height > 0 && svg.querySelectorAll(part).length > 0) n += 1;
    });
    return n;
  }
  var b = document.body;
  b.setAttribute("data-charts", drawn("svg.chart", "rect.bar"));
  b.setAttribute("data-maps", drawn("svg.map", "circle.junction"));
  b.setAttribute("data-timespace", drawn("svg.timespace", "polyline"));
  if (location.hash === "#selftest") {
    var t = document.querySelector("table.junctions"), ok = "no-table";
    if (t) {
      var th = t.querySelectorAll("thead th")[4];
      sortBy(t, 4, th);
      var prev = -Infinity; ok = "1";
      Array.prototype.forEach.call(t.tBodies[0].rows, function (r) {
        var x = val(r.cells[4]).v; if (x < prev) ok = "0"; prev = x;
      });
      var sel = document.querySelector("select.mapselect");
      if (sel && sel.options.length > 1) {
        sel.value = sel.options[1].value; sel.dispatchEvent(new Event("change"));
        var shown = sel.ownerDocument.getElementById(sel.getAttribute("data-map"))
          .querySelectorAll("g.mapvariant:not([style*='none'])");
        b.setAttribute("data-map-switch", shown.length === 1 && shown[0].getAttribute("data-variant") === sel.value ? "1" : "0");
      }
    }
    b.setAttribute("data-sort-ok", ok);
  }
  b.setAttribute("data-ok", "1");
})();
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            "<script>window.onerror=function(m,s,l){var b=document.body||document.documentElement;"
            "b.setAttribute('data-errors',(b.getAttribute('data-errors')||'')+m+' (line '+l+'); ');};</script>"
            f"<style>{CSS}</style></head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n")


def write_report(results: str | Path, out: str | Path | None = None, *, baseline: str | None = None) -> Path:
    """Write the report of ``results`` to ``out`` (default ``results/report.html``) atomically."""
    text = build_report(results, baseline)
    path = Path(out) if out is not None else Path(results) / "report.html"
    if path.is_dir():
        raise ReportError(f"--out {path}: is a directory; expected an .html file name")
    if not path.parent.exists():
        raise ReportError(f"--out {path}: directory {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    import os

    os.replace(tmp, path)
    return path
