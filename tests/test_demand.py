"""Demand per movement, measured from routes: TOML flows and the route forms of a .sumocfg."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mobility import load_scenario
from mobility.inputs.demand import estimate_demand
from mobility.errors import ScenarioError
from mobility.network import SignalNetwork
from mobility.scenario import from_sumocfg

from .conftest import resco_map, write_sumocfg


def _links(net: SignalNetwork, jid: str, e_in: str, e_out: str) -> list[int]:
    """Positions (in ``junction.links``) of the links from edge ``e_in`` to edge ``e_out``."""
    return [k for k, lk in enumerate(net.junctions[jid].links)
            if net.lanes[lk.in_lane].edge == e_in and net.lanes[lk.out_lane].edge == e_out]


def test_corridor_volumes_equal_the_flows_through_each_movement(tmp_path: Path) -> None:
    sc = load_scenario("corridor")
    net = SignalNetwork.load(sc.net_file)
    d = estimate_demand(sc, net, tmp_path)
    assert d.periods == sc.periods
    assert set(d.link_vph) == {"J1", "J2", "J3", "J4", "J5", "J6"}
    assert d.link_vph["J1"].shape == (3, len(net.junctions["J1"].links))

    # eastbound through at J1: every flow entering at W that leaves beyond J1
    through = _links(net, "J1", "W_J1_bay", "J1_J2")
    assert len(through) == 2  # two through lanes share the movement
    expected = sum(np.array(f.vph) for f in sc.flows if f.origin == "W_J1" and not f.destination.startswith("J1_"))
    assert expected[1] == 1120  # 700 through + turns at J2..J6 (the scenario's own comment: ~1,200 veh/h)
    np.testing.assert_allclose(d.link_vph["J1"][:, through].sum(axis=1), expected, rtol=0.02)
    np.testing.assert_allclose(d.link_vph["J1"][:, through[0]], expected / 2, rtol=0.02)
    # a turn: southbound left from N1 onto the arterial towards the centre (60 veh/h in the peak)
    left = _links(net, "J1", "N1_J1", "J1_J2")
    assert d.movement_vph("J1", 1)[left].sum() == pytest.approx(60.0)
    # at J6 the eastbound through carries only what goes on to E
    expected_j6 = sum(np.array(f.vph) for f in sc.flows if f.destination == "J6_E" and not f.origin.endswith("J6"))
    got = d.link_vph["J6"][:, _links(net, "J6", "J5_J6_bay", "J6_E")].sum(axis=1)
    np.testing.assert_allclose(got, expected_j6, rtol=0.02)
    assert d.period_at(0.0) == 0 and d.period_at(900.0) == 1 and d.period_at(4500.0) is None


ROUTES = """
<routes>
  <vType id="car"/>
  <vTypeDistribution id="mix"><vType id="a" probability="1"/></vTypeDistribution>
  <route id="we" edges="W_C C_E"/>
  <routeDistribution id="half">
    <route id="we2" edges="W_C C_E" probability="1"/>
    <route id="ns2" edges="N_C C_S" probability="1"/>
  </routeDistribution>
  <!-- W->E: 6 by route id, 10 from a flow by rate (60/h over 600 s), 5 trips, 2 of 4 by distribution -->
  <!-- N->S: 4 with embedded routes, 10 from a flow by number, 2 of 4 by distribution -->
  {vehicles}
  <flow id="fwe" type="car" begin="0" end="600" vehsPerHour="60" from="W_C" to="C_E"/>
  <flow id="fns" begin="0" end="300" number="10"><route edges="N_C C_S"/></flow>
  <vehicle id="late" route="we" depart="700"/>
</routes>
"""


def _vehicles() -> str:
    out = [f'<vehicle id="r{i}" type="car" route="we" depart="{10 * i}"/>' for i in range(6)]
    out += [f'<vehicle id="e{i}" depart="{20 * i}"><route edges="N_C C_S"/></vehicle>' for i in range(4)]
    out += [f'<trip id="t{i}" type="mix" depart="{30 * i}" from="W_C" to="C_E"/>' for i in range(5)]
    out += [f'<vehicle id="d{i}" route="half" depart="{40 * i}"/>' for i in range(4)]
    return "\n  ".join(out)


def test_sumocfg_route_forms_are_counted(one_junction: Path, tmp_path: Path) -> None:
    shutil.copy(one_junction, tmp_path / one_junction.name)
    cfg = write_sumocfg(tmp_path, tmp_path / one_junction.name, ROUTES.replace("{vehicles}", _vehicles()), end=600)
    sc = from_sumocfg(cfg)
    net = SignalNetwork.load(sc.net_file)
    d = estimate_demand(sc, net, tmp_path / "work")
    assert len(d.periods) == 1
    we, ns = _links(net, "C", "W_C", "C_E"), _links(net, "C", "N_C", "C_S")
    q = d.movement_vph("C", 0)
    # vehicles in 600 s → per hour: × 6
    assert q[we].sum() == pytest.approx((6 + 10 + 5 + 2) * 6)
    assert q[ns].sum() == pytest.approx((4 + 10 + 2) * 6)


def test_gzipped_route_files_are_read_as_sumo_reads_them(one_junction: Path, tmp_path: Path) -> None:
    """Real models ship compressed routes (hamburg-tavf: PKW_automatic.rou.xml.gz): the demand a
    demand-based controller plans from is the same as from the uncompressed file."""
    import gzip

    shutil.copy(one_junction, tmp_path / one_junction.name)
    net = SignalNetwork.load(tmp_path / one_junction.name)
    plain = from_sumocfg(write_sumocfg(tmp_path, tmp_path / one_junction.name,
                                       ROUTES.replace("{vehicles}", _vehicles()), end=600))
    gz = tmp_path / "case.rou.xml.gz"
    gz.write_bytes(gzip.compress((tmp_path / "case.rou.xml").read_bytes()))
    cfg = tmp_path / "gz.sumocfg"
    cfg.write_text((tmp_path / "case.sumocfg").read_text().replace('value="case.rou.xml"', 'value="case.rou.xml.gz"'))
    packed = from_sumocfg(cfg)
    a = estimate_demand(plain, net, tmp_path / "a").movement_vph("C", 0)
    b = estimate_demand(packed, net, tmp_path / "b").movement_vph("C", 0)
    assert a.sum() > 0 and np.array_equal(a, b)
    bad = tmp_path / "bad.rou.xml.gz"
    bad.write_bytes(b"not gzip at all")
    cfg.write_text(cfg.read_text().replace("case.rou.xml.gz", bad.name))
    with pytest.raises(ScenarioError, match=r"bad\.rou\.xml\.gz: cannot read"):
        estimate_demand(from_sumocfg(cfg), net, tmp_path / "c")


def test_unreadable_routes_name_the_file(one_junction: Path, tmp_path: Path) -> None:
    shutil.copy(one_junction, tmp_path / one_junction.name)
    net_path = tmp_path / one_junction.name
    net = SignalNetwork.load(net_path)
    cases = {
        "broken": ("<routes><vehicle id='a'", r"broken\.rou\.xml: malformed XML"),
        "noroute": ('<routes><vehicle id="a" depart="0" route="nowhere"/></routes>',
                    r"noroute\.rou\.xml: vehicle 'a': route 'nowhere' is not defined"),
        "norate": ('<routes><flow id="f" begin="0" end="10" from="W_C" to="C_E"/></routes>',
                   r"norate\.rou\.xml: flow 'f': expected one of vehsPerHour"),
        "baddepart": ('<routes><trip id="t" depart="soon" from="W_C" to="C_E"/></routes>',
                      r"baddepart\.rou\.xml: trip 't': attribute 'depart': expected a time in seconds, got 'soon'"),
    }
    for name, (xml, message) in cases.items():
        sc = from_sumocfg(write_sumocfg(tmp_path, net_path, xml, end=600, name=name))
        with pytest.raises(ScenarioError, match=message):
            estimate_demand(sc, net, tmp_path / name)


def test_resco_ingolstadt21_demand_on_every_junction(tmp_path: Path) -> None:
    """(Its speed is measured in benchmarks, not asserted here: no wall-clock assertions in tests.)"""
    sc = load_scenario(resco_map("ingolstadt21"))
    net = SignalNetwork.load(sc.net_file)
    d = estimate_demand(sc, net, tmp_path)
    assert len(d.link_vph) == len(net.junctions)
    # ~4,300 trips in the hour, each crossing a few signals
    total = sum(float(a.sum()) for a in d.link_vph.values())
    assert 4300 < total < 4300 * 10
