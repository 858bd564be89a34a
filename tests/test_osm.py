"""OSM import: netconvert options, the report, bad input, and the Bad Hersfeld extract end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobility.cli import main
from mobility.experiments.sweep import compare
from mobility.network import SignalNetwork
from mobility.inputs.osm import import_osm, summarise_warnings
from mobility.scenario import load_scenario

from .conftest import SHARED

BAD_HERSFELD = SHARED / "osm" / "BadHersfeld_bbox.osm.xml.gz"


def tiny_osm(path: Path) -> Path:
    """A cross of two secondary roads (4 arms of 300 m) whose signals OSM tags on the approach nodes
    15 m before the intersection (as mappers usually do), plus a footway."""
    lat0, lon0 = 50.0, 9.0
    dlat, dlon = 300 / 111320, 300 / (111320 * 0.6428)
    nodes = {"C": (lat0, lon0), "P": (lat0 + dlat / 2, lon0 + dlon / 2)}
    arms = {"W": (0, -1), "E": (0, 1), "N": (1, 0), "S": (-1, 0)}
    for k, (a, b) in arms.items():
        nodes[k + "far"] = (lat0 + a * dlat, lon0 + b * dlon)
        nodes[k + "sig"] = (lat0 + a * dlat * 0.05, lon0 + b * dlon * 0.05)
    ids = {k: i + 1 for i, k in enumerate(nodes)}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    for k, (la, lo) in nodes.items():
        tag = '<tag k="highway" v="traffic_signals"/>' if k.endswith("sig") else ""
        lines.append(f'<node id="{ids[k]}" lat="{la:.7f}" lon="{lo:.7f}">{tag}</node>')
    for i, k in enumerate(arms):
        refs = "".join(f'<nd ref="{ids[n]}"/>' for n in (k + "far", k + "sig", "C"))
        lines.append(f'<way id="{100 + i}">{refs}<tag k="highway" v="secondary"/></way>')
    lines.append(f'<way id="200"><nd ref="{ids["C"]}"/><nd ref="{ids["P"]}"/><tag k="highway" v="footway"/></way>')
    path.write_text("\n".join(lines + ["</osm>"]) + "\n")
    return path


def test_tiny_import_guesses_one_signal_and_drops_footways(tmp_path: Path) -> None:
    osm = tiny_osm(tmp_path / "x.osm")
    rep = import_osm(osm, tmp_path / "nets" / "x")
    d = tmp_path / "nets" / "x"
    assert sorted(p.name for p in d.iterdir()) == ["import.json", "x.net.xml", "x.rou.xml", "x.sumocfg", "x.toml"]
    # four approach-node signals become one controller at the intersection
    assert (rep.tls, rep.tls_nodes, rep.crossing_only_tls) == (1, 1, 0)
    net = SignalNetwork.load(d / "x.net.xml")
    assert len(net.junction_ids) == 1
    assert len({net.lanes[lane].edge for lane in net.junctions[net.junction_ids[0]].incoming_lanes}) == 4
    # footway dropped: 4 two-way arms = 8 edges; ~1.2 km of road (less the junction area)
    assert rep.edges == 8 and 1.0 < rep.road_km < 1.2 and rep.lane_km == pytest.approx(2 * rep.road_km, rel=0.01)
    saved = json.loads((d / "import.json").read_text())
    assert saved["tls"] == 1 and saved["net_file"] == "x.net.xml" and "--tls.guess-signals" in saved["netconvert_args"]
    # the scenario runs as it is: flows between the arms, total = the reported demand
    sc = load_scenario(d / "x.toml")
    assert sc.warmup_s == 900 and sc.end_s - sc.warmup_s == 3600
    assert sc.flows and sum(f.vph[0] for f in sc.flows) == pytest.approx(rep.demand_vph)
    assert rep.demand_vph == pytest.approx(6 * rep.lane_km, rel=0.3)
    assert load_scenario(d / "x.sumocfg").route_files[0].name == "x.rou.xml"


def test_import_is_reproducible(tmp_path: Path) -> None:
    osm = tiny_osm(tmp_path / "x.osm")
    import_osm(osm, tmp_path / "one" / "x")
    import_osm(osm, tmp_path / "two" / "x")
    for f in ("x.net.xml", "x.toml", "x.rou.xml", "x.sumocfg", "import.json"):
        assert (tmp_path / "one" / "x" / f).read_bytes() == (tmp_path / "two" / "x" / f).read_bytes(), f


def test_summarise_warnings_uses_netconvert_totals() -> None:
    text = "\n".join([
        "Warning: Discarding unusable type 'waterway.river' (first occurrence for edge '93482697').",
        "Warning: Discarding unusable type 'aeroway.apron' (first occurrence for edge '38867244').",
        "Warning: Found sharp turn with radius 3.2 at the end of edge '-26#1'.",
        "Warning: 19 total messages of type: Discarding unusable type '%' (first occurrence for edge '%').",
        "Success.",
    ])
    assert summarise_warnings(text) == {
        "Discarding unusable type '%' (first occurrence for edge '%').": 19,
        "Found sharp turn with radius % at the end of edge '%'.": 1,
    }


NO_ROADS = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="50.8" lon="9.7"/><node id="2" lat="50.801" lon="9.701"/>
 <way id="3"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
 <way id="4"><nd ref="1"/><nd ref="2"/><tag k="waterway" v="river"/></way>
</osm>
"""


@pytest.mark.parametrize("content, message", [
    (NO_ROADS, "empty.osm: no roads open to cars found"),
    ("this is not xml\n", "empty.osm: netconvert failed: Error: invalid document structure"),
    (None, "empty.osm: no such file"),
])
def test_bad_osm_exit_2_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture, content: str | None,
                                            message: str) -> None:
    osm = tmp_path / "empty.osm"
    if content is not None:
        osm.write_text(content)
    rc = main(["import-osm", str(osm), "--out", str(tmp_path / "networks" / "empty")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "networks").exists()


def test_existing_output_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    osm = tiny_osm(tmp_path / "x.osm")
    out = tmp_path / "x"
    out.mkdir()
    (out / "mine.toml").write_text("hand-edited")
    assert main(["import-osm", str(osm), "--out", str(out)]) == 2
    assert "directory exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.toml"]
    assert main(["import-osm", str(osm), "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir())[-1] == "x.toml" and not (out / "mine.toml").exists()


@pytest.mark.sumo
def test_bad_hersfeld_every_signal_in_compare(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The real extract: ~27 signals; every one gets a row for static and max-pressure."""
    if not BAD_HERSFELD.exists():
        pytest.skip(f"OSM extract not found at {BAD_HERSFELD} (../shared is absent on this machine)")
    out = tmp_path / "networks" / "bh"
    assert main(["import-osm", str(BAD_HERSFELD), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rep = json.loads((out / "import.json").read_text())
    assert 25 <= rep["tls"] <= 32, printed
    assert rep["tls_nodes"] >= rep["tls"] and rep["crossing_only_tls"] < rep["tls"] / 2
    assert 150 < rep["road_km"] < 300 and rep["edges"] > 1000
    assert rep["warnings_total"] > 0 and f"netconvert warnings: {rep['warnings_total']}" in printed
    tls_ids = SignalNetwork.load(out / "bh.net.xml").junction_ids
    assert len(tls_ids) == rep["tls"]

    sc = load_scenario(out / "bh.toml").replace(end_s=1200.0, warmup_s=600.0)  # 10 min after a 10 min warm-up
    res = compare(sc, ["static", "max-pressure"], seeds=1, jobs=2)
    assert res.failed.empty, res.runs[["controller", "error"]].to_string()
    j = res.junctions[res.junctions["junction_id"] != "(unattributed)"]
    for ctrl in ("static", "max-pressure"):
        rows = j[j["controller"] == ctrl]
        assert sorted(rows["junction_id"]) == tls_ids
        assert (rows["vehicles"] > 0).mean() >= 0.8, rows[["junction_id", "vehicles"]].to_string()


def _duarouter_routable(net: Path, pairs: list[tuple[str, str]], d: Path) -> list[bool]:
    """Which trips duarouter can route (the check randomTrips --validate makes)."""
    import subprocess
    import xml.etree.ElementTree as ET

    from mobility.inputs.osm import binary

    trips = d / "pairs.trips.xml"
    trips.write_text("<routes>\n" + "\n".join(f'<trip id="p{i}" depart="0" from="{a}" to="{b}"/>'
                                              for i, (a, b) in enumerate(pairs)) + "\n</routes>\n")
    out = d / "pairs.rou.xml"
    subprocess.run([binary("duarouter"), "-n", str(net), "-r", str(trips), "-o", str(out), "--ignore-errors",
                    "--no-step-log", "--no-warnings", "--alternatives-output", "NUL"], check=True, capture_output=True)
    ok = {v.get("id") for v in ET.parse(out).getroot().iter("vehicle")}
    return [f"p{i}" in ok for i in range(len(pairs))]


def test_drivable_agrees_with_duarouter(tmp_path: Path) -> None:
    """Reachability on the car graph (the default demand's check) keeps exactly the trips duarouter
    can route: a one-way spur into a dead end, a two-way street, a footway and a bus-only lane."""
    import subprocess

    from mobility.inputs.osm import binary, drivable

    (tmp_path / "n.nod.xml").write_text('<nodes><node id="A" x="0" y="0"/><node id="B" x="200" y="0"/>'
                                        '<node id="C" x="400" y="0"/><node id="D" x="200" y="200"/>'
                                        '<node id="E" x="200" y="-200"/></nodes>')
    (tmp_path / "n.edg.xml").write_text(
        '<edges><edge id="AB" from="A" to="B"/><edge id="BA" from="B" to="A"/><edge id="BC" from="B" to="C"/>'
        '<edge id="BD" from="B" to="D" allow="pedestrian"/><edge id="DB" from="D" to="B" allow="pedestrian"/>'
        '<edge id="EB" from="E" to="B" allow="bus"/><edge id="BE" from="B" to="E"/></edges>')
    net = tmp_path / "n.net.xml"
    subprocess.run([binary("netconvert"), "-n", str(tmp_path / "n.nod.xml"), "-e", str(tmp_path / "n.edg.xml"),
                    "-o", str(net)], check=True, capture_output=True)
    edges = ["AB", "BA", "BC", "BD", "DB", "EB", "BE"]
    pairs = [(a, b) for a in edges for b in edges if a != b]
    ours = drivable(net, pairs)
    assert ours == _duarouter_routable(net, pairs, tmp_path)
    assert any(ours) and not all(ours)  # both kinds occur
    assert not ours[pairs.index(("BC", "AB"))] and ours[pairs.index(("AB", "BC"))]


@pytest.mark.sumo
def test_bad_hersfeld_drivable_equals_duarouter(tmp_path: Path) -> None:
    """On the real extract: 2,000 random trips (not validated), the same ones kept as duarouter routes."""
    if not BAD_HERSFELD.exists():
        pytest.skip(f"OSM extract not found at {BAD_HERSFELD} (../shared is absent on this machine)")
    import random

    from mobility.inputs.osm import drivable, import_osm

    import_osm(BAD_HERSFELD, tmp_path / "bh", insertion_density=0.0)
    net = tmp_path / "bh" / "bh.net.xml"
    edges = sorted(SignalNetwork.load(net).graph.nodes)
    rnd = random.Random(5)
    pairs = [(rnd.choice(edges), rnd.choice(edges)) for _ in range(2000)]
    ours = drivable(net, pairs)
    assert ours == _duarouter_routable(net, pairs, tmp_path)
    assert 0 < sum(ours) < len(pairs)
