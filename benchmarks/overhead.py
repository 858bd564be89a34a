"""Overhead of `mobility run` against plain `sumo` on the same scenario.

Runs plain SUMO (the wheel's binary, same options as mobility passes: begin/end/step/seed, no step
log) and `mobility run SCENARIO --controller static` with all per-junction metrics on, each
``--repeat`` times, and prints the best wall times and their ratio.

    python benchmarks/overhead.py [SCENARIO] [--repeat 3]

Default scenario: ../shared/scenarios/resco/ingolstadt21/ingolstadt21.sumocfg (21 signals).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "scenarios" / "resco" / "ingolstadt21" / "ingolstadt21.sumocfg"


def best_of(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from mobility.scenario import load_scenario
    from mobility.sim import sumo_command

    sc = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as wd:
        plain = sumo_command(sc, sc.seed, Path(wd))
        t_sumo = best_of(plain, args.repeat)
        ours = [sys.executable, "-m", "mobility.cli", "run", args.scenario, "--controller", "static"]
        t_ours = best_of(ours, args.repeat)
    print(f"scenario            {sc.name} ({args.scenario})")
    print(f"plain sumo          {t_sumo:7.2f} s  (best of {args.repeat})")
    print(f"mobility run static {t_ours:7.2f} s  (best of {args.repeat}; includes Python start-up, network read, zones)")
    print(f"ratio               {t_ours / t_sumo:7.2f}")


if __name__ == "__main__":
    main()
