"""Sweeps: spec validation, run ids, the run store, kill -9 and resume, executors (real SUMO)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mobility import compare, load_scenario
from mobility.experiments.run import Results
from mobility.experiments.stats import excluded_runs
from mobility.experiments.spec import load_spec
from mobility.experiments.store import RunStore
from mobility.experiments.sweep import compare_results

from .conftest import ROOT

TINY = '''name = "tiny"
scenarios = ["corridor"]
seeds = [1, 2]
baseline = "static"
[window]
end_s = 420
warmup_s = 120
[[controllers]]
name = "static"
[[controllers]]
name = "max-pressure"
params = { min_green_s = 5 }
'''


def spec_file(tmp_path: Path, text: str = TINY, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def mobility(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mobility.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


# ------------------------------------------------------------------------------------------
# the spec (no SUMO)


def test_grid_expands_to_variants_and_tasks(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, TINY.replace("seeds = [1, 2]", "seeds = 3\ndemand_scales = [1.0, 1.2]")
                               .replace("min_green_s = 5", "min_green_s = [5, 10], max_red_s = 90")))
    assert [v.label for v in spec.variants] == ["static", "max-pressure(min_green_s=5, max_red_s=90)",
                                                "max-pressure(min_green_s=10, max_red_s=90)"]
    tasks = spec.tasks()
    assert len(tasks) == 1 * 2 * 3 * 3  # scenarios × scales × variants × seeds
    assert len({t.run_id for t in tasks}) == len(tasks)
    assert sorted({t.seed for t in tasks}) == [1, 2, 3]  # a count: from the scenario's seed (1)
    assert all(t.scenario.end_s == 420 and t.scenario.warmup_s == 120 for t in tasks)
    # a scale factor changes the demand, hence the scenario hash and the run id; scale 1 is the scenario as is
    by_scale = {s: {t.run_id for t in tasks if t.demand_scale == s} for s in (1.0, 1.2)}
    assert not by_scale[1.0] & by_scale[1.2]
    assert tasks[0].scenario.flows[0].vph == load_scenario("corridor").flows[0].vph
    assert [t.scenario.flows[0].vph for t in tasks if t.demand_scale == 1.2][0] == tuple(
        1.2 * v for v in load_scenario("corridor").flows[0].vph)
    # time–space data: recorded on the first seed of each arm only (the corridor has a `corridor`)
    assert {(t.demand_scale, t.variant.label) for t in tasks if t.timespace} == {
        (t.demand_scale, t.variant.label) for t in tasks}
    assert all(t.seed == 1 for t in tasks if t.timespace)


def test_run_ids_are_stable_and_change_with_what_changes_results(tmp_path: Path) -> None:
    a = [t.run_id for t in load_spec(spec_file(tmp_path, name="a.toml")).tasks()]
    b = [t.run_id for t in load_spec(spec_file(tmp_path, name="b.toml")).tasks()]
    assert a == b  # same content, other file: same ids
    longer = [t.run_id for t in load_spec(spec_file(tmp_path, TINY.replace("end_s = 420", "end_s = 480"),
                                                    "c.toml")).tasks()]
    assert not set(a) & set(longer)
    with_args = [t.run_id for t in load_spec(spec_file(
        tmp_path, 'sumo_args = "--time-to-teleport 100"\n' + TINY, "d.toml")).tasks()]
    assert not set(a) & set(with_args)
    # compare() of the same scenario, controllers and seeds gives the same runs (same machinery)
    from mobility.experiments.spec import SweepSpec

    sc = load_scenario("corridor").replace(end_s=420.0, warmup_s=120.0)
    cmp = SweepSpec.for_compare(sc, ["static", "max-pressure(min_green_s=5)"], [1, 2]).tasks()
    assert [t.run_id for t in cmp] == a


BAD_SPECS = {
    "unknown controller": (TINY.replace('name = "max-pressure"', 'name = "nosuch"'),
                           "field 'controllers[1]': unknown controller 'nosuch'; known: "),
    "unknown parameter": (TINY.replace("min_green_s = 5", "min_gren_s = 5"),
                          "field 'controllers[1]': controller 'max-pressure': bad parameters: "),
    "bad parameter value": (TINY.replace("min_green_s = 5", "min_green_s = [5, -1]"),
                            "parameter 'min_green_s': expected a positive number of seconds"),
    "empty seed list": (TINY.replace("seeds = [1, 2]", "seeds = []"),
                        "field 'seeds': expected at least one seed, got an empty list"),
    "no seeds": (TINY.replace("seeds = [1, 2]\n", ""), "field 'seeds': missing"),
    "unknown field": (TINY.replace("seeds =", "sedes = 1\nseeds ="), "field 'sedes': unknown field"),
    "bad scale": (TINY.replace("seeds = [1, 2]", "seeds = [1, 2]\ndemand_scales = [0]"),
                  "field 'demand_scales': expected positive numbers, got 0"),
    "duplicate variant": (TINY + '[[controllers]]\nname = "static"\n', "controller 'static' listed twice"),
    "same run twice": (TINY + '[[controllers]]\nname = "max-pressure"\nparams = { min_green_s = 5, max_red_s = 120.0 }\n',
                       "are the same run"),
    "unknown scenario": (TINY.replace('["corridor"]', '["nowhere.toml"]'),
                         "field 'scenarios[0]': nowhere.toml: no such file"),
    "bad window": (TINY.replace("warmup_s = 120", "warmup_s = 500"), "field 'window': scenario 'corridor'"),
    "unknown baseline": (TINY.replace('baseline = "static"', 'baseline = "webster"'),
                         "field 'baseline': baseline 'webster' is not a controller"),
    "name is a path": (TINY.replace('name = "tiny"', 'name = "../../tmp/x"'),
                       "field 'name': expected a name (the default output directory is results/<name>), not a path"),
    "name is absolute": (TINY.replace('name = "tiny"', 'name = "/etc"'), "field 'name': expected a name"),
    "name is dot-dot": (TINY.replace('name = "tiny"', 'name = ".."'), "field 'name': expected a name"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    text, expected = BAD_SPECS[case]
    out = tmp_path / "out"
    proc = mobility("sweep", str(spec_file(tmp_path, text)), "--out", str(out))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in lines[0]
    assert not out.exists()


def test_unreachable_scheduler_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = mobility("sweep", str(spec_file(tmp_path)), "--out", str(out), "--executor", "dask",
                    "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler" in lines[0]
    assert not out.exists()
    proc = mobility("sweep", str(spec_file(tmp_path)), "--out", str(out), "--executor", "dask")
    assert proc.returncode == 2 and "expected --scheduler ADDRESS" in proc.stderr and not out.exists()


def test_compare_results_ignores_only_wall_times(tmp_path: Path) -> None:
    keys = {"run_id": ["a"], "scenario": ["s"], "controller": ["c"], "seed": [1]}
    runs = pd.DataFrame({**keys, "status": ["ok"], "wall_s": [1.0], "sim_wall_s": [0.5], "host": ["x"]})
    j = pd.DataFrame({**keys, "junction_id": ["J1"], "co2_kg": [1.25]})
    a = Results(j, j.drop(columns="junction_id"), runs)
    b = Results(j.copy(), j.drop(columns="junction_id"), runs.assign(wall_s=9.0, sim_wall_s=8.0, host="y"))
    assert compare_results(a, b) == []
    c = Results(j.assign(co2_kg=1.25 + 1e-12), j.drop(columns="junction_id"), runs)
    assert [d.split(":")[0] for d in compare_results(a, c)] == ["junctions"]
    d = Results(j, j.drop(columns="junction_id"), runs.assign(status="failed"))
    assert [x.split(":")[0] for x in compare_results(a, d)] == ["runs"]


def test_store_ignores_and_cleans_half_written_runs(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    task = spec.tasks()[0]
    store = RunStore(tmp_path / "out")
    # a sweep killed while writing leaves a temporary directory: not a finished run, removed later
    dead = 2**22 + 12345  # no such process
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
    tmp = store.runs_dir / f".tmp-{task.run_id}-{dead}-abcd1234"
    tmp.mkdir(parents=True)
    (tmp / "runs.parquet").write_bytes(b"partial")
    assert not store.finished(task)
    live = store.runs_dir / f".tmp-{task.run_id}-{os.getpid()}-abcd1234"  # a running sweep's: kept
    live.mkdir()
    store.prepare()
    assert not tmp.exists() and live.exists()
    # an unreadable runs file (e.g. a disk error) is not a finished run either
    store.path(task.run_id).mkdir()
    (store.path(task.run_id) / "runs.parquet").write_bytes(b"garbage")
    assert not store.finished(task)


# ------------------------------------------------------------------------------------------
# real sweeps


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sweep (2 controllers × 2 seeds), run without interruption on the local pool."""
    d = tmp_path_factory.mktemp("sweep")
    proc = mobility("sweep", str(spec_file(d)), "--out", str(d / "out"), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    return d / "out"


@pytest.mark.sumo
def test_sweep_writes_store_and_consolidated_tables(uninterrupted: Path) -> None:
    runs = pd.read_parquet(uninterrupted / "runs.parquet")
    assert list(zip(runs.variant, runs.seed)) == [("static", 1), ("static", 2), ("max-pressure(min_green_s=5)", 1),
                                                  ("max-pressure(min_green_s=5)", 2)]
    assert (runs.status == "ok").all() and set(runs.gridlock) == {False}
    assert sorted(p.name for p in (uninterrupted / "runs").iterdir()) == sorted(runs.run_id)
    j = pd.read_parquet(uninterrupted / "junctions.parquet")
    per_run = pd.concat([pd.read_parquet(uninterrupted / "runs" / r / "junctions.parquet") for r in runs.run_id],
                        ignore_index=True)
    pd.testing.assert_frame_equal(j, per_run, check_exact=True)  # consolidated = the runs, in spec order
    assert {"J1", "J6", "(unattributed)"} <= set(j.junction_id)
    for name in ("network", "runs", "corridor", "junctions"):
        assert (uninterrupted / f"{name}.csv").exists()
    ts = pd.read_parquet(uninterrupted / "timespace_signals.parquet")
    assert set(ts.seed) == {1} and set(ts.variant) == set(runs.variant)


@pytest.mark.sumo
def test_kill_9_mid_sweep_then_resume_gives_identical_tables(uninterrupted: Path, tmp_path: Path) -> None:
    spec, out = spec_file(tmp_path), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mobility.cli", "sweep", str(spec), "--out", str(out),
                             "--jobs", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs_dir = out / "runs"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if runs_dir.exists() and any(not p.name.startswith(".") for p in runs_dir.iterdir()):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = [p.name for p in runs_dir.iterdir() if not p.name.startswith(".")]
    assert 1 <= len(done) < 4
    assert not (out / "junctions.parquet").exists()  # killed before consolidation
    resumed = mobility("sweep", str(spec), "--out", str(out), "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"({0} failed, {len(done)} already in the store)" in resumed.stderr
    assert compare_results(uninterrupted, out) == []
    # the people's copies too: byte for byte (runs.csv differs only in wall times)
    for name in ("junctions", "network", "corridor"):
        assert (uninterrupted / f"{name}.csv").read_bytes() == (out / f"{name}.csv").read_bytes(), name
    # and running it again runs nothing
    again = mobility("sweep", str(spec), "--out", str(out))
    assert again.returncode == 0 and "4 already in the store), 0 remaining" in again.stderr


@pytest.mark.sumo
def test_dask_local_gives_the_same_tables_as_the_local_pool(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = mobility("sweep", str(spec_file(tmp_path)), "--out", str(out), "--executor", "dask-local", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert compare_results(uninterrupted, out) == []


@pytest.mark.sumo
def test_failed_run_is_recorded_and_does_not_stop_the_sweep(tmp_path: Path) -> None:
    text = TINY.replace('name = "max-pressure"\nparams = { min_green_s = 5 }', 'name = "tests.helpers:Crashing"')
    spec, out = spec_file(tmp_path, text.replace("seeds = [1, 2]", "seeds = [1]")), tmp_path / "out"
    proc = mobility("sweep", str(spec), "--out", str(out), "--jobs", "2")
    assert proc.returncode == 1, proc.stderr  # finished, with a failed run
    runs = pd.read_parquet(out / "runs.parquet").set_index("variant")
    assert runs.loc["static", "status"] == "ok"
    assert runs.loc["crashing", "status"] == "failed"
    assert "controller 'crashing' failed in act() at t=" in runs.loc["crashing", "error"]
    assert "1 run(s) excluded from the averages" in proc.stdout and "crashing" in proc.stdout
    assert set(pd.read_parquet(out / "junctions.parquet").variant) == {"static"}
    # kept in the store: not re-run unless asked
    again = mobility("sweep", str(spec), "--out", str(out))
    assert "(1 failed" not in again.stderr and "2 already in the store" in again.stderr
    retry = mobility("sweep", str(spec), "--out", str(out), "--retry-failed")
    assert "1 already in the store), 1 remaining" in retry.stderr and "(1 failed" in retry.stderr


CRASH = '''
import os, signal
from mobility.controllers import Controller

class Segfault(Controller):
    """Kills its own process at the first decision (as a native crash would)."""
    name = "segfault"
    description = "dies"
    decision_interval_s = 10.0

    def __init__(self):
        super().__init__()

    def act(self, observation):
        os.kill(os.getpid(), signal.SIGSEGV)
'''


@pytest.mark.sumo
def test_a_crashed_run_process_fails_only_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "crash_ctrl.py").write_text(CRASH)
    monkeypatch.syspath_prepend(str(tmp_path))  # run processes inherit sys.path (user controller modules)
    sc = load_scenario("corridor").replace(end_s=300.0, warmup_s=60.0)
    res = compare(sc, ["static", "crash_ctrl:Segfault"], seeds=[1], jobs=2)
    runs = res.runs.set_index("variant")
    assert runs.loc["static", "status"] == "ok"
    assert runs.loc["segfault", "status"] == "failed"
    assert runs.loc["segfault", "error"].startswith("the run's process killed by signal SIGSEGV")
    assert len(runs.loc["segfault", "run_id"]) == 12  # known even though the process died
    assert set(res.junctions["variant"]) == {"static"}


@pytest.mark.sumo
def test_teleports_flag_the_run_as_gridlocked_and_exclude_it() -> None:
    sc = load_scenario("corridor").replace(end_s=420.0, warmup_s=120.0)
    res = compare(sc, ["static"], seeds=[1], jobs=1, sumo_args="--time-to-teleport 5")  # 5 s at a red: teleported
    r = res.runs.iloc[0]
    assert r["status"] == "ok" and r["teleports"] > 0 and r["gridlock"]
    assert r["teleports"] == res.network.iloc[0]["teleports"]
    excl = excluded_runs(res.runs, res.network)
    assert list(excl.run_id) == [r["run_id"]] and excl.reason.iloc[0].startswith("gridlock: ")


# ------------------------------------------------------------------------------------------
# run ids cover the controller's code and class (issue 13)

USER_CTRL = '''
from mobility.controllers import Controller, GreenPhase


class Fixed(Controller):
    """Serves green phases in turn, GREEN_S seconds each."""
    name = "user-fixed"
    description = "fixed greens"
    decision_interval_s = 1.0

    def __init__(self):
        super().__init__()

    def reset(self, network, seed):
        self.n = {j: len(network.junctions[j].green_phases) for j in network.junction_ids}
        self.cur = {j: 0 for j in self.n}

    def act(self, observation):
        out = {}
        for j, o in observation.junctions.items():
            if o.green == self.cur[j] and o.time_in_phase_s >= GREEN_S:
                self.cur[j] = (self.cur[j] + 1) % self.n[j]
            out[j] = GreenPhase(self.cur[j])
        return out


GREEN_S = 40
'''

SHORT = '''network = "NET"
end_s = 400
warmup_s = 60
[[flows]]
from = "W_J1"
to = "J6_E"
vph = 600
[[flows]]
from = "N4_J4"
to = "J4_S4"
vph = 400
'''


def test_two_classes_with_one_name_and_two_backends_have_distinct_run_ids(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mobility.controllers import make
    from mobility.experiments.run import controller_code, run_id

    (tmp_path / "ctrl_a.py").write_text(USER_CTRL)
    (tmp_path / "ctrl_b.py").write_text(USER_CTRL)  # same code and name, another class
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b = make("ctrl_a:Fixed"), make("ctrl_b:Fixed")
    assert a.name == b.name and a.get_params() == b.get_params()
    assert controller_code(type(a))["class"] == "ctrl_a.Fixed"
    assert run_id("h", a, 1) != run_id("h", b, 1)
    assert run_id("h", a, 1) == run_id("h", make("ctrl_a:Fixed"), 1)
    assert run_id("h", a, 1, backend="libsumo") != run_id("h", a, 1, backend="traci")
    (tmp_path / "ctrl_a.py").write_text(USER_CTRL.replace("GREEN_S = 40", "GREEN_S = 41"))
    os.utime(tmp_path / "ctrl_a.py", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run_id("h", a, 1) != run_id("h", make("ctrl_b:Fixed"), 1)
    # a module installed from a distribution counts by its version (e.g. an entry-point controller)
    from importlib.metadata import version

    assert controller_code(pd.DataFrame)["code"]["pandas"] == f"pandas=={version('pandas')}"


@pytest.mark.sumo
def test_editing_a_controller_file_gives_new_numbers_in_the_same_out(tmp_path: Path) -> None:
    mod = tmp_path / "user_ctrl.py"
    mod.write_text(USER_CTRL)
    sc = tmp_path / "sc.toml"
    sc.write_text(SHORT.replace("NET", (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix()))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}

    def cmp(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mobility.cli", "compare", str(sc), "--controllers",
                               "user_ctrl:Fixed", "--seeds", "1", "--out", str(out), *extra],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

    first = cmp()
    assert first.returncode == 0, first.stderr
    before = pd.read_parquet(out / "network.parquet")
    again = cmp()
    assert "1 already in the store" in again.stderr
    mod.write_text(USER_CTRL.replace("GREEN_S = 40", "GREEN_S = 12"))
    edited = cmp()
    assert edited.returncode == 0, edited.stderr
    assert "already in the store" not in edited.stderr
    after = pd.read_parquet(out / "network.parquet")
    assert after.run_id[0] != before.run_id[0]
    assert after.delay_s_per_veh[0] != before.delay_s_per_veh[0]
    forced = cmp("--force")
    assert "already in the store" not in forced.stderr and "1/1 runs done" in forced.stderr


CRASH_USER = '''from mobility.controllers import Controller


def _ratio(q):
    return 1 / q  # line 5: the crash


class Crash(Controller):
    name = "user-crash"
    description = "divides by zero at the first decision"
    decision_interval_s = 10.0

    def __init__(self):
        super().__init__()

    def act(self, observation):
        return {j: _ratio(0) for j in observation.junctions}
'''


@pytest.mark.sumo
def test_a_crashing_controller_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    mod = tmp_path / "crash_user.py"
    mod.write_text(CRASH_USER)
    sc = tmp_path / "sc.toml"
    sc.write_text(SHORT.replace("NET", (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix()))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mobility.cli", "compare", str(sc), "--controllers",
                           "static,crash_user:Crash", "--seeds", "1", "--out", str(out), "--debug"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    where = f"{mod}:5"
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "ZeroDivisionError" in failed[0] and failed[0].endswith(f"({where})")
    runs = pd.read_csv(out / "runs.csv").set_index("variant")
    assert runs.loc["user-crash", "error"].endswith(f"({where})")
    tb = runs.loc["user-crash", "error_traceback"]
    assert tb.startswith("Traceback") and f'File "{mod}", line 17, in act' in tb and "line 5, in _ratio" in tb
    assert pd.isna(runs.loc["static", "error_traceback"])  # empty for an ok run
    assert f'File "{mod}", line 5' in proc.stderr  # --debug prints it whole
    # `run` raises: one line with the file and line, the traceback only with --debug
    one = subprocess.run([sys.executable, "-m", "mobility.cli", "run", str(sc), "--controller", "crash_user:Crash"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert one.returncode == 2 and one.stderr.strip().splitlines() == [
        f"mobility: error: controller 'user-crash' failed in act() at t=0: ZeroDivisionError: division by zero ({where})"]


HANG = '''import time
from mobility.controllers import Controller


class Hang(Controller):
    name = "hang"
    description = "sleeps in act()"
    decision_interval_s = 10.0

    def __init__(self):
        super().__init__()

    def act(self, observation):
        time.sleep(3600)
'''


@pytest.mark.sumo
def test_a_hanging_controller_times_out_and_the_sweep_finishes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from mobility.experiments.spec import default_run_timeout

    (tmp_path / "hang_ctrl.py").write_text(HANG)
    monkeypatch.syspath_prepend(str(tmp_path))
    sc = load_scenario("corridor").replace(end_s=300.0, warmup_s=60.0)
    assert default_run_timeout(sc) == 300 + 2 * 300
    res = compare(sc, ["static", "hang_ctrl:Hang"], seeds=[1], jobs=2, run_timeout_s=20, out=tmp_path / "out")
    runs = res.runs.set_index("variant")
    assert runs.loc["static", "status"] == "ok"
    assert runs.loc["hang", "status"] == "failed"
    assert runs.loc["hang", "error"].startswith("timed out: the run took longer than 20 s")
    assert set(res.junctions["variant"]) == {"static"}
    assert (tmp_path / "out" / "runs.parquet").exists()


@pytest.mark.sumo
def test_a_traci_py_in_the_working_directory_is_not_imported(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "mobility"
    if not exe.exists():
        pytest.skip(f"the `mobility` console script is not installed next to {sys.executable}")
    marker = tmp_path / "imported"
    for name in ("traci.py", "sumolib.py", "libsumo.py"):
        (tmp_path / name).write_text(f"open({str(marker)!r}, 'a').write({name!r})\nraise SystemExit('{name} from cwd')\n")
    sc = tmp_path / "sc.toml"
    sc.write_text(SHORT.replace("NET", (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix())
                  .replace("end_s = 400", "end_s = 200"))
    proc = subprocess.run([str(exe), "compare", str(sc), "--controllers", "static", "--backend", "traci",
                           "--jobs", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert "FAILED" not in proc.stdout and "Network total" in proc.stdout


# ------------------------------------------------------------------------------------------
# the output directory: locked, written as one unit, damaged store files redone (issue 13)


def _consistent(out: Path) -> None:
    """Every consolidated table holds exactly the runs sweep.json lists, no temporary files remain."""
    import json

    ids = json.loads((out / "sweep.json").read_text())["run_ids"]
    for name in ("junctions", "network", "runs"):
        assert list(dict.fromkeys(pd.read_parquet(out / f"{name}.parquet").run_id)) == ids, name
        assert list(dict.fromkeys(pd.read_csv(out / f"{name}.csv", dtype={"run_id": str}).run_id)) == ids, name  # 12 hex digits can be all digits
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".mobility.lock"]
    assert not [p.name for p in (out / "runs").iterdir() if p.name.startswith(".")]


@pytest.mark.sumo
def test_a_second_sweep_on_a_locked_out_gets_one_line_or_waits(uninterrupted: Path, tmp_path: Path) -> None:
    import shutil

    from mobility.experiments.store import out_lock

    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".mobility.lock"}
    spec = spec_file(tmp_path, TINY.replace("seeds = [1, 2]", "seeds = [1]"))  # another spec, runs in the store
    with out_lock(out):  # another sweep (this process) holds it
        proc = mobility("sweep", str(spec), "--out", str(out))
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"mobility: error: {out}: in use by another mobility sweep or compare (pid {os.getpid()}); wait for it "
            "to finish, pass --wait, or choose another --out"]
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".mobility.lock"}
        assert after == before  # nothing touched
        waiting = subprocess.Popen([sys.executable, "-m", "mobility.cli", "sweep", str(spec), "--out", str(out),
                                    "--wait"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = waiting.stderr.readline()
        assert f"waiting for pid {os.getpid()}" in line
        assert waiting.poll() is None
    rest, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "2 already in the store" in err
    _consistent(out)
    assert len(pd.read_parquet(out / "runs.parquet")) == 2  # the second spec's tables, whole


@pytest.mark.sumo
def test_a_truncated_parquet_in_the_store_is_redone(uninterrupted: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    rid = pd.read_parquet(out / "runs.parquet").run_id[1]
    f = out / "runs" / rid / "junctions.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    proc = mobility("sweep", str(spec_file(tmp_path)), "--out", str(out), "--retry-failed")
    assert proc.returncode == 0, proc.stderr
    assert "3 already in the store), 1 remaining" in proc.stderr
    assert compare_results(uninterrupted, out) == []
    # a damaged consolidated table: `report` says so in one line
    (out / "network.parquet").write_bytes(b"PAR1 not really")
    rep = mobility("report", str(out))
    assert rep.returncode == 2 and rep.stderr.strip().splitlines() == [
        f"mobility: error: {out / 'network.parquet'}: unreadable (" + rep.stderr.split("unreadable (", 1)[1].strip()]
    assert "expected a Parquet table written by mobility" in rep.stderr


KILL_AT_COMMIT = """
import os, signal, sys
import mobility.experiments.run as ex
from mobility.experiments.spec import load_spec
from mobility.experiments.sweep import run_sweep
real, n = os.replace, [0]
def replace(a, b):
    if str(b).startswith(sys.argv[2]) and "staging" not in str(b) and not str(b).endswith("MANIFEST.json"):
        n[0] += 1
        if n[0] > 2:  # killed after two of the final files are in place
            os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b)
os.replace = replace
run_sweep(load_spec(sys.argv[1]), out=sys.argv[2], jobs=1)
"""


@pytest.mark.sumo
def test_kill_9_during_the_final_write_leaves_consistent_tables_on_re_run(uninterrupted: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    (out / "notes.txt").write_text("mine")  # a file the tool did not write
    one_seed = spec_file(tmp_path, TINY.replace("seeds = [1, 2]", "seeds = [1]"), "one.toml")
    proc = subprocess.run([sys.executable, "-c", KILL_AT_COMMIT, str(one_seed), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the kill left 2 files of the new unit in place and the others old: mixed, and readers refuse it
    runs_in = {name: pd.read_parquet(out / f"{name}.parquet").run_id.nunique() for name in ("junctions", "network")}
    assert runs_in == {"junctions": 2, "network": 4}
    assert [p for p in out.iterdir() if p.name.startswith(".staging-")]
    rep = mobility("report", str(out))
    assert rep.returncode == 2 and "a write of its tables was interrupted" in rep.stderr
    assert len(rep.stderr.strip().splitlines()) == 1
    again = mobility("sweep", str(spec_file(tmp_path)), "--out", str(out))  # the two-seed spec
    assert again.returncode == 0, again.stderr
    _consistent(out)
    assert compare_results(uninterrupted, out) == []
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.sumo
def test_the_tool_deletes_only_files_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "corridor.csv").write_text("someone else's file\n")
    sc = tmp_path / "sc.toml"
    sc.write_text(SHORT.replace("NET", (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix())
                  .replace("end_s = 400", "end_s = 200"))
    proc = mobility("compare", str(sc), "--controllers", "static", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "corridor.csv").read_text() == "someone else's file\n"  # no corridor: not written, not deleted
    _consistent(out)


@pytest.mark.sumo
def test_the_compare_printout_flags_a_gridlocked_run_and_its_changes(tmp_path: Path) -> None:
    """Absurd demand (6000 veh/h into one lane pair for 5 min) on the bundled corridor: most vehicles
    cannot even enter; `compare` and `run` say GRIDLOCK and mark every % change computed from it."""
    sc = tmp_path / "jam.toml"
    sc.write_text(SHORT.replace("NET", (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix())
                  .replace("end_s = 400", "end_s = 300").replace("vph = 600", "vph = 6000"))
    proc = mobility("compare", str(sc), "--controllers", "static,max-pressure", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    flagged = [line for line in out if line.startswith("GRIDLOCK ")]
    assert [f.split(" seed")[0] for f in flagged] == ["GRIDLOCK static", "GRIDLOCK max-pressure"]
    assert all("could not enter the network" in f for f in flagged)
    net = [line for line in out if line.startswith("  max-pressure ") and "vehicles" in line][0]
    assert "GRIDLOCK 1/1 runs" in net and "%!)" in net
    per_junction = [line for line in out if line.startswith(("J1 ", "J2 ")) or " max-pressure " in line[:40]]
    assert any("%!)" in line for line in per_junction)
    assert any("not a valid comparison" in line for line in out)
    one = mobility("run", str(sc))
    assert one.returncode == 0 and "GRIDLOCK static seed 1:" in one.stdout


@pytest.mark.sumo
def test_two_concurrent_sweeps_on_one_out_never_mix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "mobility.cli", "sweep", str(spec_file(tmp_path)), "--out", str(out),
                              "--jobs", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = out / ".mobility.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        time.sleep(0.05)
    other = spec_file(tmp_path, TINY.replace("seeds = [1, 2]", "seeds = [3]"), "other.toml")
    second = mobility("sweep", str(other), "--out", str(out))
    assert first.poll() is None, "the first sweep ended before the second started"
    assert second.returncode == 2 and second.stderr.strip().splitlines() == [
        f"mobility: error: {out}: in use by another mobility sweep or compare (pid {first.pid}); wait for it to "
        "finish, pass --wait, or choose another --out"]
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    _consistent(out)
    assert sorted(set(pd.read_parquet(out / "runs.parquet").seed)) == [1, 2]  # the first spec's tables only
