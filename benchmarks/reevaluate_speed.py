"""Throughput of fleet what-ifs (`mobility reevaluate`): emission lookups per second.

Three measurements, best of ``--repeat``:

1. **raw vehicle-steps**: ``--samples`` (default 10^7) per-vehicle-step (speed, acceleration)
   samples, drawn from a real run's kinematics (a cell by its vehicle-steps, then uniform inside the
   cell), evaluated through one emission table (bilinear lookup), for
   a) CO2 only of a petrol car, b) CO2 + fuel of a petrol car, c) electricity of a battery-electric
   car, and d) the whole what-if per sample: a 70/30 petrol/BEV split, scope 1 + scope 2 (grid
   factor), summed per junction with ``np.bincount``.
2. **kinematics cells**: the evaluation inside ``mobility reevaluate`` (``evaluate_cells``: every
   cell × every class its vehicles become, 16 quadrature nodes per cell) on the run's real
   kinematics table, reported as cells/s and as the vehicle-steps those cells represent per second.
   The kinematics table is already aggregated, so the second figure is large by construction; the
   first and the raw figures are the honest throughput of the numerics.
3. **end to end**: ``reevaluate()`` wall time on the results directory (Parquet reading, scenario
   loading, tables from the disk cache, output tables).

    python benchmarks/reevaluate_speed.py [--results DIR] [--samples 10000000] [--repeat 3]
    python benchmarks/reevaluate_speed.py --agreement 3

``--agreement N`` instead measures the accuracy that ``tests/test_reevaluate.py`` requires (3 %):
for seeds 1..N, the corridor (25 min, 5 min warm-up) is simulated with the ``china-city`` fleet at
30 % NEV, re-evaluated to 60 % NEV and to all cars battery-electric, and both are re-simulated with
the same seed; it prints the per-junction error of the what-if against the re-simulation and the
lookup's error on the simulated fleet.

Without ``--results`` a 25-minute window of the bundled corridor with the ``china-city`` fleet is
simulated once into a temporary directory (~10 s). Emission tables are built on first use and
cached (see ``mobility.carbon.emission_tables``).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def corridor_spec(out: Path, nev_share: float = 0.3) -> Path:
    """The bundled corridor (25 min, 5 min warm-up) with the china-city fleet, written to ``out``."""
    text = (ROOT / "scenarios" / "corridor.toml").read_text(encoding="utf-8")
    text = re.sub(r"\[\[vehicle_types\]\]\n(?:(?!\[).*\n)*", "", text)
    text = text.replace('network = "../networks/corridor/corridor.net.xml"',
                        f'network = "{ROOT / "networks" / "corridor" / "corridor.net.xml"}"')
    text = re.sub(r"^end_s = .*$", "end_s = 1500", text, count=1, flags=re.M)
    text = re.sub(r"^warmup_s = .*$", "warmup_s = 300", text, count=1, flags=re.M)
    text = text.replace("[zones]", f'[fleet]\npreset = "china-city"\nnev_share = {nev_share}\n\n[zones]', 1)
    spec = out / f"corridor-fleet-{nev_share:g}.toml"
    spec.write_text(text, encoding="utf-8")
    return spec


def corridor_results(out: Path) -> Path:
    """Simulate the corridor of :func:`corridor_spec` once (seed 1) into ``out/results``."""
    from mobility import run

    run(corridor_spec(out), "static", seed=1, out=out / "results")
    return out / "results"


def agreement(seeds: int) -> None:
    """What-if versus re-simulation, per junction (see the module docstring)."""
    import pandas as pd

    from mobility import run
    from mobility.carbon.reevaluate import ClassShare, Fleet, reevaluate
    from mobility.scenario import from_toml
    from mobility.carbon.tonnage import apply_fleet

    bev_cars = Fleet("all cars BEV", (ClassShare("car_bev_all", "car", "HBEFA4/PC_BEV", 1.0),))
    rows = []
    with tempfile.TemporaryDirectory(prefix="mobility-agree-") as tmp:
        d = Path(tmp)
        sa, sb = from_toml(corridor_spec(d, 0.3)), from_toml(corridor_spec(d, 0.6))
        sc = apply_fleet(sa, bev_cars, "benchmark")
        for seed in range(1, seeds + 1):
            a = run(sa, "static", seed=seed, out=d / f"A{seed}")
            for label, fleet, scen in (("china-city nev 0.6", "china-city(nev_share=0.6)", sb),
                                       ("all cars BEV", bev_cars, sc)):
                w = reevaluate(d / f"A{seed}", fleet).junctions.set_index("junction_id")
                sim = run(scen, "static", seed=seed).junctions.set_index("junction_id")
                before = a.junctions.set_index("junction_id")["co2_total_kg"]
                for jid in w.index:
                    rows.append({"seed": seed, "what_if": label, "junction_id": jid,
                                 "simulated_fleet_kg": before[jid], "resim_kg": sim.loc[jid, "co2_total_kg"],
                                 "what_if_kg": w.loc[jid, "co2_total_kg"],
                                 "error_pct": 100 * (w.loc[jid, "co2_total_kg"] / sim.loc[jid, "co2_total_kg"] - 1),
                                 "lookup_error_pct": w.loc[jid, "lookup_error_pct"]})
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 140)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    named = df[df["junction_id"] != "(unattributed)"]
    for label, g in named.groupby("what_if"):
        print(f"{label}: per-junction |error| vs re-simulation: max {g['error_pct'].abs().max():.2f} %, "
              f"mean {g['error_pct'].abs().mean():.2f} % over {len(g)} junction-runs; "
              f"change vs simulated fleet {100 * (g['resim_kg'].sum() / g['simulated_fleet_kg'].sum() - 1):+.1f} %")
    print(f"lookup error on the simulated fleet, junctions: max |{named['lookup_error_pct'].abs().max():.2f}| %; "
          f"unattributed: max |{df[df['junction_id'] == '(unattributed)']['lookup_error_pct'].abs().max():.2f}| %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, help="a results directory with kinematics.parquet")
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--agreement", type=int, default=0, metavar="SEEDS",
                    help="measure what-if vs re-simulation accuracy over SEEDS seeds instead")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.agreement:
        agreement(args.agreement)
        return
    import pandas as pd

    from mobility.carbon.emission_tables import emission_table, grid_index
    from mobility.metrics import KIN_ACCEL_BIN, KIN_ACCEL_MIN, KIN_SPEED_BIN
    from mobility.carbon.reevaluate import (class_split, evaluate_cells, load_fleet, load_results, reevaluate,
                                     _run_fleets)

    with tempfile.TemporaryDirectory(prefix="mobility-bench-") as tmp:
        results = args.results or corridor_results(Path(tmp))
        tables = load_results(results)
        kin = tables["kinematics"]

        # ---- 1. raw per-vehicle-step samples drawn from the run's cells
        rng = np.random.default_rng(1)
        w = kin["veh_steps"].to_numpy(dtype=float)
        pick = rng.choice(len(kin), size=args.samples, p=w / w.sum())
        vb = kin["speed_bin"].to_numpy()[pick]
        ab = kin["accel_bin"].to_numpy()[pick]
        speed = (vb + rng.random(args.samples)) * KIN_SPEED_BIN
        accel = KIN_ACCEL_MIN + (ab + rng.random(args.samples)) * KIN_ACCEL_BIN
        junction_codes, junction_of = np.unique(kin["junction_id"].to_numpy()[pick], return_inverse=True)
        petrol = emission_table("HBEFA4/PC_petrol_Euro-6d", "passenger")
        bev = emission_table("HBEFA4/PC_BEV", "passenger")
        petrol.evaluate(speed[:10], accel[:10])
        bev.evaluate(speed[:10], accel[:10])  # build the corner arrays once
        n = args.samples
        dt, grid = 1.0, 0.5366

        def whatif() -> np.ndarray:
            k, fx, fy = grid_index(petrol.grid, speed, accel)  # one index for both tables (same grid)
            co2 = petrol.evaluate_index(k, fx, fy, ("co2_mg_s",))["co2_mg_s"]
            el = bev.evaluate_index(k, fx, fy, ("electricity_wh_s",))["electricity_wh_s"]
            per_step_kg = (0.7 * co2 * (dt / 1e6)) + (0.3 * el * (dt / 1e3 * grid))
            return np.bincount(junction_of, weights=per_step_kg, minlength=len(junction_codes))

        raw = [
            ("petrol car, CO2 only", lambda: petrol.evaluate(speed, accel, ("co2_mg_s",))),
            ("petrol car, CO2 + fuel", lambda: petrol.evaluate(speed, accel, ("co2_mg_s", "fuel_mg_s"))),
            ("battery-electric car, electricity", lambda: bev.evaluate(speed, accel, ("electricity_wh_s",))),
            ("what-if per step: 70/30 petrol/BEV, scope 1+2, per junction", whatif),
        ]
        print(f"results: {results}")
        print(f"1. raw per-vehicle-step samples: {n:,} (speed, acceleration) samples, best of {args.repeat}")
        for label, fn in raw:
            t = best_of(fn, args.repeat)
            print(f"   {label:<62} {t:6.3f} s  {n / t / 1e6:7.1f} million vehicle-steps/s")

        # ---- 2. kinematics cells, as inside `mobility reevaluate`
        runs = tables["runs"]
        rf = next(iter(_run_fleets(runs, None).values()))
        new = load_fleet("china-city(nev_share=0.6)")
        split = class_split(rf, new)
        group_of = {c.id: c.group for c in rf.classes}
        dt_rows = np.full(len(kin), float(runs["step_length_s"].iloc[0]))
        grid_rows = np.full(len(kin), grid)
        evaluate_cells(kin, split, rf.kinematics, group_of, dt_rows, grid_rows)  # warm the table cache
        t = best_of(lambda: evaluate_cells(kin, split, rf.kinematics, group_of, dt_rows, grid_rows), args.repeat)
        lookups = sum(1 for parts in split.values() for _, f in parts if f > 0)
        steps = int(kin["veh_steps"].sum())
        print(f"2. kinematics cells: {len(kin):,} cells representing {steps:,} vehicle-steps; fleet "
              f"'{rf.name}' -> '{new.name}' ({lookups} type→class pairs; 16 nodes per cell where the model is not linear in acceleration)")
        print(f"   evaluate_cells {t:6.3f} s  {len(kin) / t / 1e6:7.3f} million cells/s  "
              f"{steps / t / 1e6:9.1f} million represented vehicle-steps/s")

        # ---- 3. end to end
        t = best_of(lambda: reevaluate(results, new), args.repeat)
        print(f"3. reevaluate() end to end (Parquet, scenario, cached tables, output tables): {t:6.3f} s")
        pd.set_option("display.width", 120)


if __name__ == "__main__":
    main()
