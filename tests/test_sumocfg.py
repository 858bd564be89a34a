"""Any ``.sumocfg`` as it is: no end time (run until the network is empty), its own options and its own
outputs (written into the run's work directory, never beside read-only inputs). Real SUMO runs."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility.cli import main
from mobility.controllers import make
from mobility.errors import ScenarioError
from mobility.experiments.run import run
from mobility.metrics import UNATTRIBUTED
from mobility.scenario import UNTIL_EMPTY_CAP_S, load_scenario
from mobility.scenario import sumo_command
from mobility.sim import simulate

from .conftest import ROOT, SHARED

NET = ROOT / "networks" / "corridor" / "corridor.net.xml"
REAL = SHARED / "scenarios" / "real"

#: 12 vehicles along and across the corridor, the last departing at 300 s
ROUTES = """<routes>
  <vType id="car" emissionClass="HBEFA4/PC_petrol_Euro-6ab"/>
  {vehicles}
</routes>
"""


def _model(d: Path, *, end: str | None = None, outputs: bool = False) -> Path:
    """A small SUMO model in ``d``: the corridor network (by absolute path), 12 vehicles, no end unless
    ``end``; ``outputs``: a tripinfo output in the configuration and detectors in an additional file,
    both as relative paths (SUMO would write them into ``d``)."""
    d.mkdir(parents=True, exist_ok=True)
    od = (("W_J1", "J6_E"), ("E_J6", "J1_W"), ("N3_J3", "J3_S3"))
    vehicles = "\n  ".join(f'<trip id="v{i}" type="car" from="{od[i % 3][0]}" to="{od[i % 3][1]}" depart="{25 * (i + 1)}"/>'
                           for i in range(12))
    (d / "demand.rou.xml").write_text(ROUTES.format(vehicles=vehicles))
    adds = ""
    if outputs:
        (d / "det.add.xml").write_text(
            '<additional>\n  <edgeData id="ed" period="60" file="out/edges.xml"/>\n'
            '  <inductionLoop id="l1" lane="J3_J4_0" pos="20" period="60" file="loops.xml"/>\n</additional>\n')
        adds = '<additional-files value="det.add.xml"/>'
    time = f'<time><end value="{end}"/></time>' if end else ""
    out = ('<output><tripinfo-output value="trips.xml"/><tripinfo-output.write-unfinished value="true"/></output>'
           '<emissions><device.emissions.probability value="1"/></emissions>') if outputs else ""
    (d / "m.sumocfg").write_text(
        f'<configuration><input><net-file value="{NET}"/><route-files value="demand.rou.xml"/>{adds}</input>'
        f'{time}{out}<processing><time-to-teleport value="-1"/></processing></configuration>\n')
    return d / "m.sumocfg"


def test_no_end_is_explicit(tmp_path: Path) -> None:
    sc = load_scenario(_model(tmp_path / "m"))
    assert sc.end_s is None and sc.until_empty and sc.periods == ()
    assert sc.stop_s == sc.begin_s + UNTIL_EMPTY_CAP_S
    with pytest.raises(ScenarioError, match="needs a fixed end time"):
        sc.fixed_end_s("the annual tonnage")
    fixed = sc.with_window(end_s=200.0)
    assert fixed.end_s == 200.0 and fixed.stop_s == 200.0 and fixed.periods[0].end_s == 200.0
    assert fixed.with_window(until_empty=True, cap_s=50.0).stop_s == 50.0
    with pytest.raises(ScenarioError, match="end: expected a time after begin"):
        sc.with_window(begin_s=300.0, end_s=100.0)


def test_runs_until_the_network_is_empty_and_conserves_co2(tmp_path: Path) -> None:
    """No end time: the run stops when the last vehicle arrives (at the end of the step of SUMO's last
    arrival, where SUMO alone says "Simulation ended at time: 614.00" for this model), every vehicle is
    counted, and the CO2 total equals SUMO's own emission device."""
    cfg = _model(tmp_path / "m", outputs=True)
    sc = load_scenario(cfg)
    wd = tmp_path / "wd"
    wd.mkdir()
    out = simulate(sc, make("static"), 1, wd)
    trips = ET.parse(wd / "outputs" / "trips.xml").getroot()
    infos = trips.findall("tripinfo")
    assert len(infos) == 12 and all(float(t.get("arrival")) > 0 for t in infos)  # all arrived, none unfinished
    last_arrival = max(float(t.get("arrival")) for t in infos)
    n = out.network
    assert n["sim_end_s"] == pytest.approx(last_arrival + sc.step_length_s) == 614.0
    assert n["stopped_at_cap"] == 0.0 and n["vehicles_running_at_end"] == 0 and n["insertion_backlog_veh"] == 0
    assert n["vehicles_arrived"] == 12
    sumo_co2_kg = sum(float(e.get("CO2_abs")) for e in trips.iter("emissions")) / 1e6
    assert n["co2_kg"] == pytest.approx(sumo_co2_kg, rel=0.005)
    j = out.junctions
    assert j["co2_kg"].sum() == pytest.approx(n["co2_kg"], rel=1e-9)
    assert set(j["junction_id"]) >= {"J3", UNATTRIBUTED}


def test_cap_stops_and_flags_a_run_that_does_not_empty(tmp_path: Path) -> None:
    sc = load_scenario(_model(tmp_path / "m")).with_window(until_empty=True, cap_s=100.0)
    res = run(sc, "static", 1)
    r, n = res.runs.iloc[0], res.network.iloc[0]
    assert r["end_s"] == 100.0 and n["stopped_at_cap"] == 1.0
    assert r["gridlock"] and "safety cap" in r["gridlock_reason"]
    assert n["vehicles_running_at_end"] + n["insertion_backlog_veh"] > 0


def test_outputs_go_to_the_work_directory_not_beside_read_only_inputs(tmp_path: Path) -> None:
    """The configuration's tripinfo output and the detectors' files of its additional file are
    relative paths: SUMO alone would write them into the model folder. Every run writes them into its
    work directory instead (root ignores permissions, so the folder's listing is what is checked)."""
    d = tmp_path / "model"
    cfg = _model(d, end="700", outputs=True)
    (d / "out").mkdir()
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    for p in (d, d / "out", *d.iterdir()):
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        sc = load_scenario(cfg)
        wd = tmp_path / "wd"
        wd.mkdir()
        cmd = sumo_command(sc, 1, wd)
        assert cmd[cmd.index("--tripinfo-output") + 1] == str(wd / "outputs" / "trips.xml")
        out = simulate(sc, make("static"), 1, wd)
        assert sorted(p.relative_to(d) for p in d.rglob("*")) == before  # nothing written beside the inputs
        edges = ET.parse(wd / "outputs" / "edges.xml").getroot()
        loops = ET.parse(wd / "outputs" / "loops.xml").getroot()
        trips = ET.parse(wd / "outputs" / "trips.xml").getroot()
        # the outputs are the run's: 4 eastbound vehicles pass the loop on J3_J4, all 12 trips are there
        assert sum(int(i.get("nVehEntered")) for i in loops.iter("interval")) == 4
        assert len(trips.findall("tripinfo")) == 12
        entered = sum(float(e.get("entered", 0)) for e in edges.iter("edge") if e.get("id") == "J3_J4")
        assert entered == 4
        assert out.network["sim_end_s"] == 700.0
    finally:
        for p in (d, d / "out", *d.iterdir()):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_configuration_options_are_not_overridden(tmp_path: Path) -> None:
    """step-length and the rest come from the configuration: the command gives none of its own."""
    cfg = _model(tmp_path / "m", end="0:01:00")  # 60 s in SUMO's H:MM:SS format
    text = cfg.read_text().replace("<processing>", '<processing><step-length value="0.5"/>'
                                   '<default.action-step-length value="1"/>')
    cfg.write_text(text)
    sc = load_scenario(cfg)
    assert (sc.end_s, sc.step_length_s) == (60.0, 0.5)
    cmd = sumo_command(sc, 1, tmp_path)
    for opt in ("--step-length", "--time-to-teleport", "--default.action-step-length", "-a", "-n", "-r"):
        assert opt not in cmd
    assert cmd[cmd.index("--end") + 1] == "60.0"


def test_cli_begin_end_override(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _model(tmp_path / "m")
    assert main(["run", str(cfg), "--end", "150", "--out", str(tmp_path / "o")]) == 0
    import pandas as pd

    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert runs["end_s"].iloc[0] == 150.0
    assert main(["run", str(cfg), "--end", "soon"]) == 2
    assert "--end: expected seconds or 'empty'" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL / "berlin-doerpfeldstr").exists(), reason="../shared/scenarios/real not present")
@pytest.mark.parametrize("model", ["berlin-doerpfeldstr", "hamburg-tavf"])
def test_real_models_run_from_read_only_folders(model: str) -> None:
    """Trams, bicycles, pedestrians, parking and bus stops: the real models run as they are (a short
    window), counting vehicles at their signals, and write nothing into their read-only folders."""
    d = REAL / model
    before = sorted(p.name for p in d.iterdir())
    sc = load_scenario(d / "scenario.sumocfg")
    assert sc.name == model
    sc = sc.with_window(end_s=sc.begin_s + 300.0)
    res = run(sc, "static", sc.seed)
    j = res.junctions.set_index("junction_id")
    assert res.runs["status"].iloc[0] == "ok"
    assert j.drop(UNATTRIBUTED)["vehicles"].sum() > 20
    assert res.network["co2_kg"].iloc[0] > 0
    assert sorted(p.name for p in d.iterdir()) == before


def test_sumo_synonyms_and_bad_options(tmp_path: Path) -> None:
    """SUMO's short option names are read like the long ones; bad values are one-line errors."""
    d = tmp_path / "m"
    _model(d)
    (d / "short.sumocfg").write_text(f'<configuration><n value="{NET}"/><r value="demand.rou.xml"/>'
                                     '<b value="10"/><e value="0:10:00"/></configuration>')
    sc = load_scenario(d / "short.sumocfg")
    assert (sc.net_file, sc.route_files, sc.begin_s, sc.end_s) == (NET, (d / "demand.rou.xml",), 10.0, 600.0)
    for body, message in ((f'<n value="{NET}"/><end value="soon"/>', "option 'end': expected seconds"),
                          (f'<n value="{NET}"/><begin value="100"/><end value="50"/>', "option 'end': expected a time after"),
                          ('<r value="demand.rou.xml"/>', "option 'net-file' missing"),
                          (f'<n value="{NET}"/><seed value="x"/>', "option 'seed': expected an integer")):
        (d / "bad.sumocfg").write_text(f"<configuration>{body}</configuration>")
        with pytest.raises(ScenarioError, match=message):
            load_scenario(d / "bad.sumocfg")


def test_sweep_window_can_drop_the_end(tmp_path: Path) -> None:
    from mobility.experiments.spec import load_spec

    cfg = _model(tmp_path / "m", end="600")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'name = "s"\nscenarios = ["{cfg}"]\nseeds = 1\n[window]\nend_s = "empty"\n'
                    '[[controllers]]\nname = "static"\n')
    sc = load_spec(spec).scenarios[0]
    assert sc.end_s is None and sc.periods == () and sc.stop_s == UNTIL_EMPTY_CAP_S
    spec.write_text(spec.read_text().replace('"empty"', "300"))
    sc = load_spec(spec).scenarios[0]
    assert sc.end_s == 300.0 and sc.periods[0].end_s == 300.0
    # a fixed window's content hash does not depend on the (unused) cap
    assert sc.content_hash() == sc.replace(cap_s=5.0).content_hash()
    assert sc.with_window(until_empty=True).content_hash() != sc.with_window(until_empty=True, cap_s=5.0).content_hash()


def test_an_output_given_for_the_run_wins(tmp_path: Path) -> None:
    """--sumo-args naming the configuration's output (under any SUMO name) replaces it, once."""
    cfg = _model(tmp_path / "m", end="600", outputs=True)
    sc = load_scenario(cfg)
    for name in ("--tripinfo-output", "--tripinfo"):
        cmd = sumo_command(sc, 1, tmp_path, extra_args=[name, str(tmp_path / "mine.xml")])
        assert sum(a in ("--tripinfo-output", "--tripinfo") for a in cmd) == 1
        assert cmd[cmd.index(name) + 1] == str(tmp_path / "mine.xml")


def test_no_end_waits_for_vehicles_not_yet_loaded(tmp_path: Path) -> None:
    """The first departure 1,000 s after the begin (beyond SUMO's 200 s route look-ahead): the
    network is empty at the start, but vehicles are still to be loaded, so the run goes on."""
    import re

    cfg = _model(tmp_path / "m")
    routes = cfg.parent / "demand.rou.xml"
    routes.write_text(re.sub(r'depart="(\d+)"', lambda m: f'depart="{int(m.group(1)) + 1000}"', routes.read_text()))
    wd = tmp_path / "wd"
    wd.mkdir()
    n = simulate(load_scenario(cfg), make("static"), 1, wd).network
    assert n["vehicles_arrived"] == 12 and n["sim_end_s"] > 1300 and n["stopped_at_cap"] == 0.0


def test_a_report_option_given_for_the_run_wins(tmp_path: Path) -> None:
    """Runs are quiet (no step log, no warnings), but ``--no-warnings false`` (or ``-W false``) given for
    a run replaces the quiet default instead of making SUMO refuse the option twice: with teleporting
    after 5 s of waiting, SUMO's log names where each vehicle teleported."""
    cfg = _model(tmp_path / "m", end="600")
    sc = load_scenario(cfg)
    for name in ("--no-warnings", "-W"):
        cmd = sumo_command(sc, 1, tmp_path, extra_args=[name, "false"])
        assert sum(a in ("--no-warnings", "-W", "--suppress-warnings") for a in cmd) == 1
        assert cmd[cmd.index(name) + 1] == "false"
    log = tmp_path / "sumo.log"
    wd = tmp_path / "wd"
    wd.mkdir()
    out = simulate(sc, make("static"), 1, wd,
                   sumo_args=["--no-warnings", "false", "--time-to-teleport", "5", "--log", str(log)])
    jumps = [line for line in log.read_text().splitlines() if "Teleporting vehicle" in line]
    assert jumps and len(jumps) == out.network["teleports"]
