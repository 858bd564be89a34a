"""Overhead of `mobility run` against plain `sumo` on the same scenario: wall time, CPU time, peak RSS.

Runs, as interleaved pairs, plain SUMO (the wheel's binary with the options mobility passes:
configuration, begin/end, step length, seed, no step log) and ``mobility run SCENARIO --controller
static`` (all per-junction metrics on, a fresh Python process: start-up, network read and zones
included). Each pair gives a wall-time ratio and a CPU-time ratio (user + system time of the process
and its children, from ``wait4``); the medians over pairs are printed, with each side's peak RSS.
On a loaded machine CPU time is the reliable number.

    python benchmarks/overhead.py [SCENARIO] [--pairs 3]     # default: RESCO ingolstadt21
    python benchmarks/overhead.py --city [--pairs 3]         # the synthetic city of issue #12

Default scenario: ../shared/scenarios/resco/ingolstadt21/ingolstadt21.sumocfg (21 signals, 1 h).
``--city``: an 11 x 11 grid of signals, 250 m blocks, 2 lanes, ~20,000 random trips in the hour
(netgenerate + randomTrips.py from the SUMO wheel, seed 3), generated once into
``$MOBILITY_CACHE_DIR/bench-city`` (default ``~/.cache/mobility/bench-city``), never into the repository.

How the per-vehicle samples reach the attribution, and what the alternatives cost, is recorded in
``docs/data-path.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: ../shared beside the repository (CI), else the nearest ancestor holding shared/ (e.g. a worktree)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "scenarios").is_dir()), ROOT.parent / "shared")
DEFAULT = SHARED / "scenarios" / "resco" / "ingolstadt21" / "ingolstadt21.sumocfg"


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Wall s, CPU s (user + system of the process and the children it waited for), peak RSS MB."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({p.returncode}):\n{err[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def city(cache: Path) -> Path:
    """The synthetic city of issue #12 (generated once)."""
    import sumo

    cfg = cache / "city.sumocfg"
    if cfg.exists():
        return cfg
    cache.mkdir(parents=True, exist_ok=True)
    home = Path(sumo.SUMO_HOME)
    tmp = Path(tempfile.mkdtemp(dir=cache))
    net, trips, routes = tmp / "city.net.xml", tmp / "city.trips.xml", tmp / "city.rou.xml"
    subprocess.run([str(home / "bin" / "netgenerate"), "--grid", "--grid.number", "11", "--grid.length", "250",
                    "--default.lanenumber", "2", "--tls.guess", "true", "--default-junction-type", "traffic_light",
                    "--no-turnarounds", "true", "-o", str(net)], check=True, capture_output=True)
    env = {**os.environ, "SUMO_HOME": str(home)}
    subprocess.run([sys.executable, str(home / "tools" / "randomTrips.py"), "-n", str(net), "-e", "3600", "-p", "0.18",
                    "--fringe-factor", "5", "--min-distance", "800", "--seed", "3", "--validate",
                    "-o", str(trips), "-r", str(routes)], check=True, capture_output=True, env=env, cwd=tmp)
    (tmp / "city.sumocfg").write_text(
        '<configuration>\n  <input>\n    <net-file value="city.net.xml"/>\n    <route-files value="city.rou.xml"/>\n'
        '  </input>\n  <time>\n    <begin value="0"/>\n    <end value="3600"/>\n  </time>\n</configuration>\n')
    for f in tmp.iterdir():
        f.replace(cache / f.name)
    tmp.rmdir()
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=None)
    ap.add_argument("--city", action="store_true", help="the synthetic 121-signal city (generated into the cache)")
    ap.add_argument("--pairs", type=int, default=3, help="interleaved (plain sumo, mobility) pairs")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from mobility.carbon.emission_tables import cache_root
    from mobility.scenario import load_scenario
    from mobility.scenario import sumo_command

    path = str(city(cache_root() / "bench-city")) if args.city else (args.scenario or str(DEFAULT))
    sc = load_scenario(path)
    rows = []
    with tempfile.TemporaryDirectory() as wd:
        plain = sumo_command(sc, sc.seed, Path(wd))
        ours = [sys.executable, "-m", "mobility.cli", "run", path, "--controller", "static"]
        for i in range(args.pairs):
            a, b = measure(plain), measure(ours)
            rows.append((a, b))
            print(f"pair {i + 1}: sumo {a[0]:6.2f} s wall {a[1]:6.2f} s CPU {a[2]:5.0f} MB | "
                  f"mobility {b[0]:6.2f} s wall {b[1]:6.2f} s CPU {b[2]:5.0f} MB", flush=True)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print(f"\nscenario             {sc.name} ({path})")
    print(f"plain sumo           wall {med([a[0] for a, _ in rows]):7.2f} s   CPU {med([a[1] for a, _ in rows]):7.2f} s"
          f"   peak RSS {max(a[2] for a, _ in rows):6.0f} MB")
    print(f"mobility run static  wall {med([b[0] for _, b in rows]):7.2f} s   CPU {med([b[1] for _, b in rows]):7.2f} s"
          f"   peak RSS {max(b[2] for _, b in rows):6.0f} MB")
    print(f"ratio (median of {len(rows)} pairs)  wall {med([b[0] / a[0] for a, b in rows]):5.2f}"
          f"   CPU {med([b[1] / a[1] for a, b in rows]):5.2f}   (target <= 1.25)")


if __name__ == "__main__":
    main()
