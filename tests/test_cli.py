"""Bad input: one line on stderr naming the file/field/id, exit status 2, no traceback, nothing in --out."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import ROOT


def mobility(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mobility.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


def bad_toml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "bad.toml"
    net = (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix()
    p.write_text(body.replace("NET", net))
    return p


VALID = '''network = "NET"
end_s = 600
[[flows]]
from = "W_J1"
to = "J6_E"
vph = 300
'''

CASES = {
    "missing file": (lambda t: ["run", str(t / "nope.toml")], "nope.toml: no such file"),
    "malformed toml": (lambda t: ["run", str(bad_toml(t, "network = [unclosed"))], "bad.toml: malformed TOML"),
    "malformed xml": (lambda t: ["run", str(_write(t / "x.sumocfg", "<configuration><input>"))], "x.sumocfg: malformed XML"),
    "negative duration": (lambda t: ["run", str(bad_toml(t, VALID.replace("end_s = 600", "end_s = 600\nwarmup_s = -5")))],
                          "field 'warmup_s': expected a duration in seconds >= 0, got -5"),
    "end before begin": (lambda t: ["run", str(bad_toml(t, VALID.replace("end_s = 600", "end_s = 0")))],
                         "field 'end_s'"),
    "unknown edge": (lambda t: ["run", str(bad_toml(t, VALID.replace('"W_J1"', '"nowhere"')))],
                     "field 'flows[0].from': edge 'nowhere' is not in corridor.net.xml"),
    "unknown junction": (lambda t: ["run", str(bad_toml(t, 'junctions = ["J9"]\n' + VALID))],
                         "field 'junctions': 'J9' is not a signalised junction"),
    "negative flow": (lambda t: ["run", str(bad_toml(t, VALID.replace("vph = 300", "vph = -300")))],
                      "field 'flows[0].vph': expected non-negative vehicles/hour, got -300"),
    "shares": (lambda t: ["run", str(bad_toml(t, VALID + '[[vehicle_types]]\nid = "a"\nshare = 0.5\n'))],
               "shares summing to 1"),
    "unknown field": (lambda t: ["run", str(bad_toml(t, VALID.replace("end_s", "ned_s = 1\nend_s")))],
                      "field 'ned_s': unknown field"),
    "unknown controller": (lambda t: ["run", "corridor", "--controller", "nosuch"],
                           "unknown controller 'nosuch'; known: "),
    "bad controller param": (lambda t: ["compare", "corridor", "--controllers", "static,sumo-actuated(max_gap_s=-1)"],
                             "controller 'sumo-actuated': parameter 'max_gap_s': expected a positive number"),
}


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    make_args, expected = CASES[case]
    out = tmp_path / "out"
    proc = mobility(*make_args(tmp_path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in lines[0]
    assert not out.exists()


def test_controllers_lists_builtins() -> None:
    """Every registered controller is listed with its own description: one that fails to load is
    listed as "(cannot load: ...)" and fails this test."""
    from mobility.controllers import BUILTIN, load_class

    proc = mobility("controllers")
    assert proc.returncode == 0
    listed = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert set(BUILTIN) <= set(listed)
    for name in BUILTIN:
        assert listed[name].strip() == load_class(name).description, listed[name]


def docstring_example() -> str:
    """The ``LongestQueue`` example of :mod:`mobility.controllers.base`'s docstring (the literal block
    after its ``Example ...::`` line), dedented, with the imports it needs: the check below runs the
    documented example itself, so the docstring and the test cannot drift apart."""
    import mobility.controllers.base as base

    doc = base.__doc__ or ""
    m = re.search(r"^Example\b.*::\n\n((?:(?: {4}.*)?\n)+)", doc, flags=re.MULTILINE)
    assert m, "mobility/controllers/base.py's docstring has no 'Example ...::' literal block"
    code = textwrap.dedent(m.group(1))
    assert "class LongestQueue(Controller):" in code, code
    return "from mobility.controllers import Controller, GreenPhase\n\n\n" + code


NO_YELLOW = """

class NoYellow(LongestQueue):
    def safety(self):
        from mobility.controllers import Safety

        return Safety(yellow_s=0.0)
"""


def test_check_command(tmp_path: Path) -> None:
    """``mobility check MODULE:Class`` from the module's directory: 0 and "ok" for a conforming
    controller (the docstring example of the controller contract), 1 and the broken rule for an
    unsafe one, 2 and one line for one that does not load."""
    (tmp_path / "my_ctl.py").write_text(docstring_example() + NO_YELLOW)
    ok = mobility("check", "my_ctl:LongestQueue", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "my_ctl:LongestQueue: ok (my_ctl:LongestQueue keeps the controller contract)"
    bad = mobility("check", "my_ctl:NoYellow", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stdout == ""
    assert "safety() asks for a 0 s yellow; unsafe below 3 s" in bad.stderr
    missing = mobility("check", "my_ctl:Nothing", cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "cannot load 'my_ctl:Nothing'" in missing.stderr


@pytest.mark.sumo
def test_run_writes_results_and_passes_sumo_args(tmp_path: Path) -> None:
    spec = bad_toml(tmp_path, VALID.replace("end_s = 600", "end_s = 300"))
    out, trips = tmp_path / "out", tmp_path / "trips.xml"
    proc = mobility("run", str(spec), "--controller", "static", "--seed", "3", "--out", str(out),
                    "--sumo-args", f"--tripinfo-output {trips}")
    assert proc.returncode == 0, proc.stderr
    assert trips.exists()
    import pandas as pd

    j = pd.read_csv(out / "junctions.csv")
    assert {"scenario", "controller", "seed", "junction_id", "vehicles", "delay_s_per_veh", "stops_per_veh",
            "co2_kg"} <= set(j.columns)
    runs = pd.read_parquet(out / "runs.parquet")
    assert runs.loc[0, "seed"] == 3 and runs.loc[0, "sumo_version"] == "1.28.0"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.{e}" for n in ("junctions", "network", "runs", "approaches", "movements") for e in ("csv", "parquet")] + ["kinematics.parquet"])
    kin = pd.read_parquet(out / "kinematics.parquet")
    assert kin["veh_steps"].sum() >= j["veh_s"].sum()  # every counted vehicle-step, plus arrival steps
