"""Sweep scaling: the same 8-run sweep with --jobs 1 and --jobs 2; prints the speed-up.

    python benchmarks/sweep_scaling.py [--end-s 4500] [--executor local] [--repeat 1] [--quiet-machine]

The sweep is the bundled corridor under static and sumo-actuated control, seeds 1-4 (8 runs), each
run in a fresh store (nothing reused). Wall time is measured around ``mobility sweep`` as a user runs
it (process start, every run, consolidation). The speed-up is bounded by the cores that are really
free: on a shared machine, other work competes for them, so run it with nothing else running and
report the machine's load next to the number. With ``--repeat N`` the two settings alternate
(1, 2, 2, 1, ...) and the best time of each is used. With ``--quiet-machine`` each measurement waits
until no other process uses the CPU, and is discarded and repeated if another process used more than
a tenth of a core on average while it ran (the processes of the sweep itself are not counted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = """name = "scaling"
scenarios = ["corridor"]
seeds = [1, 2, 3, 4]
timespace = false
[window]
end_s = {end_s}
[[controllers]]
name = "static"
[[controllers]]
name = "sumo-actuated"
"""


def _cpu_seconds(exclude: set[int]) -> dict[int, float]:
    """CPU time used so far by each process not in ``exclude`` (nor a descendant of one)."""
    import psutil

    out = {}
    for p in psutil.process_iter():
        try:
            if p.pid in exclude or any(a.pid in exclude for a in p.parents()):
                continue
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return out


def _others_cores(exclude: set[int], seconds: float) -> float:
    """Cores used by other processes during a window of ``seconds`` (a process that ends inside the
    window is not counted for it; one that starts inside it is counted from its start)."""
    a = _cpu_seconds(exclude)
    time.sleep(seconds)
    b = _cpu_seconds(exclude)
    return sum(max(t - a.get(pid, 0.0), 0.0) for pid, t in b.items()) / seconds


def sweep(spec: Path, out: Path, jobs: int, executor: str, quiet: bool = False) -> tuple[float, float]:
    """Wall time of one sweep, and the cores other processes used meanwhile (NaN if not watched)."""
    me = {os.getpid()}
    if quiet:
        while (busy := _others_cores(me, 10.0)) > 0.05:
            print(f"  waiting for a quiet machine (others use {busy:.2f} cores)", flush=True)
            time.sleep(20)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mobility.cli", "sweep", str(spec), "--out", str(out), "--jobs",
                             str(jobs), "--executor", executor], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    others, watched = 0.0, 0.0
    while proc.poll() is None:
        if quiet:
            others += _others_cores(me | {proc.pid}, 2.0) * 2.0
            watched += 2.0
        else:
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"sweep --jobs {jobs} failed:\n{err}")
    return wall, (others / watched if watched else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--end-s", type=float, default=4500.0, help="end of each run (s); the corridor's own is 4500")
    ap.add_argument("--executor", default="local", choices=("local", "dask-local"))
    ap.add_argument("--repeat", type=int, default=1, help="measurements per setting (best is used)")
    ap.add_argument("--quiet-machine", action="store_true",
                    help="measure only while no other process uses the CPU (retry disturbed measurements)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mobility-scaling-") as d:
        spec = Path(d) / "scaling.toml"
        spec.write_text(SPEC.format(end_s=args.end_s))
        print(f"8 runs (corridor, static + sumo-actuated, seeds 1-4, end {args.end_s:g} s), executor {args.executor}, "
              f"{os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        walls: dict[int, float] = {}
        for i in range(args.repeat):
            for jobs in ((1, 2) if i % 2 == 0 else (2, 1)):
                out = Path(d) / f"out{jobs}-{i}"
                while True:
                    if out.exists():
                        shutil.rmtree(out)
                    w, others = sweep(spec, out, jobs, args.executor, args.quiet_machine)
                    seen = f", other processes used {others:.2f} cores meanwhile" if others == others else ""
                    print(f"--jobs {jobs}: {w:7.1f} s  (load average {os.getloadavg()[0]:.2f}{seen})", flush=True)
                    if not args.quiet_machine or others <= 0.1:
                        break
                    print("  disturbed: measuring again", flush=True)
                walls[jobs] = min(w, walls.get(jobs, w))
        print(f"speed-up (best of {args.repeat}): {walls[1] / walls[2]:.2f}x  (load average after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        from mobility.experiments.sweep import compare_results

        diffs = compare_results(Path(d) / "out1-0", Path(d) / "out2-0")
        print("tables identical between --jobs 1 and --jobs 2" if not diffs else f"TABLES DIFFER: {diffs}")


if __name__ == "__main__":
    main()
