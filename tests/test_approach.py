"""Approach readings: the unsignalised lane chain behind a short lane in front of a stop line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mobility import run
from mobility.network import SignalNetwork
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import _write, netconvert, write_sumocfg
from .helpers import GapRecorder


@pytest.fixture(scope="module")
def short_lane_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """W —300 m→ M (priority, a side road S joins) —20 m→ C (signal) → E, and N → C.
    The lane in front of C's stop line from the west is a 20 m piece of a 320 m approach."""
    d = tmp_path_factory.mktemp("short")
    _write(d / "n.nod.xml", """
        <nodes>
          <node id="W" x="-320" y="0"/> <node id="M" x="-20" y="0" type="priority"/>
          <node id="S" x="-20" y="-300"/> <node id="C" x="0" y="0" type="traffic_light"/>
          <node id="E" x="300" y="0"/> <node id="N" x="0" y="300"/> <node id="X" x="0" y="-300"/>
        </nodes>""")
    _write(d / "n.edg.xml", """
        <edges>
          <edge id="W_M" from="W" to="M" numLanes="1" speed="13.89"/>
          <edge id="S_M" from="S" to="M" numLanes="1" speed="13.89"/>
          <edge id="M_C" from="M" to="C" numLanes="2" speed="13.89"/>
          <edge id="C_E" from="C" to="E" numLanes="1" speed="13.89"/>
          <edge id="N_C" from="N" to="C" numLanes="1" speed="13.89"/>
          <edge id="C_X" from="C" to="X" numLanes="1" speed="13.89"/>
        </edges>""")
    out = d / "n.net.xml"
    subprocess.run([netconvert(), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml"), "--no-turnarounds", "true",
                    "--no-internal-links", "false", "-o", str(out)], check=True, capture_output=True)
    return out


def test_the_approach_reaches_back_through_unsignalised_lanes(short_lane_net: Path) -> None:
    net = SignalNetwork.load(short_lane_net)
    lane = "M_C_0"
    assert net.lane_length(lane) < 20.0
    w = net.approach(lane, 100.0)
    assert set(w) <= {"W_M_0", "S_M_0"} and w
    for up, x in w.items():
        n = len({to for _v, to, _t in net.lanes[up].successors})  # it feeds both lanes of M_C (or one)
        assert x == pytest.approx((1.0 / n) * (100.0 - net.lane_length(lane)) / net.lane_length(up))
    assert net.approach(lane, net.lane_length(lane)) == {}  # the lane alone is long enough
    # a signal-controlled connection ends the chain: C's exit lanes are not on N_C's approach
    assert net.approach("N_C_0", 1000.0) == {}


def test_detectors_behind_a_short_lane_go_on_the_lanes_feeding_it(short_lane_net: Path) -> None:
    """A loop 30 m before C's stop line from the west lies on W_M / S_M, not at the start of the
    short M_C lane; a lane long enough keeps its own loop; a chain that ends (network boundary) puts
    its loop at the start of its last lane."""
    net = SignalNetwork.load(short_lane_net)
    short = net.lane_length("M_C_0")
    sites = net.detector_sites("M_C_0", 30.0)
    assert sites and {lane for lane, _ in sites} <= {"W_M_0", "S_M_0"}
    for lane, pos in sites:
        assert pos == pytest.approx(net.lane_length(lane) - (30.0 - short), abs=1e-3)
    assert net.detector_sites("N_C_0", 30.0) == [("N_C_0", pytest.approx(net.lane_length("N_C_0") - 30.0, abs=1e-3))]
    assert net.detector_sites("M_C_0", short) == [("M_C_0", 0.0)]
    assert sorted(net.detector_sites("M_C_0", 5000.0)) == sorted((lane, 0.0) for lane, _ in sites)


@pytest.mark.sumo
def test_a_loop_behind_a_short_lane_sees_the_vehicle_where_it_is_placed(short_lane_net: Path, tmp_path: Path) -> None:
    """One vehicle W→E at 13.89 m/s from the start of W_M, detectors 100 m before C's stop line:
    the loop lies on W_M, so the west lanes' gap drops to 0 when the vehicle is 100 m from the
    stop line, about 6 s before it enters the short lane (a loop at the start of the short lane,
    where it used to be, saw it only then)."""
    net = SignalNetwork.load(short_lane_net)
    shutil.copy(short_lane_net, tmp_path / short_lane_net.name)
    routes = ('<routes><vType id="c" sigma="0"/><vehicle id="v" type="c" depart="0" departSpeed="max">'
              '<route edges="W_M M_C C_E"/></vehicle></routes>')
    sc = from_sumocfg(write_sumocfg(tmp_path, tmp_path / short_lane_net.name, routes, end=60)).replace(
        zones=ZoneSpec(400, 400))

    c = GapRecorder(detector_distance_m=100)
    run(sc, c, seed=1)
    west = [net.junctions["C"].incoming_lanes.index(lane) for lane in ("M_C_0", "M_C_1")
            if lane in net.junctions["C"].incoming_lanes]
    assert west
    seen = [t for t, g in c.gaps if g[west].min() < 1.0]
    speed = 13.89
    at_100m = (net.lane_length("W_M_0") + net.lane_length("M_C_0") - 100.0) / speed
    enters_short = net.lane_length("W_M_0") / speed
    assert seen and abs(seen[0] - at_100m) <= 1.5 and seen[0] < enters_short - 4.0


def test_stop_line_detectors_stay_on_the_short_lane(short_lane_net: Path, tmp_path: Path) -> None:
    """cycle-adaptive measures the degree of saturation at the stop line (SCATS): its loop on the
    short lane goes at the lane's start, not on the lanes feeding it; actuated's goes upstream."""
    import xml.etree.ElementTree as ET

    from mobility import load_scenario
    from mobility.controllers import make
    from mobility.sim import place_detectors

    net = SignalNetwork.load(short_lane_net)
    assert net.lane_length("M_C_0") < 30.0
    sc = load_scenario("corridor")
    for spec, expect in (("cycle-adaptive(detector_distance_m=30)", [("M_C_0", 0.0)]),
                         ("actuated(detector_distance_m=30)", net.detector_sites("M_C_0", 30.0))):
        d = tmp_path / spec.split("(")[0]
        d.mkdir()
        loops = place_detectors(make(spec), net, ["C"], sc, d, ["sumo", "-n", "x"])
        at = {e.get("id"): (e.get("lane"), float(e.get("pos"))) for e in
              ET.parse(d / "mobility_detectors.add.xml").getroot().iter("inductionLoop")}
        assert sorted(at[i] for i in loops["M_C_0"]) == sorted(expect)
    assert all(lane != "M_C_0" for lane, _ in net.detector_sites("M_C_0", 30.0))
