"""Sweep specs: what a sweep runs (scenarios × controller variants × seeds × demand scales).

A spec is a TOML file (``scenarios/corridor-sweep.toml`` documents every field), read by
:func:`load_spec`; :meth:`SweepSpec.for_compare` is the spec behind :func:`mobility.experiments.sweep.compare`.
Each (scenario, scale, variant, seed) is one :class:`Task` with a stable run id.
"""



from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from .._version import __version__
from ..controllers import make, parse_spec
from ..errors import MobilityError
from ..fields import Fields, is_integer, is_number, read_toml
from .run import (MAX_SEEDS, args_text, check_sumo_args, run_id, variant_label)
from ..scenario import Scenario, load_scenario

SPEC_FIELDS = ("name", "description", "scenarios", "controllers", "seeds", "demand_scales", "baseline", "backend",
               "sumo_args", "timespace", "window")


class SweepError(MobilityError):
    """A bad sweep spec or executor setting (one line naming the file and field)."""




# ------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True)
class Variant:
    """A controller with the parameters given for it."""

    controller: str  # registered name or "module:Class", as given
    params: dict[str, Any]  # the parameters given (not the defaults)
    label: str  # e.g. "max-pressure(min_green_s=5)"


@dataclass(frozen=True)
class Task:
    """One run of a sweep."""

    run_id: str
    scenario: Scenario  # as simulated (already scaled)
    demand_scale: float
    variant: Variant
    seed: int
    backend: str = "libsumo"
    sumo_args: str = ""
    timespace: bool = False  # record time–space diagram data (corridor scenarios)
    timeout_s: float | None = None  # wall seconds before the run's process is killed (None: no limit)


#: default per-run timeout (``--run-timeout``): this many wall seconds per simulated second, plus
#: :data:`RUN_TIMEOUT_BASE_S`; a 1-hour simulation gets 2 h 5 min, far beyond any healthy run on this
#: code (the bundled corridor's 75 minutes simulate in well under a minute), short enough that a
#: hanging controller does not stall a sweep for good
RUN_TIMEOUT_PER_SIM_S = 2.0
RUN_TIMEOUT_BASE_S = 300.0


#: timeouts are capped here (30 days; beyond it the operating system's timers overflow)
RUN_TIMEOUT_MAX_S = 30 * 86400.0


def default_run_timeout(sc: Scenario) -> float:
    """The default per-run timeout of ``sc``, wall seconds (see :data:`RUN_TIMEOUT_PER_SIM_S`)."""
    return min(RUN_TIMEOUT_BASE_S + RUN_TIMEOUT_PER_SIM_S * max(sc.stop_s - sc.begin_s, 0.0), RUN_TIMEOUT_MAX_S)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: every scenario × demand scale × variant × seed."""

    name: str
    scenarios: tuple[Scenario, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...] | int  # explicit seeds, or a count from each scenario's own seed
    demand_scales: tuple[float, ...] = (1.0,)
    baseline: str | None = None
    backend: str = "libsumo"
    sumo_args: str = ""
    timespace: bool = True  # first seed of each arm of a corridor scenario records time–space data
    source: Path | None = None
    description: str = ""
    _tasks: list[Task] = field(default_factory=list, compare=False, repr=False)

    def seeds_for(self, sc: Scenario) -> list[int]:
        return [sc.seed + i for i in range(self.seeds)] if isinstance(self.seeds, int) else list(self.seeds)

    def tasks(self) -> list[Task]:
        """The runs in spec order (scenario, scale, variant, seed); run ids are unique."""
        if self._tasks:
            return list(self._tasks)
        out: list[Task] = []
        seen: dict[str, str] = {}
        where = f"{self.source}: " if self.source else ""
        for sc0 in self.scenarios:
            seeds = self.seeds_for(sc0)
            for scale in self.demand_scales:
                sc = sc0.scaled(scale)
                shash = sc.content_hash()
                for v in self.variants:
                    ctrl = make(v.controller, **v.params)
                    for seed in seeds:
                        rid = run_id(shash, ctrl, seed, self.sumo_args, self.backend)
                        what = f"{sc.name} ×{scale:g} {v.label} seed {seed}"
                        if rid in seen:
                            raise SweepError(f"{where}'{seen[rid]}' and '{what}' are the same run (same scenario "
                                             "content, parameters and seed); list each once")
                        seen[rid] = what
                        out.append(Task(rid, sc, float(scale), v, seed, self.backend, self.sumo_args,
                                        self.timespace and bool(sc.corridor) and seed == seeds[0]))
        self._tasks.extend(out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """What ``DIR/sweep.json`` records."""
        return {
            "name": self.name, "description": self.description, "source": str(self.source or ""),
            "scenarios": [{"name": s.name, "source": str(s.source), "content_hash": s.content_hash()}
                          for s in self.scenarios],
            "controllers": [{"label": v.label, "controller": v.controller, "params": v.params} for v in self.variants],
            "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
            "demand_scales": list(self.demand_scales), "baseline": self.baseline, "backend": self.backend,
            "sumo_args": self.sumo_args, "timespace": self.timespace,
            "run_ids": [t.run_id for t in self.tasks()], "mobility_version": __version__,
        }

    @classmethod
    def for_compare(cls, scenario: str | Path | Scenario, controllers: Sequence[str],
                    seeds: int | Sequence[int] = 1, *, backend: str = "libsumo",
                    sumo_args: Sequence[str] | str = ()) -> SweepSpec:
        """The sweep behind :func:`compare`: one scenario, scale 1."""
        from ..inputs.counts import prepare_demand
        from .run import check_seed, preflight

        sc = prepare_demand(scenario if isinstance(scenario, Scenario) else load_scenario(scenario))
        if not controllers:
            raise MobilityError("--controllers: expected at least one controller name")
        if isinstance(seeds, int):
            if not 1 <= seeds <= MAX_SEEDS:
                raise MobilityError(f"--seeds: expected a count of 1 to {MAX_SEEDS} seeds, got {seeds}")
            seed_spec: tuple[int, ...] | int = seeds
            if sc.seed + seeds - 1 >= 2**31:
                raise MobilityError(f"--seeds: a count of {seeds} from the scenario's seed {sc.seed} goes beyond 2**31 - 1; "
                                    "expected integers 0 <= seed < 2**31")
            run_seeds = [sc.seed + i for i in range(seeds)]
        else:
            seed_spec = tuple(seeds)
            if not seed_spec:
                raise MobilityError("--seeds: expected at least one seed")
            for s in seed_spec:
                check_seed(s, "--seeds: expected integers 0 <= seed < 2**31; seed")
            if len(set(seed_spec)) != len(seed_spec):
                raise MobilityError(f"--seeds: seeds must be distinct, got {list(seed_spec)}")
            run_seeds = list(seed_spec)
        variants = []
        for spec in controllers:
            name, params = parse_spec(spec)
            ctrl = make(spec)  # validate name and parameters before any run starts
            variants.append(Variant(name, params, variant_label(ctrl.name, params)))
        _check_labels(variants, "--controllers")
        if backend not in ("libsumo", "traci"):
            raise MobilityError(f"--backend: expected libsumo or traci, got {backend!r}")
        preflight(sc, sumo_args=sumo_args, seeds=run_seeds)  # network, classes, routes, seeds, SUMO options
        return cls(name=sc.name, scenarios=(sc,), variants=tuple(variants), seeds=seed_spec,
                   backend=backend, sumo_args=args_text(sumo_args))


def _check_labels(variants: Sequence[Variant], where: str) -> None:
    seen: set[str] = set()
    for v in variants:
        if v.label in seen:
            raise SweepError(f"{where}: controller '{v.label}' listed twice")
        seen.add(v.label)


class _SpecFields(Fields):
    """Fields of a sweep spec: errors are :class:`SweepError`."""

    error = SweepError
    hint = "scenarios/corridor-sweep.toml"


def load_spec(path: str | Path) -> SweepSpec:
    """Load and validate a sweep spec (TOML). Every error is one line naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: no such file; expected a sweep spec (.toml), see scenarios/corridor-sweep.toml")
    path = path.resolve()
    data = read_toml(path, SweepError)
    f = _SpecFields(path, data)
    if "network" in data and "scenarios" not in data:
        raise SweepError(f"{path}: this is a scenario, not a sweep spec; a sweep spec lists scenarios = [...] and "
                         "[[controllers]] (see scenarios/corridor-sweep.toml), or use `mobility compare`")
    for key in data:
        if key not in SPEC_FIELDS:
            raise f.err(key, f"unknown field; expected one of {', '.join(SPEC_FIELDS)}")

    name = f.get("name", str, path.stem, what="a string")
    if not name.strip() or any(c in name for c in "/\\\0") or name.strip() in (".", ".."):
        raise f.err("name", f"expected a name (the default output directory is results/<name>), not a path: got "
                            f"{name!r}; use --out for another place")
    description = f.get("description", str, "", what="a string")
    backend = f.get("backend", str, "libsumo", what="a string")
    if backend not in ("libsumo", "traci"):
        raise f.err("backend", f"expected 'libsumo' or 'traci', got {backend!r}")
    sumo_args = data.get("sumo_args", "")
    if isinstance(sumo_args, list) and all(isinstance(a, str) for a in sumo_args):
        sumo_args = " ".join(sumo_args)
    if not isinstance(sumo_args, str):
        raise f.err("sumo_args", f"expected a string or a list of strings, got {sumo_args!r}")
    timespace = data.get("timespace", True)
    if not isinstance(timespace, bool):
        raise f.err("timespace", f"expected true or false, got {timespace!r}")

    scenarios = _spec_scenarios(f, path, data)
    seed_spec = _spec_seeds(f, data)
    scales = _spec_scales(f, data)
    variants = _spec_variants(f, path, data)
    baseline = _spec_baseline(f, data, variants)
    _spec_preflight(f, path, sumo_args, scenarios, seed_spec)
    spec = SweepSpec(name=name, scenarios=tuple(scenarios), variants=tuple(variants), seeds=seed_spec,
                     demand_scales=tuple(float(s) for s in scales), baseline=baseline, backend=backend,
                     sumo_args=sumo_args, timespace=timespace, source=path, description=description)
    spec.tasks()  # validates that runs are distinct
    return spec


def _spec_scenarios(f: Fields, path: Path, data: dict[str, Any]) -> list[Scenario]:
    """``scenarios`` (names or paths relative to the spec), loaded with their demand, in the
    optional ``[window]``."""
    from ..inputs.counts import prepare_demand

    raw = data.get("scenarios")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise f.err("scenarios", f"expected a non-empty list of scenario names or paths, got {raw!r}")
    window = data.get("window", {})
    if not isinstance(window, dict):
        raise f.err("window", f"expected a table with end_s and/or warmup_s, got {window!r}")
    for k, v in window.items():
        if k not in ("begin_s", "end_s", "warmup_s"):
            raise f.err(f"window.{k}", "unknown field; expected begin_s, end_s or warmup_s")
        if k == "end_s" and v == "empty":  # no end time: until the network is empty
            continue
        if not is_number(v) or not math.isfinite(v) or v < 0:
            raise f.err(f"window.{k}", f"expected a non-negative number of seconds, got {v!r}")
    scenarios: list[Scenario] = []
    for i, ref in enumerate(raw):
        local = (path.parent / ref)
        try:
            sc = prepare_demand(load_scenario(local if local.exists() else ref))
        except MobilityError as e:
            raise f.err(f"scenarios[{i}]", str(e)) from None
        if window:
            w = {k: float(v) for k, v in window.items() if v != "empty"}
            begin = w.get("begin_s", sc.begin_s)
            end = None if window.get("end_s") == "empty" else w.get("end_s", sc.end_s)
            warm = w.get("warmup_s", sc.warmup_s)
            if end is not None and (end <= begin or begin + warm >= end):  # None: until the network is empty
                raise f.err("window", f"scenario '{sc.name}': expected begin_s + warmup_s < end_s, got "
                                      f"{begin:g} + {warm:g} >= {end:g}")
            sc = sc.replace(warmup_s=warm).with_window(begin, end, until_empty=end is None)
        if any(s.name == sc.name for s in scenarios):
            raise f.err(f"scenarios[{i}]", f"scenario name '{sc.name}' appears twice; scenarios must have distinct names")
        scenarios.append(sc)
    return scenarios


def _spec_seeds(f: Fields, data: dict[str, Any]) -> tuple[int, ...] | int:
    """``seeds``: a list of distinct seeds, or a count (the scenario's seed and the next ones)."""
    seeds = data.get("seeds")
    if isinstance(seeds, bool) or seeds is None:
        raise f.err("seeds", "missing; expected a list of integer seeds or a count")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise f.err("seeds", f"expected a count of 1 to {MAX_SEEDS} seeds, got {seeds}")
        return seeds
    if not isinstance(seeds, list):
        raise f.err("seeds", f"expected a list of integer seeds or a count, got {seeds!r}")
    if not seeds:
        raise f.err("seeds", "expected at least one seed, got an empty list")
    if not all(is_integer(s) and 0 <= s < 2**31 for s in seeds):
        raise f.err("seeds", f"expected integers 0 <= seed < 2**31, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise f.err("seeds", f"seeds must be distinct, got {seeds!r}")
    return tuple(seeds)


def _spec_scales(f: Fields, data: dict[str, Any]) -> list[float]:
    """``demand_scales``: distinct positive factors (default ``[1.0]``)."""
    scales = data.get("demand_scales", [1.0])
    if not isinstance(scales, list) or not scales:
        raise f.err("demand_scales", f"expected a non-empty list of positive factors, got {scales!r}")
    for s in scales:
        if not is_number(s) or not (math.isfinite(s) and s > 0):
            raise f.err("demand_scales", f"expected positive numbers, got {s!r}")
    if len(set(scales)) != len(scales):
        raise f.err("demand_scales", f"factors must be distinct, got {scales!r}")
    return scales


def _spec_variants(f: Fields, path: Path, data: dict[str, Any]) -> list[Variant]:
    """``[[controllers]]`` × their parameter grids (a list value is an axis), each made once to check it."""
    ctrls = data.get("controllers")
    if not isinstance(ctrls, list) or not ctrls:
        raise f.err("controllers", "missing or empty; expected [[controllers]] tables (name, params) or a list of "
                                   "controller specs")
    variants: list[Variant] = []
    for i, c in enumerate(ctrls):
        key = f"controllers[{i}]"
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict):
            raise f.err(key, f"expected a table with name and params, or a spec string, got {c!r}")
        for k in c:
            if k not in ("name", "params"):
                raise f.err(f"{key}.{k}", "unknown field; expected name or params")
        cname = c.get("name")
        if not isinstance(cname, str) or not cname.strip():
            raise f.err(f"{key}.name", f"expected a controller name, got {cname!r}")
        grid = c.get("params", {})
        if not isinstance(grid, dict):
            raise f.err(f"{key}.params", f"expected a table of parameter = value or [values], got {grid!r}")
        try:
            base_name, spec_params = parse_spec(cname)
        except MobilityError as e:
            raise f.err(f"{key}.name", str(e)) from None
        axes: list[tuple[str, list[Any]]] = []
        for k, v in grid.items():
            values = v if isinstance(v, list) else [v]
            if not values:
                raise f.err(f"{key}.params.{k}", "expected at least one value, got an empty list")
            axes.append((k, values))
        for combo in itertools.product(*(vals for _, vals in axes)):
            params = {**spec_params, **dict(zip((k for k, _ in axes), combo))}
            try:
                ctrl = make(base_name, **params)
            except MobilityError as e:
                raise f.err(key, str(e)) from None
            variants.append(Variant(base_name, params, variant_label(ctrl.name, params)))
    _check_labels(variants, f"{path}: field 'controllers'")
    return variants


def _spec_baseline(f: Fields, data: dict[str, Any], variants: Sequence[Variant]) -> str | None:
    """``baseline``: a variant label or controller name differences are taken against."""
    baseline = data.get("baseline")
    if baseline is None:
        return None
    if not isinstance(baseline, str):
        raise f.err("baseline", f"expected a controller label, got {baseline!r}")
    from .stats import pick_baseline

    try:
        pick_baseline([v.label for v in variants], [make(v.controller, **v.params).name for v in variants], baseline)
    except ValueError as e:
        raise f.err("baseline", str(e)) from None
    return baseline


def _spec_preflight(f: Fields, path: Path, sumo_args: str, scenarios: Sequence[Scenario],
                    seed_spec: tuple[int, ...] | int) -> None:
    """The checks made before anything runs: SUMO options, each scenario's preflight, seed range."""
    from .run import preflight

    try:
        check_sumo_args(sumo_args, f"{path}: field 'sumo_args'")
    except MobilityError as e:
        raise SweepError(str(e)) from None
    for i, sc in enumerate(scenarios):
        try:
            preflight(sc)
        except MobilityError as e:
            raise f.err(f"scenarios[{i}]", str(e)) from None
        if isinstance(seed_spec, int) and sc.seed + seed_spec - 1 >= 2**31:
            raise f.err("seeds", f"a count of {seed_spec} from scenario '{sc.name}''s seed {sc.seed} goes beyond "
                                 "2**31 - 1; expected integers 0 <= seed < 2**31")


