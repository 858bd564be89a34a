"""GLOSA penetration figures for docs/claims.md from a `mobility compare corridor --controllers
"P+glosa(share=0),P+glosa(share=0.25),..." --out DIR` folder.

    python benchmarks/glosa_claims.py DIR

For each plan P (the controller before ``+glosa``) and each share against ``share=0`` of the same
plan: main-line (corridor.parquet, per direction) stops, CO2 and delay per vehicle, and network
totals, paired by seed with 95 % t-intervals (``mobility.experiments.stats.paired``; gridlock-flagged runs left
out as everywhere).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from mobility.experiments.stats import excluded_runs, paired


def main(d: str) -> None:
    p = Path(d)
    runs, net = pd.read_parquet(p / "runs.parquet"), pd.read_parquet(p / "network.parquet")
    cor = pd.read_parquet(p / "corridor.parquet")
    excl = excluded_runs(runs, net)
    print(f"{d}: {runs['seed'].nunique()} seeds; excluded runs: {len(excl)}")
    plans = sorted({c.split("+glosa")[0] for c in runs["controller"]})
    for plan in plans:
        base = f"{plan}+glosa(share=0)"
        arms = [c for c in dict.fromkeys(runs["controller"]) if c.startswith(plan + "+glosa")]
        c = cor[cor["controller"].isin(arms)]
        n = net[net["controller"].isin(arms)]
        m0 = c[c["controller"] == base].groupby("direction")[["stops_per_veh", "co2_g_per_veh", "delay_s_per_veh"]].mean()
        print(f"\n{plan}: main line at 0 % (mean over seeds):\n{m0.round(3).to_string()}")
        pc = paired(c, excl, ["stops_per_veh", "co2_g_per_veh", "delay_s_per_veh"], base, by=["direction"])
        pn = paired(n, excl, ["stops_per_veh", "co2_kg", "delay_s_per_veh"], base)
        for name, t in (("main line", pc), ("network", pn)):
            for _, r in t.iterrows():
                where = f" {r['direction']:<9}" if "direction" in t.columns else " network  "
                print(f"  {r['variant']:<32}{where} {r['metric']:<16} {r['pct_change']:+6.1f} % "
                      f"({r['pct_ci_low']:+.1f} … {r['pct_ci_high']:+.1f}) n={r['n_pairs']}")
    # without GLOSA (share=0 gives the plain plan's numbers exactly): the plans against each other
    base0 = f"{plans[0]}+glosa(share=0)"
    zero = cor[cor["controller"].str.endswith("+glosa(share=0)")]
    if zero["controller"].nunique() > 1:
        print(f"\nplans without GLOSA, against {base0} (main line):")
        pz = paired(zero, excl, ["travel_time_s_mean", "stops_per_veh", "co2_g_per_veh"], base0, by=["direction"])
        m = zero.groupby(["controller", "direction"])["travel_time_s_mean"].mean()
        print(m.round(1).to_string())
        for _, r in pz.iterrows():
            print(f"  {r['variant']:<32} {r['direction']:<9} {r['metric']:<20} {r['pct_change']:+6.1f} % "
                  f"({r['pct_ci_low']:+.1f} … {r['pct_ci_high']:+.1f}) n={r['n_pairs']}")


if __name__ == "__main__":
    main(sys.argv[1])
