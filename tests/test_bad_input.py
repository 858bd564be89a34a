"""Bad input over every entry point: exit status 2, one line on stderr naming the file/field/id and
what was expected, no traceback, nothing written in --out; checked before anything is simulated.

Every case runs ``mobility.cli.main`` in this process (no SUMO run starts: the checks come first),
so the whole file takes seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mobility.cli import main

from .conftest import ROOT, netconvert

CORRIDOR_NET = (ROOT / "networks" / "corridor" / "corridor.net.xml").as_posix()

SCENARIO = '''network = "NET"
end_s = 600
[[flows]]
from = "W_J1"
to = "J6_E"
vph = 300
'''

SWEEP = '''name = "bad"
scenarios = ["SC"]
seeds = [1]
[[controllers]]
name = "static"
'''

TONNAGE = '''name = "t"
controllers = ["static", "max-pressure"]
seeds = 2
[[periods]]
name = "peak"
scenario = "SC"
hours_per_year = 500
'''

COUNTS = "edge,begin_s,end_s,count\nW_J1,0,900,100\n"


def write(p: Path, text: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def scenario(t: Path, body: str = SCENARIO, name: str = "sc.toml", net: str = CORRIDOR_NET) -> str:
    return str(write(t / name, body.replace("NET", net)))


def sweep(t: Path, body: str = SWEEP, sc_body: str = SCENARIO) -> str:
    scenario(t, sc_body)
    return str(write(t / "spec.toml", body.replace("SC", "sc.toml")))


def tonnage(t: Path, body: str = TONNAGE) -> str:
    scenario(t)
    return str(write(t / "year.toml", body.replace("SC", "sc.toml")))


BROKEN = "def f(:\n"

PICKY = """from mobility.controllers import Controller


class Picky(Controller):
    name = "picky"
    description = "refuses odd k"

    def __init__(self, k=2):
        if k % 2:
            raise ValueError("k must be even")
        super().__init__(k=k)

    def act(self, observation):
        return {}
"""

NOT_UTF8 = b'name = "caf\xe9"\nnetwork = "x.net.xml"\n'


@pytest.fixture(scope="module")
def no_signals(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A 3 × 3 grid without traffic lights: (net file, an edge, another edge reachable from it)."""
    import sumolib

    d = tmp_path_factory.mktemp("nosignals")
    net = d / "grid.net.xml"
    gen = Path(netconvert()).with_name("netgenerate")
    subprocess.run([str(gen), "--grid", "--grid.number", "3", "--grid.length", "100", "--no-turnarounds", "true",
                    "-o", str(net)], check=True, capture_output=True)
    edges = sumolib.net.readNet(str(net)).getEdges()
    a = edges[0]
    b = a.getOutgoing() and next(iter(a.getOutgoing()))
    return net.as_posix(), a.getID(), b.getID()


def results_dir(t: Path) -> Path:
    """A minimal, well-formed results directory (as `run --out` writes it), to be damaged by a case."""
    d = t / "res"
    d.mkdir()
    runs = pd.DataFrame([{"run_id": "r1", "scenario": "sc", "demand_scale": 1.0, "controller": "static",
                          "variant": "static", "seed": 1, "status": "ok", "error": "", "net_file": CORRIDOR_NET}])
    j = pd.DataFrame([{"run_id": "r1", "scenario": "sc", "demand_scale": 1.0, "controller": "static",
                       "variant": "static", "seed": 1, "junction_id": "J1", "vehicles": 10, "delay_s_per_veh": 5.0,
                       "stops_per_veh": 0.5, "co2_kg": 1.0}])
    n = j.drop(columns=["junction_id"])
    for name, df in (("runs", runs), ("junctions", j), ("network", n)):
        df.to_parquet(d / f"{name}.parquet", index=False)
    return d


def truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def dead_pid() -> int:
    pid = 2**22 + 4321
    while True:
        try:
            os.kill(pid, 0)
            pid += 1
        except ProcessLookupError:
            return pid


def interrupted(t: Path) -> str:
    d = results_dir(t)
    st = d / f".staging-{dead_pid()}-abcd1234"
    st.mkdir()
    (st / "MANIFEST.json").write_text(json.dumps({"files": ["runs.parquet"], "remove": []}))
    return str(d)


def report_net_not_network(t: Path) -> str:
    d = results_dir(t)
    bogus = write(t / "fake.net.xml", "this is not XML\n")
    runs = pd.read_parquet(d / "runs.parquet").assign(net_file=str(bogus))
    runs.to_parquet(d / "runs.parquet", index=False)
    pd.read_parquet(d / "junctions.parquet").to_parquet(d / "junctions.parquet")
    # two controllers, so the report draws a map of savings
    for name in ("runs", "junctions", "network"):
        df = pd.read_parquet(d / f"{name}.parquet")
        df2 = df.assign(run_id="r2", controller="max-pressure", variant="max-pressure")
        pd.concat([df, df2]).to_parquet(d / f"{name}.parquet", index=False)
    return str(d)


def reeval_dir(t: Path, damage: Callable[[Path], None]) -> str:
    d = results_dir(t)
    kin = pd.DataFrame([{"run_id": "r1", "junction_id": "J1", "vtype": "car", "emission_class": "HBEFA4/PC_petrol_Euro-6ab",
                         "speed_bin": 1, "accel_bin": 1, "veh_steps": 10, "speed_mps_mean": 5.0,
                         "accel_mps2_mean": 0.0}])
    kin.to_parquet(d / "kinematics.parquet", index=False)
    damage(d)
    return str(d)


# (argv builder, expected text in the one line). "OUT" in argv is replaced by tmp/out.
Case = tuple[Callable[[Path], list[str]], str]

CASES: dict[str, Case] = {
    # ---- run
    "run: missing scenario": (lambda t: ["run", str(t / "nope.toml"), "--out", "OUT"], "nope.toml: no such file"),
    "run: TOML not UTF-8": (lambda t: ["run", str(write(t / "x.toml", NOT_UTF8)), "--out", "OUT"],
                            "x.toml: not UTF-8 text"),
    "run: malformed TOML": (lambda t: ["run", scenario(t, "network = [unclosed"), "--out", "OUT"],
                            "sc.toml: malformed TOML"),
    "run: unknown field": (lambda t: ["run", scenario(t, "ned_s = 3\n" + SCENARIO), "--out", "OUT"],
                           "field 'ned_s': unknown field"),
    "run: negative warm-up": (lambda t: ["run", scenario(t, SCENARIO.replace("end_s = 600", "end_s = 600\nwarmup_s = -5")),
                                         "--out", "OUT"], "field 'warmup_s'"),
    "run: end before begin": (lambda t: ["run", scenario(t, SCENARIO.replace("end_s = 600", "end_s = 0")), "--out", "OUT"],
                              "field 'end_s'"),
    "run: unknown edge": (lambda t: ["run", scenario(t, SCENARIO.replace('"W_J1"', '"nowhere"')), "--out", "OUT"],
                          "field 'flows[0].from': edge 'nowhere' is not in corridor.net.xml"),
    "run: unreachable flow": (lambda t: ["run", scenario(t, SCENARIO.replace('"W_J1"', '"J6_E"').replace('"J6_E"\nvph', '"W_J1"\nvph')),
                                         "--out", "OUT"],
                              "field 'flows[0]': no route from edge 'J6_E' to edge 'W_J1'"),
    "run: unknown vehicle class": (lambda t: ["run", scenario(t, SCENARIO + '[[vehicle_types]]\nid = "car"\nshare = 1.0\n'
                                                                'vclass = "spaceship"\n'), "--out", "OUT"],
                                   "vclass 'spaceship' is not a SUMO vehicle class"),
    "run: shares": (lambda t: ["run", scenario(t, SCENARIO + '[[vehicle_types]]\nid = "a"\nshare = 0.5\n'), "--out", "OUT"],
                    "shares summing to 1"),
    "run: unknown junction": (lambda t: ["run", scenario(t, 'junctions = ["J9"]\n' + SCENARIO), "--out", "OUT"],
                              "field 'junctions': 'J9' is not a signalised junction"),
    "run: negative flow": (lambda t: ["run", scenario(t, SCENARIO.replace("vph = 300", "vph = -300")), "--out", "OUT"],
                           "field 'flows[0].vph'"),
    "run: negative seed": (lambda t: ["run", scenario(t), "--seed", "-1", "--out", "OUT"],
                           "--seed: expected an integer 0 <= seed < 2**31, got -1"),
    "run: huge seed": (lambda t: ["run", scenario(t), "--seed", str(2**40), "--out", "OUT"],
                       f"--seed: expected an integer 0 <= seed < 2**31, got {2**40}"),
    "run: seed not a number": (lambda t: ["run", scenario(t), "--seed", "one", "--out", "OUT"], "--seed"),
    "run: scenario seed negative": (lambda t: ["run", scenario(t, "seed = -3\n" + SCENARIO), "--out", "OUT"],
                                    "field 'seed': expected an integer 0 <= seed < 2**31, got -3"),
    "run: unknown controller": (lambda t: ["run", scenario(t), "--controller", "nosuch", "--out", "OUT"],
                                "unknown controller 'nosuch'; known: "),
    "run: infinite parameter": (lambda t: ["run", scenario(t), "--controller", "sumo-actuated(max_gap_s=1e999)",
                                           "--out", "OUT"],
                                "controller 'sumo-actuated': parameter 'max_gap_s': expected a finite number, got inf"),
    "run: controller module with a syntax error": (
        lambda t: ["run", scenario(t), "--controller", write(t / "broken_ctrl.py", BROKEN).stem + ":C", "--out", "OUT"],
        "controller 'broken_ctrl:C': cannot load 'broken_ctrl:C': SyntaxError"),
    "run: controller constructor raises": (
        lambda t: ["run", scenario(t), "--controller", write(t / "picky_ctrl.py", PICKY).stem + ":Picky(k=3)", "--out", "OUT"],
        "controller 'picky_ctrl:Picky': bad parameters: ValueError: k must be even"),
    "run: bad parameter syntax": (lambda t: ["run", scenario(t), "--controller", "static(x=)", "--out", "OUT"],
                                  "controller spec 'static(x=)': parameters must be param=literal"),
    "run: unknown parameter": (lambda t: ["run", scenario(t), "--controller", "max-pressure(min_gren_s=5)", "--out", "OUT"],
                               "controller 'max-pressure': bad parameters"),
    "run: negative parameter": (lambda t: ["run", scenario(t), "--controller", "sumo-actuated(max_gap_s=-1)", "--out", "OUT"],
                                "parameter 'max_gap_s'"),
    "run: --out is a file": (lambda t: ["run", scenario(t), "--out", str(write(t / "afile", "x"))],
                             "afile: exists and is not a directory"),
    "run: --out under a file": (lambda t: ["run", scenario(t), "--out", str(write(t / "afile", "x") / "out")],
                                "is not a directory; expected an output directory"),
    "run: --out cannot be created": (lambda t: ["run", scenario(t), "--out", "/proc/mobility-out"],
                                     "expected a directory you can write"),
    "compare: --out not writable": (lambda t: ["compare", scenario(t), "--out", "/proc/1/mobility-out"],
                                    "expected a directory you can write"),
    "run: missing network": (lambda t: ["run", scenario(t, net=str(t / "gone.net.xml")), "--out", "OUT"],
                             "gone.net.xml"),
    "run: network is not a network": (lambda t: ["run", scenario(t, net=str(write(t / "n.net.xml", "not xml"))),
                                                 "--out", "OUT"], "n.net.xml"),
    "run: bad sumo option": (lambda t: ["run", scenario(t), "--sumo-args", "--no-such-option 3", "--out", "OUT"],
                             "--sumo-args: '--no-such-option' is not a SUMO option"),
    "run: sumo input file missing": (lambda t: ["run", scenario(t), "--sumo-args", "--additional-files nope.add.xml",
                                                "--out", "OUT"], "--sumo-args: --additional-files nope.add.xml: no such file"),
    "run: sumo option set by mobility": (lambda t: ["run", scenario(t), "--sumo-args", "--end 200", "--out", "OUT"],
                                         "--sumo-args: --end is set by mobility from the scenario's end_s"),
    "compare: sumo seed option": (lambda t: ["compare", scenario(t), "--sumo-args=--seed 4", "--out", "OUT"],
                                  "--sumo-args: --seed is set by mobility from --seed/--seeds"),
    "run: sumo args unbalanced quote": (lambda t: ["run", scenario(t), "--sumo-args", "--tripinfo-output 'a", "--out", "OUT"],
                                        "--sumo-args"),
    "run: malformed sumocfg": (lambda t: ["run", str(write(t / "x.sumocfg", "<configuration><input>")), "--out", "OUT"],
                               "x.sumocfg: malformed XML"),
    "run: bad backend": (lambda t: ["run", scenario(t), "--backend", "carla", "--out", "OUT"], "--backend"),
    "run: not a scenario file": (lambda t: ["run", str(write(t / "x.txt", "hello")), "--out", "OUT"], "x.txt"),
    # ---- compare
    "compare: negative seed count": (lambda t: ["compare", scenario(t), "--seeds", "-1", "--out", "OUT"], "--seeds"),
    "compare: negative seed": (lambda t: ["compare", scenario(t), "--seeds", "1,-2", "--out", "OUT"],
                               "--seeds: expected integers 0 <= seed < 2**31, got -2"),
    "compare: huge seed": (lambda t: ["compare", scenario(t), "--seeds", f"1,{2**31}", "--out", "OUT"],
                           f"--seeds: expected integers 0 <= seed < 2**31, got {2**31}"),
    "compare: duplicate seeds": (lambda t: ["compare", scenario(t), "--seeds", "1,1", "--out", "OUT"],
                                 "--seeds: seeds must be distinct"),
    "compare: seeds not numbers": (lambda t: ["compare", scenario(t), "--seeds", "a,b", "--out", "OUT"], "--seeds"),
    "compare: no controllers": (lambda t: ["compare", scenario(t), "--controllers", "", "--out", "OUT"],
                                "--controllers: expected at least one controller"),
    "compare: controller twice": (lambda t: ["compare", scenario(t), "--controllers", "static,static", "--out", "OUT"],
                                  "controller 'static' listed twice"),
    "compare: infinite parameter": (lambda t: ["compare", scenario(t), "--controllers", "static,sumo-actuated(max_gap_s=1e999)",
                                               "--out", "OUT"], "parameter 'max_gap_s': expected a finite number"),
    "compare: zero jobs": (lambda t: ["compare", scenario(t), "--jobs", "0", "--out", "OUT"], "--jobs: expected at least 1"),
    "compare: negative timeout": (lambda t: ["compare", scenario(t), "--run-timeout", "-5", "--out", "OUT"],
                                  "--run-timeout: expected a number of seconds >= 0"),
    "compare: nan timeout": (lambda t: ["compare", scenario(t), "--run-timeout", "nan", "--out", "OUT"],
                             "--run-timeout: expected a number of seconds >= 0"),
    "compare: --out is a file": (lambda t: ["compare", scenario(t), "--out", str(write(t / "afile", "x"))],
                                 "afile: exists and is not a directory"),
    "compare: TOML not UTF-8": (lambda t: ["compare", str(write(t / "x.toml", NOT_UTF8)), "--out", "OUT"],
                                "x.toml: not UTF-8 text"),
    "compare: unreachable flow": (lambda t: ["compare", scenario(t, SCENARIO.replace('"J6_E"', '"E_J6"')), "--out", "OUT"],
                                  "field 'flows[0]': no route from edge 'W_J1' to edge 'E_J6' in corridor.net.xml"),
    "compare: dask without scheduler": (lambda t: ["compare", scenario(t), "--executor", "dask", "--out", "OUT"],
                                        "--executor dask: expected --scheduler"),
    "compare: bad sumo option": (lambda t: ["compare", scenario(t), "--sumo-args=--bogus", "--out", "OUT"],
                                 "--sumo-args: '--bogus' is not a SUMO option"),
    "compare: unknown vehicle class": (lambda t: ["compare", scenario(t, SCENARIO + '[[vehicle_types]]\nid = "car"\n'
                                                                       'share = 1.0\nvclass = "hovercraft"\n'),
                                                  "--out", "OUT"], "vclass 'hovercraft' is not a SUMO vehicle class"),
    "compare: huge seed count": (lambda t: ["compare", scenario(t), "--seeds", str(2**31 - 1), "--out", "OUT"],
                                 "--seeds: expected a count of 1 to 10000 seeds"),
    "compare: count beyond the seed limit": (lambda t: ["compare", scenario(t, f"seed = {2**31 - 2}\n" + SCENARIO),
                                                        "--seeds", "3", "--out", "OUT"],
                                             "--seeds: a count of 3 from the scenario's seed 2147483646 goes beyond"),
    "run: infinite end": (lambda t: ["run", scenario(t, SCENARIO.replace("end_s = 600", "end_s = inf")), "--out", "OUT"],
                          "field 'end_s'"),
    # ---- sweep
    "sweep: huge seed count": (lambda t: ["sweep", sweep(t, SWEEP.replace("seeds = [1]", f"seeds = {2**40}")), "--out", "OUT"],
                               "field 'seeds': expected a count of 1 to 10000 seeds"),
    "sweep: missing spec": (lambda t: ["sweep", str(t / "nope.toml"), "--out", "OUT"], "nope.toml: no such file"),
    "sweep: spec not UTF-8": (lambda t: ["sweep", str(write(t / "s.toml", NOT_UTF8)), "--out", "OUT"], "s.toml"),
    "sweep: name is a path": (lambda t: ["sweep", sweep(t, SWEEP.replace('"bad"', '"../escape"')), "--out", "OUT"],
                              "field 'name': expected a name"),
    "sweep: name is absolute": (lambda t: ["sweep", sweep(t, SWEEP.replace('"bad"', '"/tmp/x"')), "--out", "OUT"],
                                "field 'name': expected a name"),
    "sweep: negative seed": (lambda t: ["sweep", sweep(t, SWEEP.replace("[1]", "[-1]")), "--out", "OUT"],
                             "field 'seeds': expected integers 0 <= seed < 2**31"),
    "sweep: huge seed": (lambda t: ["sweep", sweep(t, SWEEP.replace("[1]", f"[{2**40}]")), "--out", "OUT"],
                         "field 'seeds': expected integers 0 <= seed < 2**31"),
    "sweep: nan in a grid": (lambda t: ["sweep", sweep(t, SWEEP.replace('"static"', '"max-pressure"\nparams = { min_green_s = [5, nan] }')),
                                        "--out", "OUT"], "parameter 'min_green_s': expected a finite number, got nan"),
    "sweep: inf in a grid": (lambda t: ["sweep", sweep(t, SWEEP.replace('"static"', '"sumo-actuated"\nparams = { max_gap_s = inf }')),
                                        "--out", "OUT"], "parameter 'max_gap_s': expected a finite number, got inf"),
    "sweep: nan scale": (lambda t: ["sweep", sweep(t, SWEEP.replace("seeds = [1]", "seeds = [1]\ndemand_scales = [nan]")),
                                    "--out", "OUT"], "field 'demand_scales': expected positive numbers"),
    "sweep: unknown field": (lambda t: ["sweep", sweep(t, "sedes = 1\n" + SWEEP), "--out", "OUT"],
                             "field 'sedes': unknown field"),
    "sweep: --out is a file": (lambda t: ["sweep", sweep(t), "--out", str(write(t / "afile", "x"))],
                               "afile: exists and is not a directory"),
    "sweep: unknown vehicle class": (lambda t: ["sweep", sweep(t, sc_body=SCENARIO + '[[vehicle_types]]\nid = "c"\n'
                                                                                     'share = 1.0\nvclass = "ufo"\n'),
                                                "--out", "OUT"], "vclass 'ufo' is not a SUMO vehicle class"),
    "sweep: bad sumo option": (lambda t: ["sweep", sweep(t, 'sumo_args = "--nope"\n' + SWEEP), "--out", "OUT"],
                               "'--nope' is not a SUMO option"),
    "sweep: negative timeout": (lambda t: ["sweep", sweep(t), "--run-timeout", "-1", "--out", "OUT"],
                                "--run-timeout: expected a number of seconds >= 0"),
    "sweep: scenario seed huge": (lambda t: ["sweep", sweep(t, SWEEP.replace("seeds = [1]", "seeds = 2"),
                                                            sc_body=f"seed = {2**31 - 1}\n" + SCENARIO), "--out", "OUT"],
                                  "field 'seeds'"),
    # ---- tonnage
    "tonnage: missing spec": (lambda t: ["tonnage", str(t / "nope.toml"), "--out", "OUT"], "nope.toml: no such tonnage spec"),
    "tonnage: spec not UTF-8": (lambda t: ["tonnage", str(write(t / "y.toml", NOT_UTF8)), "--out", "OUT"],
                                "y.toml: not UTF-8 text"),
    "tonnage: colliding period names": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace('"peak"', '"a b"') +
                                                                      TONNAGE[TONNAGE.index("[[periods]]"):]
                                                                      .replace('"peak"', '"a_b"')), "--out", "OUT"],
                                        "period names 'a b' and 'a_b' would share the folder periods/a_b"),
    "tonnage: huge --seeds count": (lambda t: ["tonnage", tonnage(t), "--seeds", "99999999", "--out", "OUT"],
                                    "expected a count of 1 to 10000 seeds"),
    "tonnage: huge seed count in spec": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace("seeds = 2", f"seeds = {2**40}")),
                                                    "--out", "OUT"], "field 'seeds': expected a count of 1 to 10000 seeds"),
    "tonnage: negative --seeds": (lambda t: ["tonnage", tonnage(t), "--seeds", "-2", "--out", "OUT"], "--seeds"),
    "tonnage: negative seed in list": (lambda t: ["tonnage", tonnage(t), "--seeds", "3,-1", "--out", "OUT"],
                                       "--seeds: expected integers 0 <= seed < 2**31, got -1"),
    "tonnage: negative seed in spec": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace("seeds = 2", "seeds = [1, -4]")),
                                                  "--out", "OUT"], "field 'seeds': expected integers 0 <= seed < 2**31"),
    "tonnage: huge seed in spec": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace("seeds = 2", f"seeds = [{2**40}]")),
                                              "--out", "OUT"], "field 'seeds': expected integers 0 <= seed < 2**31"),
    "tonnage: unknown controller": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace('"max-pressure"', '"nosuch"')),
                                               "--out", "OUT"], "field 'controllers[1]': unknown controller 'nosuch'"),
    "tonnage: infinite parameter": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace('"max-pressure"', '"sumo-actuated(max_gap_s=1e999)"')),
                                               "--out", "OUT"], "expected a finite number, got inf"),
    "tonnage: baseline not a controller": (lambda t: ["tonnage", tonnage(t, 'baseline = "webster"\n' + TONNAGE),
                                                      "--out", "OUT"], "field 'baseline'"),
    "tonnage: negative hours": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace("= 500", "= -500")), "--out", "OUT"],
                                "hours_per_year"),
    "tonnage: --out is a file": (lambda t: ["tonnage", tonnage(t), "--out", str(write(t / "afile", "x"))],
                                 "afile: exists and is not a directory"),
    "tonnage: period scenario missing": (lambda t: ["tonnage", tonnage(t, TONNAGE.replace('"SC"', '"gone.toml"')),
                                                    "--out", "OUT"], "field 'periods[0].scenario'"),
    # ---- report
    "report: missing directory": (lambda t: ["report", str(t / "nores")], "nores: no such directory"),
    "report: no tables": (lambda t: ["report", str(write(t / "empty" / "notes.txt", "x").parent)],
                          "junctions.parquet: missing"),
    "report: truncated runs table": (lambda t: ["report", str((lambda d: truncate(d / "runs.parquet") or d)(results_dir(t)))],
                                     "runs.parquet: unreadable"),
    "report: runs table is text": (lambda t: ["report", str((lambda d: write(d / "runs.parquet", "run_id\nr1\n") and d)(results_dir(t)))],
                                   "runs.parquet: unreadable"),
    "report: runs table without columns": (lambda t: ["report", str((lambda d: pd.DataFrame({"x": [1]}).to_parquet(
        d / "runs.parquet") or d)(results_dir(t)))], "runs.parquet: no column 'run_id'"),
    "report: sweep.json garbage": (lambda t: ["report", str((lambda d: write(d / "sweep.json", "{nope") and d)(results_dir(t)))],
                                   "sweep.json: unreadable"),
    "report: net_file not a network": (lambda t: ["report", report_net_not_network(t)], "fake.net.xml: cannot read SUMO network"),
    "report: interrupted write": (lambda t: ["report", interrupted(t)], "a write of its tables was interrupted"),
    # ---- reevaluate
    "reevaluate: missing directory": (lambda t: ["reevaluate", str(t / "nores"), "--fleet", "china-city"],
                                      "nores: no such results directory"),
    "reevaluate: truncated kinematics": (lambda t: ["reevaluate", reeval_dir(t, lambda d: truncate(d / "kinematics.parquet")),
                                                    "--fleet", "china-city", "--out", "OUT"], "kinematics.parquet: unreadable"),
    "reevaluate: kinematics without columns": (lambda t: ["reevaluate", reeval_dir(t, lambda d: pd.DataFrame({"x": [1]}).to_parquet(
        d / "kinematics.parquet")), "--fleet", "china-city", "--out", "OUT"], "kinematics.parquet: no column 'run_id'"),
    "reevaluate: unknown fleet": (lambda t: ["reevaluate", reeval_dir(t, lambda d: None), "--fleet", "martian", "--out", "OUT"],
                                  "martian"),
    "reevaluate: negative grid factor": (lambda t: ["reevaluate", reeval_dir(t, lambda d: None), "--fleet", "china-city",
                                                    "--grid-factor", "-1", "--out", "OUT"], "grid"),
    "reevaluate: nan grid factor": (lambda t: ["reevaluate", reeval_dir(t, lambda d: None), "--fleet", "china-city",
                                               "--grid-factor", "nan", "--out", "OUT"], "grid"),
    "reevaluate: interrupted write": (lambda t: ["reevaluate", interrupted(t), "--fleet", "china-city", "--out", "OUT"],
                                      "a write of its tables was interrupted"),
    "reevaluate: --out is a file": (lambda t: ["reevaluate", reeval_dir(t, lambda d: None), "--fleet", "china-city",
                                               "--out", str(write(t / "afile", "x"))], "afile: exists and is not a directory"),
    # ---- import-osm
    "import-osm: missing file": (lambda t: ["import-osm", str(t / "x.osm"), "--out", "OUT"], "x.osm: no such file"),
    "import-osm: negative density": (lambda t: ["import-osm", str(write(t / "x.osm", "<osm/>")), "--density", "-1",
                                                "--out", "OUT"], "density"),
    "import-osm: nan density": (lambda t: ["import-osm", str(write(t / "x.osm", "<osm/>")), "--density", "nan",
                                           "--out", "OUT"], "density"),
    "import-osm: negative seed": (lambda t: ["import-osm", str(write(t / "x.osm", "<osm/>")), "--seed", "-1",
                                             "--out", "OUT"], "--seed: expected an integer 0 <= seed < 2**31"),
    "import-osm: --out is a file": (lambda t: ["import-osm", str(write(t / "x.osm", "<osm/>")), "--out",
                                               str(write(t / "afile", "x"))], "afile"),
    # ---- demand-from-counts
    "counts: missing CSV": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(t / "c.csv"), "--out", "OUT"], "c.csv"),
    "counts: CSV not UTF-8": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", b"edge,\xff\n")),
                                         "--out", "OUT"], "c.csv: not a UTF-8 text file"),
    "counts: missing column": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", "edge,count\nW_J1,3\n")),
                                          "--out", "OUT"], "c.csv: missing column(s)"),
    "counts: unknown network": (lambda t: ["demand-from-counts", str(t / "nonet"), str(write(t / "c.csv", COUNTS)),
                                           "--out", "OUT"], "nonet"),
    "counts: end before begin": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", COUNTS)),
                                            "--begin", "900", "--end", "100", "--out", "OUT"], "--end 100: expected a time after --begin 900"),
    "counts: nan warm-up": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", COUNTS)),
                                       "--warmup", "nan", "--out", "OUT"], "--warmup"),
    "counts: negative seed": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", COUNTS)),
                                         "--seed", "-1", "--out", "OUT"], "--seed: expected an integer 0 <= seed < 2**31"),
    "counts: unknown edge": (lambda t: ["demand-from-counts", CORRIDOR_NET, str(write(t / "c.csv", COUNTS.replace("W_J1", "zz"))),
                                        "--out", "OUT"], "edge 'zz' is not in corridor.net.xml"),
    # ---- zones
    "zones: missing scenario": (lambda t: ["zones", str(t / "nope.toml")], "nope.toml: no such file"),
    "zones: TOML not UTF-8": (lambda t: ["zones", str(write(t / "x.toml", NOT_UTF8))], "x.toml: not UTF-8 text"),
    "zones: unknown field": (lambda t: ["zones", scenario(t, "bogus = 1\n" + SCENARIO)], "field 'bogus'"),
}

NO_SIGNALS = {
    "run: network without signals": "run",
    "compare: network without signals": "compare",
    "zones: network without signals": "zones",
}


def _check(argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = [str(out) if a == "OUT" else a for a in argv]
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("mobility"), lines[0]
    assert expected in lines[0], lines[0]
    assert not out.exists()
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert after == before, "the command wrote or changed files"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # user controller modules written by a case
    make_args, expected = CASES[case]
    _check(make_args(tmp_path), expected, tmp_path, capsys)


@pytest.mark.parametrize("case", sorted(NO_SIGNALS))
def test_network_without_signals(case: str, no_signals: tuple[str, str, str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    net, a, b = no_signals
    body = SCENARIO.replace('"W_J1"', f'"{a}"').replace('"J6_E"', f'"{b}"')
    sc = scenario(tmp_path, body, net=net)
    argv = [NO_SIGNALS[case], sc] + (["--out", "OUT"] if NO_SIGNALS[case] != "zones" else [])
    _check(argv, f"{Path(net).name}: no traffic light; expected a network with signalised junctions", tmp_path, capsys)


def test_there_are_at_least_60_cases_over_every_entry_point() -> None:
    cases = [*CASES, *NO_SIGNALS]
    assert len(cases) >= 60
    commands = {c.split(":")[0] for c in cases}
    assert commands == {"run", "compare", "sweep", "tonnage", "report", "reevaluate", "import-osm", "counts", "zones"}


def test_zones_into_a_closed_pipe_ends_quietly() -> None:
    """`mobility zones corridor | head -1`: no BrokenPipeError traceback."""
    proc = subprocess.run(f"{sys.executable} -m mobility.cli zones corridor | head -1", shell=True, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
