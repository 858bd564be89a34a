"""Approach readings: the unsignalised lane chain behind a short lane in front of a stop line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mobility.network import SignalNetwork

from .conftest import _write, netconvert


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
