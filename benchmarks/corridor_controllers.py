"""All built-in controllers on the bundled corridor over N seeds: the table in docs/controllers.md.

    python benchmarks/corridor_controllers.py [--seeds 5] [--controllers static,webster,...] [--jobs 2]

Prints markdown: per junction (delay s/veh, stops/veh, CO2 kg; mean ± 95 % CI over seeds,
t-distribution) and along the corridor per direction (main-line trips: travel time, stops/veh,
CO2 g/veh), and writes the raw tables to results/corridor-controllers/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = "static,webster,tls-coordinator,green-wave,sumo-actuated,actuated,max-pressure,coordinated-actuated"


def ci(x: pd.Series) -> str:
    v = x.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    h = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.2f} ± {h:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--controllers", default=DEFAULT)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "corridor-controllers")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from mobility import compare
    from mobility.controllers import targets
    from mobility.experiments.run import split_specs
    from mobility.metrics import UNATTRIBUTED

    specs = [c for c in split_specs(args.controllers) if c.split("(")[0] in targets()]
    res = compare("corridor", specs, seeds=args.seeds, jobs=args.jobs, out=args.out)
    if not res.failed.empty:
        print(res.failed[["controller", "seed", "error"]].to_string(), file=sys.stderr)
    j = res.junctions[res.junctions.junction_id != UNATTRIBUTED]
    print(f"Corridor AM peak, {args.seeds} seeds; mean ± 95 % CI (t-distribution over seeds).\n")
    print("| junction | controller | delay s/veh | stops/veh | CO2 kg |")
    print("|---|---|---|---|---|")
    for (jid, c), g in j.groupby(["junction_id", "controller"], sort=False):
        print(f"| {jid} | {c} | {ci(g.delay_s_per_veh)} | {ci(g.stops_per_veh)} | {ci(g.co2_kg)} |")
    n = res.network
    print("\n| network | controller | delay s/veh | stops/veh | CO2 kg | teleports |")
    print("|---|---|---|---|---|---|")
    for c, g in n.groupby("controller", sort=False):
        print(f"| all | {c} | {ci(g.delay_s_per_veh)} | {ci(g.stops_per_veh)} | {ci(g.co2_kg)} | {g.teleports.sum():.0f} |")
    if not res.corridor.empty:
        print("\n| direction | controller | main-line trips | travel time s | stops/veh | CO2 g/veh |")
        print("|---|---|---|---|---|---|")
        for (d, c), g in res.corridor.groupby(["direction", "controller"], sort=False):
            print(f"| {d} | {c} | {g.vehicles.mean():.0f} | {ci(g.travel_time_s_mean)} | {ci(g.stops_per_veh)} | "
                  f"{ci(g.co2_g_per_veh)} |")


if __name__ == "__main__":
    main()
