"""Events during a run: incidents (lanes/edges closed for a while) and demand surges, from the scenario
TOML (real SUMO for the closing)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobility.experiments import run as experiment
from mobility.errors import ScenarioError
from mobility.scenario import ROOT, Incident, Surge, load_scenario, write_routes

CORRIDOR = ROOT / "scenarios" / "corridor.toml"


def _scenario(tmp: Path, extra: str, end_s: int = 900) -> Path:
    text = CORRIDOR.read_text()
    text = text.replace('network = "../networks/corridor/corridor.net.xml"',
                        f'network = "{ROOT / "networks/corridor/corridor.net.xml"}"')
    text = re.sub(r"^end_s = \d+.*$", f"end_s = {end_s}", text, count=1, flags=re.M)
    text = re.sub(r"^warmup_s = \d+.*$", "warmup_s = 0", text, count=1, flags=re.M)
    top, sep, rest = text.partition("\n[zones]")  # top-level keys must come before the first table
    path = tmp / "events.toml"
    path.write_text(top + sep + rest + "\n" + extra)
    return path


def test_events_are_parsed_and_bad_ones_are_one_line_errors(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, """
[[incidents]]
lane = "J2_J3_1"
begin_s = 300
duration_s = 240
[[surges]]
from = "W_J1"
factor = 2.0
begin_s = 100
duration_s = 200
"""))
    assert sc.incidents == (Incident(300.0, 240.0, "J2_J3_1", ""),)
    assert sc.surges == (Surge(100.0, 200.0, 2.0, "W_J1", ""),)
    assert (sc.incidents[0].end_s, sc.surges[0].end_s) == (540.0, 300.0)  # begin_s + duration_s
    assert sc.to_dict()["surges"] == [{"begin_s": 100.0, "duration_s": 200.0, "factor": 2.0, "origin": "W_J1",
                                       "destination": ""}]  # the fields (and the hash) of before the shared base
    plain = load_scenario(_scenario(tmp_path, ""))
    assert plain.content_hash() != sc.content_hash()
    for extra, msg in [
        ('[[incidents]]\nlane = "nope_0"\nbegin_s = 10\nduration_s = 5', r"incidents\[0\].lane': lane 'nope_0' is not in"),
        ('[[incidents]]\nlane = "J2_J3_1"\nedge = "J2_J3"\nbegin_s = 10\nduration_s = 5', "exactly one of lane"),
        ('[[incidents]]\nedge = "J2_J3"\nbegin_s = 10\nduration_s = 0', r"incidents\[0\].duration_s': expected"),
        ('[[incidents]]\nedge = "J2_J3"\nbegin_s = 5000\nduration_s = 5', "before the run's end_s"),
        ('[[surges]]\nfrom = "J2_J3"\nfactor = 2\nbegin_s = 10\nduration_s = 5', r"surges\[0\]': no \[\[flows\]\] from"),
        ('[[surges]]\nfactor = 2\nbegin_s = 10\nduration_s = 5\nrate = 1', r"surges\[0\].rate': unknown field"),
    ]:
        with pytest.raises(ScenarioError, match=msg):
            load_scenario(_scenario(tmp_path, extra))


def test_a_surge_multiplies_its_flows_for_its_period_only(tmp_path: Path) -> None:
    plain = load_scenario(_scenario(tmp_path, ""))
    sc = load_scenario(_scenario(tmp_path, '[[surges]]\nfrom = "W_J1"\nto = "J6_E"\nfactor = 3.0\nbegin_s = 100\n'
                                           'duration_s = 200\n'))
    base = {f.get("id"): f for f in ET.parse(write_routes(plain, tmp_path / "a.rou.xml")).getroot().iter("flow")}
    surged = [f for f in ET.parse(write_routes(sc, tmp_path / "b.rou.xml")).getroot().iter("flow")]
    rate = lambda f: float(f.get("period", "")[4:-1])  # noqa: E731 - "exp(rate)"
    main = [f for f in surged if f.get("from") == "W_J1" and f.get("to") == "J6_E"]
    # the first period (begin..end of period 0) is cut at 100 and 300: x1, x3, x1
    p0 = next(f for k, f in base.items() if k.startswith("f0_"))
    assert [(float(f.get("begin")), float(f.get("end"))) for f in main][:3] == [
        (float(p0.get("begin")), 100.0), (100.0, 300.0), (300.0, float(p0.get("end")))]
    assert [rate(f) / rate(p0) for f in main[:3]] == pytest.approx([1.0, 3.0, 1.0])
    # flows the surge does not match are written exactly as without it
    others = {f.get("id"): f.attrib for f in surged if not (f.get("from") == "W_J1" and f.get("to") == "J6_E")}
    assert others == {k: f.attrib for k, f in base.items() if k in others} and len(others) == len(base) - len(
        [k for k in base if k.startswith("f0_")])


def _on_lane(tmp: Path, sc, lane: str) -> dict[float, set[str]]:
    """Per time step, the vehicles on ``lane``, from SUMO's own raw network dump (the run's FCD output
    is mobility's own, so the test reads a separate SUMO output)."""
    out = tmp / "netstate.xml"
    experiment.run(sc, "static", 1, sumo_args=["--netstate-dump", str(out)])
    return {float(ts.get("time", "nan")): {v.get("id", "") for ln in ts.iter("lane") if ln.get("id") == lane
                                           for v in ln.iter("vehicle")}
            for ts in ET.parse(out).getroot().iter("timestep")}


def test_an_incident_closes_the_lane_for_exactly_its_duration(tmp_path: Path) -> None:
    """SUMO's own network dump on the closed lane: while it is closed no vehicle enters it (only those
    already on it at the closing are seen, driving off); vehicles enter it before, and within a minute
    after it reopens; without the incident vehicles enter it in the same window."""
    begin, dur, lane = 300, 240, "J2_J3_bay_1"  # a through lane; lane 0 also serves the through movement
    sc = load_scenario(_scenario(tmp_path, f'[[incidents]]\nlane = "{lane}"\nbegin_s = {begin}\nduration_s = {dur}\n'))

    def entered(seen: dict[float, set[str]], a: float, b: float) -> set[str]:
        before = set().union(*(v for t, v in seen.items() if t < a))
        return set().union(*(v for t, v in seen.items() if a <= t < b)) - before

    closed = _on_lane(tmp_path, sc, lane)
    assert entered(closed, begin, begin + dur) == set()
    assert len(entered(closed, 0, begin)) > 10
    assert entered(closed, begin + dur, begin + dur + 60)  # reopened at the end
    plain = _on_lane(tmp_path, load_scenario(_scenario(tmp_path, "")), lane)
    assert len(entered(plain, begin, begin + dur)) > 10  # the test can fail: the lane is used then


def test_recovery_time_definition() -> None:
    """Pure logic on a per-minute waiting series (veh·s per minute)."""
    from mobility.events import recovery

    idx = [60.0 * k for k in range(30)]
    w = pd.Series([100.0] * 10 + [900.0] * 8 + [400.0, 300.0, 200.0] + [150.0] * 9, index=idx)
    # event 600..1080 s; pre level 100 → back when W <= 1.1*100 + 60 = 170: minute 21 (1260 s)
    assert recovery(w, 600.0, 1080.0) == (1260.0 - 1080.0, True)
    assert recovery(w.where(w.index < 1080, 900.0), 600.0, 1080.0)[1] is False  # never back
    rt, ok = recovery(w, 0.0, 300.0)  # no whole minute before the event
    assert np.isnan(rt) and ok is None
    quiet = pd.Series([100.0] * 30, index=idx)
    assert recovery(quiet, 600.0, 1080.0) == (0.0, True)  # unaffected: back in the first minute


def test_a_run_with_events_reports_recovery_per_junction(tmp_path: Path) -> None:
    sc = load_scenario(_scenario(tmp_path, '[[incidents]]\nlane = "J2_J3_bay_1"\nbegin_s = 600\nduration_s = 300\n'
                                           '[[surges]]\nfrom = "W_J1"\nfactor = 2.5\nbegin_s = 900\nduration_s = 300\n',
                                 end_s=1800))
    a = experiment.run(sc, "static", 1).junctions.set_index("junction_id")
    for col in ("incident0_recovery_s", "incident0_recovered", "surge0_recovery_s", "surge0_recovered"):
        assert col in a.columns
    rows = a.drop(index="(unattributed)")
    assert rows["incident0_recovered"].notna().all()
    done = rows[rows["surge0_recovered"].astype(bool)]
    assert ((done["surge0_recovery_s"] >= 0) & (done["surge0_recovery_s"] % 60 == 0)).all()  # 60 s minutes from 0
    b = experiment.run(sc, "static", 1).junctions.set_index("junction_id")  # reproducible
    pd.testing.assert_series_equal(a["surge0_recovery_s"], b["surge0_recovery_s"])


def test_the_bundled_events_scenario_loads() -> None:
    sc = load_scenario(ROOT / "scenarios" / "corridor-events.toml")
    assert [(s.begin_s, s.end_s, s.factor) for s in sc.surges] == [(1500.0, 2100.0, 2.0)]
    assert [(i.lane, i.begin_s, i.end_s) for i in sc.incidents] == [("J2_J3_bay_1", 2700.0, 3300.0)]
    plain = load_scenario("corridor")
    assert sc.flows == plain.flows and sc.content_hash() != plain.content_hash()
