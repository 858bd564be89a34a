"""Scenario loading and demand generation (no SUMO run)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility.errors import ScenarioError
from mobility.scenario import bundled_scenarios, load_scenario, write_routes

from .conftest import ROOT, resco_map


def test_bundled_corridor_spec() -> None:
    sc = load_scenario("corridor")
    assert sc.name == "corridor" and sc.net_file == ROOT / "networks" / "corridor" / "corridor.net.xml"
    assert (sc.begin_s, sc.end_s, sc.warmup_s, sc.measure_begin_s) == (0, 4500, 900, 900)
    assert [p.name for p in sc.periods] == ["shoulder-0700", "peak-0715", "shoulder-0800"]
    assert sum(v.share for v in sc.vehicle_types) == pytest.approx(1.0)
    # peak direction: eastbound through heavier than westbound
    vph = {(f.origin, f.destination): f.vph for f in sc.flows}
    assert vph[("W_J1", "J6_E")][1] > 1.5 * vph[("E_J6", "J1_W")][1]
    assert set(bundled_scenarios()) >= {"corridor", "grid"}


def test_routes_have_poisson_flows_per_period(tmp_path: Path) -> None:
    sc = load_scenario("corridor")
    root = ET.parse(write_routes(sc, tmp_path / "r.rou.xml")).getroot()
    types = root.find("vTypeDistribution")
    assert {t.get("id") for t in types} == {v.id for v in sc.vehicle_types}
    flows = root.findall("flow")
    assert len(flows) == sum(1 for f in sc.flows for v in f.vph if v > 0)
    through = [f for f in flows if f.get("from") == "W_J1" and f.get("to") == "J6_E"]
    rates = sorted(float(f.get("period")[4:-1]) * 3600 for f in through)
    assert rates == pytest.approx(sorted(sc.flows[0].vph))


def test_sumocfg_is_used_as_is() -> None:
    cfg = resco_map("cologne1")
    sc = load_scenario(cfg)
    assert (sc.begin_s, sc.end_s) == (25200, 28800)
    assert sc.route_files and sc.route_files[0].name == "cologne1.rou.xml"
    assert sc.flows == () and sc.sumocfg == cfg.resolve()


def test_content_hash_tracks_content_not_path(tmp_path: Path) -> None:
    sc = load_scenario("corridor")
    assert sc.content_hash() == load_scenario(ROOT / "scenarios" / "corridor.toml").content_hash()
    assert sc.content_hash() != sc.replace(warmup_s=600.0).content_hash()


def test_overlapping_periods_rejected(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    net = (ROOT / "networks" / "grid" / "grid.net.xml").as_posix()
    p.write_text(f'network = "{net}"\nend_s = 100\n[[periods]]\nbegin_s = 0\nend_s = 60\n'
                 '[[periods]]\nbegin_s = 50\nend_s = 100\n')
    with pytest.raises(ScenarioError, match=r"s.toml: field 'periods\[1\].begin_s': periods overlap"):
        load_scenario(p)
