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
            "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", default=",".join(MAPS))
    ap.add_argument("--controllers", default="static,sumo-actuated,max-pressure")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "resco")
    args = ap.parse_args()
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    tasks = [(RESCO / m / f"{m}.sumocfg", c, s) for m in args.maps.split(",") for c in args.controllers.split(",")
             for s in range(1, args.seeds + 1)]
    missing = [t[0] for t in tasks if not t[0].exists()]
    if missing:
        sys.exit(f"resco.py: {missing[0]} not found (needs ../shared/scenarios/resco)")
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        rows = list(pool.map(one, *zip(*tasks)))
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "resco.csv", index=False)

    from scipy import stats

    def ci(x: pd.Series) -> str:
        x = x.to_numpy()
        if len(x) < 2:
            return f"{x.mean():.1f}"
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return f"{x.mean():.1f} ± {h:.1f}"

    print(f"{'map':<14}{'controller':<16}{'delay s/veh (95% CI)':>22}{'RESCO published':>17}{'CO2 kg/junction':>17}{'wall s/run':>12}")
    for (m, c), g in df.groupby(["map", "controller"], sort=False):
        pub = PUBLISHED.get(m, {}).get({"static": "fixed time", "max-pressure": "max pressure"}.get(c, ""), "")
        print(f"{m:<14}{c:<16}{ci(g.resco_delay_s_per_veh):>22}{pub!s:>17}{g.co2_kg_per_junction.mean():>17.1f}"
              f"{g.wall_s.mean():>12.1f}")


if __name__ == "__main__":
    main()
