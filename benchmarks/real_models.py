"""Demand-responsive controllers against each real model's own signal timing, on real city models.

Models: ``berlin-doerpfeldstr`` and ``hamburg-tavf`` (``../shared/scenarios/real/``, each with its own
``.sumocfg`` settings) and the six real-city RESCO maps (``../shared/scenarios/resco/``, with RESCO's
settings: the map's window and ``--time-to-teleport -1``; RESCO's delay definition is reported too,
see benchmarks/resco.py). ``static`` is each model's own program (which SUMO may run as its own
vehicle-actuated logic: 40 of hamburg-tavf's 43 programs are ``type="actuated"``). By default
``max-pressure``, ``actuated``, ``cycle-adaptive`` (and ``green-wave`` / ``coordinated-actuated`` off
their corridor) leave such junctions to their own program (``keep_actuated=True``); give
``"max-pressure(keep_actuated=False)"`` to replace every program.

    python benchmarks/real_models.py [--models hamburg-tavf,cologne8] [--controllers static,max-pressure]
                                     [--seeds 5] [--first-seed 1] [--jobs 1]

For every model, controller and seed: network delay (s/veh), stops per vehicle, CO2 (kg), teleports,
vehicles not inserted by the end, and the gridlock flag of :func:`mobility.experiments.stats.gridlock_reason`.
Prints a Markdown table (mean ± 95 % CI over seeds, and the paired difference to ``static`` over the
same seeds with its 95 % CI) over seeds ``first-seed`` … ``first-seed + seeds - 1`` (a later range gives
held-out seeds to check a finding made on the first ones) and writes results/real_models/real_models.csv. A killed benchmark
resumes from results/real_models/real_models.partial.csv. Flagged (gridlocked) runs are shown in the
table and never averaged silently: the row says how many were flagged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
REAL = ["berlin-doerpfeldstr", "hamburg-tavf"]
RESCO_MAPS = ["cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21"]
CONTROLLERS = "static,sumo-actuated,actuated,max-pressure,cycle-adaptive"


def config(shared: Path, model: str) -> Path:
    if model in REAL:
        return shared / "scenarios" / "real" / model / "scenario.sumocfg"
    return shared / "scenarios" / "resco" / model / f"{model}.sumocfg"


def one(cfg: Path, model: str, controller: str, seed: int) -> dict:
    """One run; a failure becomes a row with its error (never stops the benchmark)."""
    try:
        return _one(cfg, model, controller, seed)
    except Exception as e:
        return {"model": model, "controller": controller, "seed": seed,
                "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _one(cfg: Path, model: str, controller: str, seed: int) -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from resco import resco_delay

    from mobility import run
    from mobility.experiments.stats import gridlock_reason

    resco = model in RESCO_MAPS
    with tempfile.TemporaryDirectory() as d:
        trips = Path(d) / "trips.xml"
        args = ["--tripinfo-output", str(trips), "--tripinfo-output.write-unfinished", "true"] if resco else []
        if resco:
            args = ["--time-to-teleport", "-1", *args]
        t0, c0 = time.perf_counter(), time.process_time()
        res = run(cfg, controller, seed, sumo_args=args)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rd = resco_delay(trips)[0] if resco else float("nan")
    n = res.network.iloc[0]
    why = gridlock_reason(n["teleports"], n["insertion_backlog_veh"], n["vehicles_seen"], n.get("collision_teleports", 0))
    if n["vehicles_running_at_end"] > 0.25 * max(n["vehicles_seen"], 1):
        why = "; ".join(filter(None, [why, f"{n['vehicles_running_at_end']:.0f} vehicles still running at the end"]))
    return {"model": model, "controller": controller, "seed": seed, "delay_s_per_veh": n["delay_s_per_veh"],
            "stops_per_veh": n["stops_per_veh"], "co2_kg": n["co2_kg"], "teleports": int(n["teleports"]),
            "not_inserted_veh": int(n["insertion_backlog_veh"]), "vehicles_seen": int(n["vehicles_seen"]),
            "resco_delay_s_per_veh": rd, "gridlock": why, "wall_s": wall, "cpu_s": cpu, "error": ""}


def ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval (NaN half-width for one value)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def fmt(m: float, h: float, d: int = 1) -> str:
    return f"{m:.{d}f}" if np.isnan(h) else f"{m:.{d}f} ± {h:.{d}f}"


def table(df: pd.DataFrame) -> str:
    """Markdown table: per model and controller, means ± 95 % CI and paired differences to static."""
    lines = ["| model | controller | seeds | delay s/veh | Δ delay vs static (paired) | stops/veh | CO2 kg | "
             "Δ CO2 vs static (paired) | teleports | not inserted | RESCO delay s/veh | flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, g in df.groupby("model", sort=False):
        base = g[g.controller == "static"].set_index("seed")
        for c, r in g.groupby("controller", sort=False):
            r = r.set_index("seed")
            flagged = int((r["gridlock"].astype(str) != "").sum())
            cells = []
            for col in ("delay_s_per_veh", "co2_kg"):
                m, h = ci(r[col].to_numpy())
                if c == "static" or base.empty:
                    diff = "–"
                else:
                    common = r.index.intersection(base.index)
                    d = (r.loc[common, col] - base.loc[common, col]).to_numpy()
                    dm, dh = ci(d) if len(d) else (float("nan"), float("nan"))
                    pct = 100 * dm / base.loc[common, col].mean() if len(d) else float("nan")
                    sig = "" if np.isnan(dh) or (dm - dh) * (dm + dh) <= 0 else " *"
                    diff = f"{fmt(dm, dh)} ({pct:+.0f} %){sig}"
                cells.append((fmt(m, h), diff))
            rd = r["resco_delay_s_per_veh"].astype(float)
            rcell = fmt(*ci(rd.to_numpy())) if rd.notna().any() else "–"
            lines.append(f"| {model} | {c} | {len(r)} | {cells[0][0]} | {cells[0][1]} | {r['stops_per_veh'].mean():.2f} | "
                         f"{cells[1][0]} | {cells[1][1]} | {r['teleports'].mean():.1f} | {r['not_inserted_veh'].mean():.0f} | "
                         f"{rcell} | {flagged}/{len(r)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(REAL + RESCO_MAPS))
    ap.add_argument("--controllers", default=CONTROLLERS)
    ap.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    ap.add_argument("--first-seed", type=int, default=1, help="the first seed (default 1)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder (default ../shared)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "real_models")
    ap.add_argument("--table-only", action="store_true", help="print the table of the finished runs; run nothing")
    args = ap.parse_args()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    sys.path.insert(0, str(ROOT))
    from mobility.experiments.run import split_specs

    models = args.models.split(",")
    unknown = [m for m in models if m not in REAL + RESCO_MAPS]
    if unknown:
        sys.exit(f"real_models.py: --models: unknown model '{unknown[0]}'; known: {', '.join(REAL + RESCO_MAPS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(config(args.shared, m), m, c, s) for s in seeds for m in models for c in split_specs(args.controllers)]
    missing = [t[0] for t in tasks if not t[0].exists()]
    if missing and not args.table_only:
        sys.exit(f"real_models.py: {missing[0]} not found (give --shared, the folder holding scenarios/)")
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "real_models.partial.csv"
    done = pd.read_csv(partial, keep_default_na=False) if partial.exists() else pd.DataFrame()
    have = set(zip(done.get("model", []), done.get("controller", []), done.get("seed", [])))
    todo = [] if args.table_only else [t for t in tasks if (t[1], t[2], t[3]) not in have]
    rows = done.to_dict("records") if len(done) else []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        for row in pool.map(one, *zip(*todo)) if todo else []:
            rows.append(row)
            pd.DataFrame([row]).to_csv(partial, mode="a", header=not partial.exists(), index=False)
            print(f"{row['model']:<20}{row['controller']:<18}seed {row['seed']}: {row.get('delay_s_per_veh', float('nan')):.1f} s/veh "
                  f"{row.get('gridlock') or ''} {row.get('error') or ''}", file=sys.stderr, flush=True)
    wanted = {(t[1], t[2], t[3]) for t in tasks}
    df = pd.DataFrame(rows)
    df = df[[k in wanted for k in zip(df["model"], df["controller"], df["seed"])]]
    tmp = args.out / "real_models.csv.tmp"
    df.to_csv(tmp, index=False)
    tmp.replace(args.out / "real_models.csv")
    failed = df[df["error"].astype(str) != ""]
    for _, r in failed.iterrows():
        print(f"FAILED {r['model']} {r['controller']} seed {r['seed']}: {r['error']}")
    ok = df[df["error"].astype(str) == ""].copy()
    for col in ("delay_s_per_veh", "stops_per_veh", "co2_kg", "teleports", "not_inserted_veh", "resco_delay_s_per_veh"):
        ok[col] = pd.to_numeric(ok[col], errors="coerce")
    ok["gridlock"] = ok["gridlock"].fillna("").astype(str)
    ok["model"] = pd.Categorical(ok["model"], [m for m in models if m in set(ok["model"])])
    print(table(ok.sort_values(["model", "seed"])))
    print("\n* paired 95 % CI excludes zero. Δ: controller minus static over the same seeds.")


if __name__ == "__main__":
    main()
