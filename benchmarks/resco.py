"""Controllers on the RESCO benchmark maps, with RESCO's delay definition, next to RESCO's figures.

RESCO (Ault & Sharon, NeurIPS 2021 Datasets and Benchmarks) runs SUMO with
``--time-to-teleport -1`` and reports the average delay per vehicle: the sum of SUMO ``timeLoss``
over all vehicles, including the departure delay of vehicles that waited to enter, divided by the
number of vehicles. We compute exactly that from SUMO's own tripinfo output (with unfinished
vehicles) for every run, beside our per-junction CO2 (which RESCO does not report).

    python benchmarks/resco.py [--maps cologne1,cologne8] [--controllers static,max-pressure] [--seeds 5]

Prints a table (mean ± 95 % CI over seeds) and writes results/resco/resco.csv. The maps are read from
../shared/scenarios/resco/ and never copied.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESCO = ROOT.parent / "shared" / "scenarios" / "resco"
MAPS = ["cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21", "grid4x4", "arterial4x4"]
# RESCO's published average delay (s/veh), read off its results figure (±2–5 s); ../shared/scenarios/resco/README.md
PUBLISHED = {
    "cologne1": {"fixed time": 57, "max pressure": 28},
    "cologne3": {"fixed time": 46, "max pressure": 91},
    "cologne8": {"fixed time": 63, "max pressure": 22},
    "ingolstadt1": {"fixed time": 39.5, "max pressure": 28.3},
    "ingolstadt7": {"fixed time": 91, "max pressure": 80.5},
    "ingolstadt21": {"fixed time": 133, "max pressure": 76},
}


def resco_delay(tripinfo: Path) -> tuple[float, int]:
    """RESCO's average delay: Σ (timeLoss + departDelay) / vehicles, unfinished vehicles included."""
    loss, n = 0.0, 0
    for t in ET.parse(tripinfo).getroot().iter("tripinfo"):
        loss += float(t.get("timeLoss")) + max(0.0, float(t.get("departDelay", 0.0)))
        n += 1
    return (loss / n if n else float("nan")), n


def one(cfg: Path, controller: str, seed: int) -> dict:
    """One run; a failure (SUMO error, controller exception) becomes a row with its error."""
    try:
        return _one(cfg, controller, seed)
    except Exception as e:  # recorded, never stops the benchmark
        return {"map": cfg.parent.name, "controller": controller, "seed": seed, "resco_delay_s_per_veh": float("nan"),
                "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _one(cfg: Path, controller: str, seed: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from mobility import run
    from mobility.metrics import UNATTRIBUTED

    with tempfile.TemporaryDirectory() as d:
        trips = Path(d) / "trips.xml"
        t0 = time.perf_counter()
        res = run(cfg, controller, seed, sumo_args=["--time-to-teleport", "-1", "--tripinfo-output", str(trips),
                                                    "--tripinfo-output.write-unfinished", "true"])
        wall = time.perf_counter() - t0
        delay, n = resco_delay(trips)
    j = res.junctions[res.junctions.junction_id != UNATTRIBUTED]
    return {"map": cfg.parent.name, "controller": controller, "seed": seed, "resco_delay_s_per_veh": delay,
            "vehicles": n, "co2_kg_per_junction": j["co2_kg"].mean(), "co2_kg_network": res.network.iloc[0]["co2_kg"],
            "stops_per_veh_network": res.network.iloc[0]["stops_per_veh"], "junctions": len(j), "wall_s": wall,
            "error": ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default=",".join(MAPS))
    ap.add_argument("--controllers", default="static,sumo-actuated,max-pressure")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "resco")
    ap.add_argument("--resco", type=Path, default=RESCO, help="folder of the RESCO maps (default ../shared/scenarios/resco)")
    args = ap.parse_args()
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    sys.path.insert(0, str(ROOT))
    from mobility.experiments.run import split_specs

    tasks = [(args.resco / m / f"{m}.sumocfg", c, s) for m in args.maps.split(",") for c in split_specs(args.controllers)
             for s in range(1, args.seeds + 1)]
    missing = [t[0] for t in tasks if not t[0].exists()]
    if missing:
        sys.exit(f"resco.py: {missing[0]} not found (needs ../shared/scenarios/resco)")
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "resco.partial.csv"  # one row per finished run: a killed benchmark resumes
    done = pd.read_csv(partial, keep_default_na=False) if partial.exists() else pd.DataFrame()
    have = set(zip(done.get("map", []), done.get("controller", []), done.get("seed", [])))
    todo = [t for t in tasks if (t[0].parent.name, t[1], t[2]) not in have]
    rows = done.to_dict("records") if len(done) else []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        for row in pool.map(one, *zip(*todo)) if todo else []:
            rows.append(row)
            pd.DataFrame([row]).to_csv(partial, mode="a", header=not partial.exists(), index=False)
            print(f"{row['map']:<14}{row['controller']:<16}seed {row['seed']}: "
                  f"{row['resco_delay_s_per_veh']:.1f} s/veh {row.get('error') or ''}", file=sys.stderr, flush=True)
    wanted = {(t[0].parent.name, t[1], t[2]) for t in tasks}
    df = pd.DataFrame(rows)
    df = df[[k in wanted for k in zip(df["map"], df["controller"], df["seed"])]]
    df.to_csv(args.out / "resco.csv", index=False)
    failed = df[df["error"].astype(str) != ""]
    for _, r in failed.iterrows():
        print(f"FAILED {r['map']} {r['controller']} seed {r['seed']}: {r['error']}")
    df = df[df["error"].astype(str) == ""].copy()
    for col in ("resco_delay_s_per_veh", "co2_kg_per_junction", "wall_s", "stops_per_veh_network"):
        df[col] = pd.to_numeric(df[col])

    from scipy import stats

    def ci(x: pd.Series) -> str:
        x = x.to_numpy()
        if len(x) < 2:
            return f"{x.mean():.1f}"
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():.1f} ± {h:.1f}"

    print("| map | controller | seeds | delay s/veh (RESCO def.) | RESCO published | stops/veh | CO2 kg per junction | wall s/run |")
    print("|---|---|---|---|---|---|---|---|")
    for (m, c), g in df.groupby(["map", "controller"], sort=False):
        pub = PUBLISHED.get(m, {}).get({"static": "fixed time", "max-pressure": "max pressure"}.get(c, ""), "")
        print(f"| {m} | {c} | {len(g)} | {ci(g.resco_delay_s_per_veh)} | {'≈' + str(pub) if pub != '' else '–'} | "
              f"{g.stops_per_veh_network.mean():.2f} | {ci(g.co2_kg_per_junction)} | {g.wall_s.mean():.1f} |")


if __name__ == "__main__":
    main()
