"""``mobility`` command line. Bad input: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from .errors import MobilityError, SimulationError


SEED_LIMIT = 2**31  # = mobility.experiments.run.SEED_LIMIT (not imported: the parser loads no pandas)
MAX_SEEDS = 10_000  # = mobility.experiments.run.MAX_SEEDS


def _seeds(text: str) -> int | list[int]:
    try:
        if "," in text:
            seeds = [int(x) for x in text.split(",") if x.strip()]
            bad = [x for x in seeds if not 0 <= x < SEED_LIMIT]
            if bad:
                raise argparse.ArgumentTypeError(f"expected integers 0 <= seed < 2**31, got {bad[0]}")
            return seeds
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count N or a list like 1,2,3, got {text!r}") from None
    if not 1 <= n <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"expected a count of 1 to {MAX_SEEDS} seeds, got {n}")
    return n


def _seed(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 0 <= seed < 2**31, got {text!r}") from None
    if not 0 <= n < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer 0 <= seed < 2**31, got {n}")
    return n


def _finite(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``mobility run: error: argument --seed: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mobility", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("scenario", help="TOML path, bundled name (corridor, grid) or .sumocfg path")
        sp.add_argument("--out", type=Path, help="directory for junctions/network/runs .csv and .parquet")
        sp.add_argument("--backend", choices=("libsumo", "traci"), default="libsumo")
        sp.add_argument("--sumo-args", default="", help='extra SUMO options, passed unchanged (e.g. "--tripinfo-output t.xml")')
        sp.add_argument("--begin", type=float, default=None, help="simulated start, s (default: the scenario's)")
        sp.add_argument("--end", default=None, help="simulated end, s, or 'empty': run until the network is empty "
                        "(default: the scenario's end; a .sumocfg with none runs until empty)")
        sp.add_argument("--max-time", type=float, default=None,
                        help="safety cap of a run with no end, simulated s after begin (default 86400); flagged if hit")

    def executing(sp: argparse.ArgumentParser) -> None:
        """Where and how the runs of a ``compare`` or ``sweep`` execute, and what its store re-runs."""
        sp.add_argument("--jobs", type=int, default=None, help="parallel runs (default: CPU count; dask-local: workers)")
        sp.add_argument("--executor", choices=("local", "dask", "dask-local"), default="local",
                        help="local process pool (default), an existing Dask cluster, or a local Dask cluster")
        sp.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://HOST:8786) for --executor dask")
        sp.add_argument("--retry-failed", action="store_true", help="re-run runs the --out store holds as failed")
        sp.add_argument("--force", action="store_true", help="re-run every run, even those in the --out store")
        sp.add_argument("--wait", action="store_true", help="if another sweep or compare holds --out, wait for it")
        sp.add_argument("--run-timeout", type=float, default=None, metavar="SECONDS",
                        help="fail a run that takes longer (wall time; default 300 s + 2 s per simulated second; 0: none)")

    r = sub.add_parser("run", help="simulate one scenario under one controller")
    common(r)
    r.add_argument("--controller", default="static", help="name or NAME(param=value,...)")
    r.add_argument("--seed", type=_seed, default=None, help="default: the scenario's seed (0 <= seed < 2**31)")
    r.add_argument("--gui", action="store_true", help="watch it in sumo-gui (uses TraCI)")
    r.add_argument("--timespace", action="store_true",
                   help="record time-space diagram data along the scenario's corridor (timespace_*.parquet)")

    c = sub.add_parser("compare", help="compare controllers over seeds, per junction")
    common(c)
    c.add_argument("--controllers", default="static,sumo-actuated", help="comma-separated names or specs")
    c.add_argument("--seeds", type=_seeds, default=1, help="N seeds from the scenario's seed, or a list 1,2,3")
    executing(c)

    sw = sub.add_parser("sweep", help="run a sweep spec (scenarios × controllers × seeds × demand scales), resumable")
    sw.add_argument("spec", type=Path, help="sweep spec TOML (see scenarios/corridor-sweep.toml)")
    sw.add_argument("--out", type=Path, default=None, help="results directory (default: results/<spec name>)")
    executing(sw)

    rp = sub.add_parser("report", help="write a self-contained HTML report of a results directory")
    rp.add_argument("results", type=Path, help="directory written by mobility run/compare/sweep")
    rp.add_argument("--out", type=Path, default=None, help="HTML file (default: RESULTS/report.html)")
    rp.add_argument("--baseline", default=None, help="controller to compare against (default: the spec's or the first)")

    io = sub.add_parser("import-osm", help="build a signalised network + scenario skeleton from an OSM extract")
    io.add_argument("osm", type=Path, help="OpenStreetMap extract (.osm, .osm.xml, optionally .gz)")
    io.add_argument("--out", type=Path, required=True, help="directory to create, e.g. networks/NAME")
    io.add_argument("--name", default=None, help="file stem (default: the --out directory name)")
    io.add_argument("--density", type=_finite, default=None,
                    help="default demand, veh/h per lane-km open to cars (default 6; 0: none)")
    io.add_argument("--seed", type=_seed, default=1, help="seed of the random default demand and the scenario")
    io.add_argument("--netconvert-args", default="", help='extra netconvert options (e.g. "--tls.discard-simple")')
    io.add_argument("--force", action="store_true", help="replace a non-empty --out directory")

    dc = sub.add_parser("demand-from-counts", help="fit demand to traffic counts (routeSampler) and report GEH")
    dc.add_argument("network", help=".net.xml path, directory holding one, bundled network name, or scenario")
    dc.add_argument("counts", type=Path, help="CSV (edge or from_edge,to_edge, and begin_s,end_s,count) or "
                    "SUMO edgeData / edgeRelation XML")
    dc.add_argument("--edgedata-attribute", default="entered",
                    help="count attribute of an edgeData file (default entered, as routeSampler)")
    dc.add_argument("--out", type=Path, required=True, help="directory for NAME.toml, fit.csv, routes.rou.xml")
    dc.add_argument("--begin", type=_finite, default=None, help="counted window start, s (default: first count)")
    dc.add_argument("--end", type=_finite, default=None, help="counted window end, s (default: last count)")
    dc.add_argument("--warmup", type=_finite, default=900.0,
                    help="warm-up before the first count, s, at the first interval's demand (default 900)")
    dc.add_argument("--seed", type=_seed, default=1, help="seed of candidate routes, sampling and the fit run")
    dc.add_argument("--candidates", type=int, default=None, help="random candidate trips (default 2000)")
    dc.add_argument("--force", action="store_true", help="replace a non-empty --out directory")

    tn = sub.add_parser("tonnage", help="annual t CO2 per junction and savings with CIs (a tonnage spec)")
    tn.add_argument("spec", type=Path, help="tonnage spec TOML (see scenarios/corridor-year.toml)")
    tn.add_argument("--out", type=Path, default=None, help="directory for tonnage*.csv/.parquet and periods/<name>/")
    tn.add_argument("--seeds", type=_seeds, default=None, help="N seeds (1..N) or a list 1,2,3 (default: the spec's)")
    tn.add_argument("--jobs", type=int, default=None, help="parallel runs (default: CPU count)")

    rv = sub.add_parser("reevaluate", help="per-junction CO2 of recorded runs for another fleet, without re-simulating")
    rv.add_argument("results", type=Path, help="directory written by mobility run/compare (with kinematics.parquet)")
    rv.add_argument("--fleet", required=True,
                    help="preset (china-city or 'china-city(nev_share=0.6)'), fleet TOML or scenario TOML")
    rv.add_argument("--grid-factor", type=_finite, default=None,
                    help="scope-2 grid factor, kg CO2/kWh (default: the fleet file's, else each run's)")
    rv.add_argument("--scenario", default=None, help="the scenario the runs used (default: as recorded)")
    rv.add_argument("--out", type=Path, default=None, help="directory for junctions/network/runs .csv and .parquet")

    sub.add_parser("controllers", help="list available controllers")
    ck = sub.add_parser("check", help="check that a controller keeps the contract (mobility.check_controller)")
    ck.add_argument("controller", help="a registered name or MODULE:Class (the module importable from here)")
    ck.add_argument("--network", action="append", default=None,
                    help="a .net.xml to check on (repeatable; default: the bundled corridor and grid)")
    z = sub.add_parser("zones", help="print the attribution zones of a scenario's network")
    z.add_argument("scenario")
    for sp in sub.choices.values():
        sp.add_argument("--debug", action="store_true",
                        help="print the full traceback of a failed run or of an unexpected error")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:  # `mobility zones corridor | head`: the reader is gone; stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except (MobilityError, SimulationError) as e:
        trace = getattr(e, "traceback", "")
        if args.debug and trace:
            print(trace.rstrip(), file=sys.stderr)
        print(f"mobility: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mobility: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the file system refused (permissions, a full disk...): say which file
        if args.debug:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"mobility: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: one line, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"mobility: internal error: {type(e).__name__}: {first} (a bug; --debug prints the traceback, "
              "please report it)", file=sys.stderr)
        return 3


def _check(spec: str, networks: list[str] | None) -> int:
    """``mobility check MODULE:Class``: 0 when the controller keeps the contract, 1 with the broken rule."""
    from .controllers import load_class
    from .controllers.check import check_controller

    if ":" in spec and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # MODULE:Class of a file in the current directory, as `python -m` would
    for net in networks or []:
        if not Path(net).is_file():
            raise MobilityError(f"--network {net}: no such file; expected a SUMO .net.xml")
    cls = load_class(spec)
    try:
        check_controller(cls, networks=networks)
    except AssertionError as e:
        print(f"mobility check: {spec}: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"{spec}: ok ({cls.__module__}:{cls.__qualname__} keeps the controller contract)")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    from .experiments import run as experiment
    from .controllers import available

    if args.command == "controllers":
        for name, desc in available().items():
            print(f"{name:<22} {desc}")
        return 0
    if args.command == "check":
        return _check(args.controller, args.network)
    from .experiments.run import check_out_dir

    if getattr(args, "out", None) is not None and args.command != "report":  # report's --out is a file
        check_out_dir(args.out)
    if args.command == "sweep":
        from .experiments.spec import load_spec
        from .experiments.sweep import format_sweep, run_sweep

        spec = load_spec(args.spec)
        out = args.out if args.out is not None else Path("results") / spec.name
        check_out_dir(out)
        res = run_sweep(spec, out=out, jobs=args.jobs, executor=args.executor, scheduler=args.scheduler,
                        progress=True, retry_failed=args.retry_failed, force=args.force,
                        run_timeout_s=args.run_timeout, wait=args.wait)
        print(format_sweep(res, spec.baseline))
        print(f"\n{len(res.runs)} runs; tables in {out} (runs in {out / 'runs'})")
        _print_tracebacks(res, args.debug)
        return 0 if res.failed.empty else 1
    if args.command == "import-osm":
        import shlex

        from .inputs.osm import DEFAULT_INSERTION_DENSITY, import_osm

        density = DEFAULT_INSERTION_DENSITY if args.density is None else args.density
        rep = import_osm(args.osm, args.out, name=args.name, insertion_density=density, seed=args.seed,
                         netconvert_args=shlex.split(args.netconvert_args), force=args.force, progress=True)
        print(rep.format())
        print(f"\nrun it: mobility compare {rep.scenario_file} --controllers static,max-pressure")
        return 0
    if args.command == "demand-from-counts":
        from .inputs.counts import DEFAULT_CANDIDATES, demand_from_counts

        cand = DEFAULT_CANDIDATES if args.candidates is None else args.candidates
        crep = demand_from_counts(args.network, args.counts, args.out, begin_s=args.begin, end_s=args.end,
                                  warmup_s=args.warmup, seed=args.seed, candidates=cand, force=args.force,
                                  attribute=args.edgedata_attribute)
        print(crep.format())
        return 0
    if args.command == "tonnage":
        from .carbon.tonnage import format_tonnage, load_spec as load_tonnage_spec, run_tonnage

        tspec = load_tonnage_spec(args.spec, seeds=args.seeds)
        ton = run_tonnage(tspec, out=args.out, jobs=args.jobs, progress=True)
        print(format_tonnage(ton))
        if args.out is not None:
            print(f"\nwrote tonnage, tonnage_periods, tonnage_runs (.csv, .parquet) and tonnage_spec.json to {args.out}")
        return 0 if (ton.runs["status"] == "ok").all() else 1
    if args.command == "reevaluate":
        from .carbon.reevaluate import format_whatif, reevaluate

        what = reevaluate(args.results, args.fleet, grid_kg_co2_per_kwh=args.grid_factor, scenario=args.scenario)
        print(format_whatif(what))
        if args.out is not None:
            written = what.write(args.out)
            print(f"\nwrote {', '.join(p.name for p in written)} to {args.out}")
        return 0
    if args.command == "report":
        from .report import write_report

        path = write_report(args.results, args.out, baseline=args.baseline)
        print(f"report: {path.resolve()}")
        return 0
    from .scenario import load_scenario

    if args.command == "zones":
        from .metrics import ZoneMap
        from .network import SignalNetwork

        from .errors import NetworkError

        sc = load_scenario(args.scenario)
        net = SignalNetwork.load(sc.net_file)
        if not net.junction_ids:
            raise NetworkError(f"{sc.net_file}: no traffic light; expected a network with signalised junctions "
                               "(tlLogic; netconvert --tls.guess adds them)")
        zm = ZoneMap.build(net, sc.zones, list(sc.junctions) or None)
        print(zm.table().to_string(index=False))
        return 0
    sc = load_scenario(args.scenario)
    if args.begin is not None or args.end is not None or args.max_time is not None:
        try:
            end = None if args.end in (None, "empty") else float(args.end)
        except ValueError:
            raise MobilityError(f"--end: expected seconds or 'empty', got {args.end!r}") from None
        sc = sc.with_window(args.begin, end, until_empty=args.end == "empty", cap_s=args.max_time)
    if args.command == "run":
        res = experiment.run(sc, args.controller, args.seed, backend=args.backend, gui=args.gui,
                             sumo_args=args.sumo_args, timespace=args.timespace)
    else:
        from .experiments.sweep import compare

        specs = experiment.split_specs(args.controllers)
        res = compare(sc, specs, args.seeds, jobs=args.jobs, backend=args.backend,
                      sumo_args=args.sumo_args, out=args.out, executor=args.executor,
                      scheduler=args.scheduler, progress=True, retry_failed=args.retry_failed,
                      force=args.force, run_timeout_s=args.run_timeout, wait=args.wait)
    print(experiment.format_comparison(res))
    if args.command == "run" and not res.approaches.empty:
        from .approaches import format_approaches

        print("\n" + format_approaches(res.approaches, res.network))
    if args.command == "compare" and args.out is not None:
        print(f"\nwrote the tables to {args.out} (runs in {args.out / 'runs'})")
    elif args.out is not None:
        written = res.write(args.out)
        print(f"\nwrote {', '.join(p.name for p in written)} to {args.out}")
    _print_tracebacks(res, args.debug)
    return 0 if res.failed.empty else 1


def _print_tracebacks(res: object, debug: bool) -> None:
    """With ``--debug``: the full traceback of every failed run, on stderr."""
    failed = res.failed  # type: ignore[attr-defined]
    if not debug or failed.empty or "error_traceback" not in failed.columns:
        return
    for _, r in failed.iterrows():
        tb = str(r.get("error_traceback") or "").rstrip()
        if tb and tb != "nan":
            print(f"--- {r['variant']} seed {r['seed']} (run {r['run_id']}):\n{tb}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
