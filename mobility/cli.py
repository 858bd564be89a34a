"""``mobility`` command line. Bad input: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MobilityError, SimulationError


def _seeds(text: str) -> int | list[int]:
    try:
        if "," in text:
            return [int(x) for x in text.split(",") if x.strip()]
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count N or a list like 1,2,3, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 seed, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mobility", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("scenario", help="TOML path, bundled name (corridor, grid) or .sumocfg path")
        sp.add_argument("--out", type=Path, help="directory for junctions/network/runs .csv and .parquet")
        sp.add_argument("--backend", choices=("libsumo", "traci"), default="libsumo")
        sp.add_argument("--sumo-args", default="", help='extra SUMO options, passed unchanged (e.g. "--tripinfo-output t.xml")')

    r = sub.add_parser("run", help="simulate one scenario under one controller")
    common(r)
    r.add_argument("--controller", default="static", help="name or NAME(param=value,...)")
    r.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    r.add_argument("--gui", action="store_true", help="watch it in sumo-gui (uses TraCI)")
    r.add_argument("--timespace", action="store_true",
                   help="record time-space diagram data along the scenario's corridor (timespace_*.parquet)")

    c = sub.add_parser("compare", help="compare controllers over seeds, per junction")
    common(c)
    c.add_argument("--controllers", default="static,sumo-actuated", help="comma-separated names or specs")
    c.add_argument("--seeds", type=_seeds, default=1, help="N seeds from the scenario's seed, or a list 1,2,3")
    c.add_argument("--jobs", type=int, default=None, help="parallel runs (default: CPU count)")

    sub.add_parser("controllers", help="list available controllers")
    z = sub.add_parser("zones", help="print the attribution zones of a scenario's network")
    z.add_argument("scenario")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (MobilityError, SimulationError) as e:
        print(f"mobility: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mobility: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from . import experiment
    from .controllers import available

    if args.command == "controllers":
        for name, desc in available().items():
            print(f"{name:<22} {desc}")
        return 0
    from .scenario import load_scenario

    if args.command == "zones":
        from .metrics import ZoneMap
        from .network import SignalNetwork

        sc = load_scenario(args.scenario)
        zm = ZoneMap.build(SignalNetwork.load(sc.net_file), sc.zones, list(sc.junctions) or None)
        print(zm.table().to_string(index=False))
        return 0
    sc = load_scenario(args.scenario)
    if args.command == "run":
        res = experiment.run(sc, args.controller, args.seed, backend=args.backend, gui=args.gui,
                             sumo_args=args.sumo_args, timespace=args.timespace)
    else:
        specs = experiment.split_specs(args.controllers)
        res = experiment.compare(sc, specs, args.seeds, jobs=args.jobs, backend=args.backend,
                                 sumo_args=args.sumo_args)
    print(experiment.format_comparison(res))
    if args.out is not None:
        written = res.write(args.out)
        print(f"\nwrote {', '.join(p.name for p in written)} to {args.out}")
    return 0 if res.failed.empty else 1


if __name__ == "__main__":
    sys.exit(main())
