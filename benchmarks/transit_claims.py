"""Transit priority figures for docs/claims.md from a `mobility compare X,X+tsp --out DIR` folder.

    python benchmarks/transit_claims.py DIR [BASELINE] [VARIANT]

Per vehicle class (tram, bus), paired by seed, 95 % t-intervals over the seeds:

* trip time and SUMO time loss per trip over the trips that finished in **both** runs of a seed
  (same vehicle ids: public-transport flows depart on schedule), change and % change;
* priority events per trip and the counterfactual seconds saved per event (mean over the seed's
  events; see mobility/controllers/tsp.py), by the program that ran the junction;
* the realised saving per event: the trip-time gain divided by the events per trip;
* cost to other traffic: network delay per vehicle, and delay of all vehicles at the junctions
  where priority events happened (zone totals), paired by seed.

Gridlock-flagged runs are *included* (say so where the baseline itself is flagged).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mobility.experiments.stats import t_interval


def ci(values: list[float]) -> str:
    mean, lo, hi, n = t_interval([v for v in values if np.isfinite(v)])
    return f"{mean:.1f} ({lo:.1f} … {hi:.1f}, n={n})"


def main(d: str, base: str = "static", var: str = "static+tsp") -> None:
    p = Path(d)
    tr = pd.read_parquet(p / "transit.parquet")
    ev = pd.read_parquet(p / "transit_events.parquet") if (p / "transit_events.parquet").exists() else pd.DataFrame()
    runs = pd.read_parquet(p / "runs.parquet")
    net = pd.read_parquet(p / "network.parquet")
    jun = pd.read_parquet(p / "junctions.parquet")
    seeds = sorted(set(runs["seed"]))
    print(f"{d}: {base} vs {var}, seeds {seeds}; gridlock-flagged runs:",
          runs.loc[runs["gridlock"].astype(bool), ["controller", "seed", "gridlock_reason"]].values.tolist())
    for vclass, t in tr.groupby("vclass"):
        rows = {k: [] for k in ("tt_b", "tt_v", "dtt", "pct", "tl_b", "tl_v", "epr", "saved", "real", "n")}
        for s in seeds:
            a = t[(t["controller"] == base) & (t["seed"] == s) & t["finished"]].set_index("vehicle_id")
            b = t[(t["controller"] == var) & (t["seed"] == s) & t["finished"]].set_index("vehicle_id")
            both = a.index.intersection(b.index)
            if not len(both):
                continue
            a, b = a.loc[both], b.loc[both]
            rows["n"].append(len(both))
            rows["tt_b"].append(a["trip_time_s"].mean())
            rows["tt_v"].append(b["trip_time_s"].mean())
            rows["dtt"].append((b["trip_time_s"] - a["trip_time_s"]).mean())
            rows["pct"].append(100 * (b["trip_time_s"].mean() - a["trip_time_s"].mean()) / a["trip_time_s"].mean())
            rows["tl_b"].append(a["time_loss_s"].mean())
            rows["tl_v"].append(b["time_loss_s"].mean())
            rows["epr"].append(b["priority_events"].mean())
            e = ev[(ev["controller"] == var) & (ev["seed"] == s) & (ev["vclass"] == vclass)] if not ev.empty else ev
            rows["saved"].append(e["saved_s"].mean() if len(e) else np.nan)
            epr = b["priority_events"].mean()
            rows["real"].append(-rows["dtt"][-1] / epr if epr else np.nan)
        print(f"\n{vclass}: trips finished in both runs per seed {rows['n']}")
        print(f"  trip time s        {base}: {ci(rows['tt_b'])}   {var}: {ci(rows['tt_v'])}")
        print(f"  change s/trip      {ci(rows['dtt'])}   % {ci(rows['pct'])}")
        print(f"  time loss s        {base}: {ci(rows['tl_b'])}   {var}: {ci(rows['tl_v'])}")
        print(f"  events/trip        {ci(rows['epr'])}")
        print(f"  saved s/event (counterfactual) {ci(rows['saved'])}")
        print(f"  realised trip-time gain per event s {ci(rows['real'])}")
        if not ev.empty:
            e = ev[(ev["controller"] == var) & (ev["vclass"] == vclass)]
            for (prog, kind), g in e.groupby(["program", "kind"]):
                print(f"    {prog:<9}{kind:<12} events {len(g) / len(seeds):6.1f}/run  saved {g['saved_s'].mean():5.1f} s/event "
                      f"(0 in {100 * (g['saved_s'] == 0).mean():.0f} %)  changed {g['changed_s'].mean():5.1f} s")
    # cost to other traffic
    def paired_net(col: str) -> list[float]:
        n = net.set_index(["controller", "seed"])[col]
        return [n.loc[(var, s)] - n.loc[(base, s)] for s in seeds]
    nb = net[net["controller"] == base]["delay_s_per_veh"].tolist()
    print(f"\nnetwork delay s/veh {base}: {ci(nb)}; change {ci(paired_net('delay_s_per_veh'))}"
          f"; CO2 kg change {ci(paired_net('co2_kg'))}; teleports {base} {net[net.controller == base].teleports.tolist()} "
          f"{var} {net[net.controller == var].teleports.tolist()}")
    if not ev.empty:
        js = sorted(set(ev["junction_id"]))
        j = jun[jun["junction_id"].isin(js)].groupby(["controller", "seed"])[["delay_s", "vehicles"]].sum()
        d = j["delay_s"] / j["vehicles"]
        print(f"delay of all vehicles at the {len(js)} junctions with events, s/veh: {base} {ci([d.loc[(base, s)] for s in seeds])}; "
              f"change {ci([d.loc[(var, s)] - d.loc[(base, s)] for s in seeds])}")
        for jid in js:
            jj = jun[jun["junction_id"] == jid].set_index(["controller", "seed"])["delay_s_per_veh"]
            nev = len(ev[(ev["junction_id"] == jid) & (ev["controller"] == var)]) / len(seeds)
            prog = ",".join(sorted(set(ev.loc[ev["junction_id"] == jid, "program"])))
            print(f"  {jid[:40]:<40} {prog:<9} events/run {nev:5.1f}  delay {base} {ci([jj.loc[(base, s)] for s in seeds])}"
                  f"  change {ci([jj.loc[(var, s)] - jj.loc[(base, s)] for s in seeds])}")


if __name__ == "__main__":
    main(*sys.argv[1:])
