"""Demand from counts: validation of the CSV, GEH, and recovering a known route set's counts."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobility.cli import main
from mobility.inputs.counts import (Count, demand_from_counts, geh, interval_grid, prepare_demand, read_counts,
                             simulate_counts)
from mobility.errors import ScenarioError
from mobility.network import SignalNetwork
from mobility.inputs.profiles import DEFAULT_PROFILE, apply_profile
from mobility.scenario import Period, load_scenario

from .conftest import ROOT

GRID_NET = ROOT / "networks" / "grid" / "grid.net.xml"


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------ validation (no simulation)


def test_reads_edge_and_turn_counts(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "c.csv", "edge,from_edge,to_edge,begin_s,end_s,count,note\n"
                  "W0_G00,,,0,900,120,west entry\n"
                  ",G10_G11,G11_G12,0,900,80,\n\n"
                  "W0_G00,,,900,1800,100,\n")
    counts = read_counts(p, GRID_NET)
    assert counts == (Count(2, "W0_G00", "", 0.0, 900.0, 120.0), Count(3, "G10_G11", "G11_G12", 0.0, 900.0, 80.0),
                      Count(5, "W0_G00", "", 900.0, 1800.0, 100.0))
    assert counts[1].location == "G10_G11>G11_G12" and counts[1].is_turn and counts[0].hours == 0.25


BAD = {
    "unknown edge": ("edge,begin_s,end_s,count\nW0_G00,0,900,10\nnowhere,0,900,5\n",
                     "c.csv: line 3: edge 'nowhere' is not in grid.net.xml"),
    "unknown turn edge": ("from_edge,to_edge,begin_s,end_s,count\nG10_G11,nowhere,0,900,5\n",
                          "c.csv: line 2: edge 'nowhere' is not in grid.net.xml"),
    "turn not connected": ("from_edge,to_edge,begin_s,end_s,count\nW0_G00,G11_G12,0,900,5\n",
                           "line 2: turning movement W0_G00 -> G11_G12: edge 'G11_G12' does not follow edge 'W0_G00'"),
    "negative count": ("edge,begin_s,end_s,count\nW0_G00,0,900,-3\n",
                       "c.csv: line 2: column count: negative count -3 at W0_G00"),
    "overlap": ("edge,begin_s,end_s,count\nW0_G00,900,1800,3\nE0_G02,0,900,1\nW0_G00,0,1200,3\n",
                "c.csv: line 2: interval \\[900, 1800\\) at W0_G00 overlaps line 4 \\[0, 1200\\)"),
    "overlapping turn": ("from_edge,to_edge,begin_s,end_s,count\nG10_G11,G11_G12,0,900,3\nG10_G11,G11_G12,0,900,4\n",
                         "line 3: interval \\[0, 900\\) at G10_G11 -> G11_G12 overlaps line 2"),
    "missing count column": ("edge,begin_s,end_s\nW0_G00,0,900\n", "c.csv: missing column\\(s\\) count"),
    "missing location column": ("begin_s,end_s,count\n0,900,1\n",
                                "missing column\\(s\\) edge \\(or from_edge,to_edge\\)"),
    "half a movement": ("from_edge,begin_s,end_s,count\nW0_G00,0,900,1\n", "missing column\\(s\\) to_edge"),
    "not a number": ("edge,begin_s,end_s,count\nW0_G00,0,900,many\n",
                     "line 2: column count: expected a number, got 'many'"),
    "empty interval": ("edge,begin_s,end_s,count\nW0_G00,900,900,1\n", "line 2: column end_s: expected a time after"),
    "both kinds in a row": ("edge,from_edge,to_edge,begin_s,end_s,count\nW0_G00,G10_G11,G11_G12,0,900,1\n",
                            "line 2: give either edge or from_edge,to_edge, not both"),
    "no rows": ("edge,begin_s,end_s,count\n", "c.csv: no count rows"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_counts_raise_one_line(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    with pytest.raises(ScenarioError, match=message) as e:
        read_counts(write_csv(tmp_path / "c.csv", text), GRID_NET)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("case", ["unknown edge", "negative count", "overlap", "missing count column"])
def test_cli_bad_counts_exit_2_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    text, message = BAD[case]
    out = tmp_path / "out" / "fitted"
    rc = main(["demand-from-counts", "grid", str(write_csv(tmp_path / "c.csv", text)), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("mobility: error: ") and err.count("\n") == 1
    assert re.search(message, err)
    assert not (tmp_path / "out").exists()


def test_cli_counts_outside_window_and_unknown_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = write_csv(tmp_path / "c.csv", "edge,begin_s,end_s,count\nW0_G00,0,900,10\n")
    assert main(["demand-from-counts", "grid", str(p), "--out", str(tmp_path / "o"), "--end", "600"]) == 2
    assert "line 2: interval [0, 900) crosses the time window [0, 600)" in capsys.readouterr().err
    assert main(["demand-from-counts", "nosuchnet", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "nosuchnet: not a network" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_geh_hourly_form() -> None:
    assert geh(100.0, 100.0) == 0.0
    assert geh(150.0, 100.0) == pytest.approx(math.sqrt(20.0))
    assert geh(0.0, 0.0) == 0.0
    assert geh([0.0, 50.0], [50.0, 0.0]) == pytest.approx([10.0, 10.0])


def test_interval_grid() -> None:
    rows = [Count(2, "a", "", 3600, 7200, 1), Count(3, "b", "", 3600, 4500, 1), Count(4, "b", "", 6300, 7200, 1)]
    grid = interval_grid(rows)
    assert [(p.name, p.begin_s, p.end_s) for p in grid] == [
        ("t0100", 3600, 4500), ("t0115", 4500, 5400), ("t0130", 5400, 6300), ("t0145", 6300, 7200)]


def test_irregular_intervals_are_rejected() -> None:
    rows = [Count(2, "a", "", 0, 900, 1), Count(3, "b", "", 0, 901, 1)]
    assert len(interval_grid(rows)) == 901  # a 1 s grid: allowed, if unwise
    rows.append(Count(4, "c", "", 0, 1800.5, 1))
    with pytest.raises(ScenarioError, match="counts: count intervals share only a 0.5 s grid \\(3601 intervals"):
        interval_grid(rows)


def test_scenario_counts_table_errors(tmp_path: Path) -> None:
    write_csv(tmp_path / "c.csv", "edge,begin_s,end_s,count\nW0_G00,0,900,10\n")
    base = f'network = "{GRID_NET.as_posix()}"\nend_s = 900\n'
    cases = {
        '[counts]\nfile = "c.csv"\n[[flows]]\nfrom = "W0_G00"\nto = "G02_E0"\nvph = 1\n':
            "field 'counts': expected either \\[counts\\] or \\[\\[periods\\]\\]/\\[\\[flows\\]\\], not both",
        '[counts]\nfile = "missing.csv"\n': "field 'counts.file': file .*missing.csv does not exist",
        '[counts]\nfile = "c.csv"\nseeds = 2\n': "field 'counts.seeds': unknown field",
        '[counts]\nfile = "c.csv"\ncandidates = -1\n': "field 'counts.candidates': expected an integer >= 0",
    }
    for body, message in cases.items():
        p = tmp_path / "s.toml"
        p.write_text(base + body)
        with pytest.raises(ScenarioError, match=message):
            load_scenario(p)


def test_loading_a_counts_scenario_runs_no_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit (randomTrips, duarouter, routeSampler) runs when a run is prepared, not at load; a
    scenario whose demand is not fitted yet refuses to write routes rather than run without demand."""
    import subprocess

    from mobility.scenario import write_routes

    write_csv(tmp_path / "c.csv", "edge,begin_s,end_s,count\nW0_G00,0,900,10\n")
    p = tmp_path / "s.toml"
    p.write_text(f'network = "{GRID_NET.as_posix()}"\nend_s = 900\n[counts]\nfile = "c.csv"\ncandidates = 50\n')

    def no_tool(*a: object, **k: object) -> None:
        raise AssertionError("a tool ran while loading a scenario")

    with monkeypatch.context() as m:
        m.setattr(subprocess, "run", no_tool)
        m.setattr(subprocess, "Popen", no_tool)
        sc = load_scenario(p)
    assert sc.flows == () and sc.counts is not None and sc.counts.candidates == 50
    assert (sc.counts.begin_s, sc.counts.end_s) == (0.0, 900.0)
    with pytest.raises(ScenarioError, match="field 'counts': the demand is not fitted yet"):
        write_routes(sc, tmp_path / "r.rou.xml")


# ------------------------------------------------------------------ integration: a known route set


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Count]]:
    """Counts of a known route set: the bundled grid demand (24 OD flows, Poisson, seed 11) simulated
    for 1 h; every approach edge of the 9 signals and every movement at G11, per 15 min after the
    first 15 min (as real counts, taken in a network already full of traffic)."""
    d = tmp_path_factory.mktemp("known")
    sc = load_scenario("grid").replace(end_s=3600.0, periods=(Period("all", 0.0, 3600.0),))
    net = SignalNetwork.load(sc.net_file)
    edges = sorted({net.lanes[lane].edge for j in net.junctions.values() for lane in j.incoming_lanes})
    turns = sorted({(net.lanes[lk.in_lane].edge, net.lanes[lk.out_lane].edge) for lk in net.junctions["G11"].links})
    locs = [(e, "") for e in edges] + turns
    probe = [Count(0, a, b, t, t + 900.0, 0.0) for a, b in locs for t in (900.0, 1800.0, 2700.0)]
    observed = simulate_counts(sc, probe, d / "observe", seed=11)
    path = d / "grid_counts.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["edge", "from_edge", "to_edge", "begin_s", "end_s", "count"])
        for c, n in zip(probe, observed):
            w.writerow(["" if c.is_turn else c.from_edge, c.from_edge if c.is_turn else "", c.to_edge,
                        int(c.begin_s), int(c.end_s), int(n)])
    return path, list(read_counts(path, sc.net_file))


@pytest.mark.sumo
def test_recovers_known_counts(known: tuple[Path, list[Count]], tmp_path: Path,
                               capsys: pytest.CaptureFixture) -> None:
    path, counts = known
    assert len(counts) == 36 * 3 + 12 * 3 and sum(c.count for c in counts) > 5000
    out = tmp_path / "fitted"
    assert main(["demand-from-counts", "grid", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(acceptance >= 85%: met)" in text
    fit = pd.read_csv(out / "fit.csv")
    assert len(fit) == len(counts)
    assert list(fit["line"]) == [c.line for c in counts]
    assert np.array_equal(fit["observed_veh"], [c.count for c in counts])
    assert fit["geh_ok"].mean() >= 0.85
    busy = fit[fit["observed_vph"] >= 200]
    assert len(busy) > 50
    # volumes, not just GEH: the busy locations are matched within 15 % in total
    assert busy["simulated_veh"].sum() == pytest.approx(busy["observed_veh"].sum(), rel=0.15)
    assert sorted(p.name for p in out.iterdir()) == ["fit.csv", "grid_counts.csv", "grid_counts.toml", "routes.rou.xml"]

    # the written scenario references the counts; loading it runs no tool (no flows yet), preparing the run
    # gives the same demand, deterministically
    loaded = load_scenario(out / "grid_counts.toml")
    assert loaded.flows == () and loaded.counts is not None
    sc = prepare_demand(loaded)
    assert sc.counts is None and sc.content_hash() != loaded.content_hash()
    # a 15 min warm-up at the first interval's demand, then the three counted intervals
    assert [p.name for p in sc.periods] == ["warmup", "t0015", "t0030", "t0045"]
    assert (sc.begin_s, sc.warmup_s, sc.end_s) == (0.0, 900.0, 3600.0) and len(sc.flows) > 10
    assert all(len(f.vph) == 4 and f.vph[0] == f.vph[1] for f in sc.flows)
    again = simulate_counts(sc, counts, tmp_path / "again")
    assert np.array_equal(again, fit["simulated_veh"].to_numpy())
    # a time-of-day profile applies to counted demand like to any other: every flow, every interval
    night = apply_profile(sc, DEFAULT_PROFILE)["night"]
    assert [f.vph for f in night.flows] == [tuple(0.12 * v for v in f.vph) for f in sc.flows]


@pytest.mark.sumo
def test_edge_counts_match_sumo_edgedata(known: tuple[Path, list[Count]], tmp_path: Path) -> None:
    """Our counting rule for edges equals SUMO's own edgeData: entered + departed per interval."""
    _, counts = known
    edge_counts = [c for c in counts if not c.is_turn]
    add = tmp_path / "ed.add.xml"
    add.write_text(f'<additional><edgeData id="ed" file="{tmp_path / "ed.xml"}" period="900"/></additional>')
    sc = load_scenario("grid").replace(end_s=3600.0, sumo_args=("--additional-files", str(add)))
    ours = simulate_counts(sc, edge_counts, tmp_path / "sim", seed=5)
    import xml.etree.ElementTree as ET

    sumo = {}
    for iv in ET.parse(tmp_path / "ed.xml").getroot().iter("interval"):
        for e in iv.iter("edge"):
            sumo[(e.get("id"), float(iv.get("begin")))] = int(e.get("entered", 0)) + int(e.get("departed", 0))
    theirs = np.array([sumo.get((c.from_edge, c.begin_s), 0) for c in edge_counts])
    assert ours.sum() > 3000
    assert np.array_equal(ours, theirs)


# ------------------------------------------------------------------ SUMO's own count files


def _as_sumo_xml(counts: list[Count], path: Path, attribute: str = "entered") -> Path:
    """The counts as one SUMO data file: ``<interval>``s holding ``<edge>`` (edgeData, the count in
    ``attribute``, beside SUMO's other edgeData attributes) and ``<edgeRelation>`` elements."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<meandata>"]
    for b, e in sorted({(c.begin_s, c.end_s) for c in counts}):
        lines.append(f'    <interval begin="{b:.2f}" end="{e:.2f}" id="counts">')
        for c in sorted((c for c in counts if (c.begin_s, c.end_s) == (b, e)), key=lambda c: c.location, reverse=True):
            if c.is_turn:
                lines.append(f'        <edgeRelation from="{c.from_edge}" to="{c.to_edge}" count="{c.count:g}"/>')
            else:
                lines.append(f'        <edge id="{c.from_edge}" sampledSeconds="1.0" {attribute}="{c.count:g}" '
                             f'left="0"/> <!-- a comment -->')
        lines.append("    </interval>")
    lines.append("</meandata>")
    path.write_text("\n".join(lines) + "\n")
    return path


def _key(c: Count) -> tuple:
    return (c.from_edge, c.to_edge, c.begin_s, c.end_s, c.count)


def test_reads_sumo_edgedata_and_edge_relations(tmp_path: Path) -> None:
    csv_counts = read_counts(write_csv(tmp_path / "c.csv", "edge,from_edge,to_edge,begin_s,end_s,count\n"
                                       "W0_G00,,,0,900,120\n,G10_G11,G11_G12,0,900,80\nW0_G00,,,900,1800,100\n"),
                             GRID_NET)
    xml = _as_sumo_xml(list(csv_counts), tmp_path / "c.xml")
    got = read_counts(xml, GRID_NET)
    assert sorted(map(_key, got)) == sorted(map(_key, csv_counts))
    assert got[0].line == 4  # the element's line, for error messages
    import gzip

    gz = tmp_path / "c.xml.gz"
    gz.write_bytes(gzip.compress(xml.read_bytes()))
    assert sorted(map(_key, read_counts(gz, GRID_NET))) == sorted(map(_key, csv_counts))
    # another count attribute, as routeSampler's --edgedata-attribute
    alt = _as_sumo_xml(list(csv_counts), tmp_path / "alt.xml", attribute="counted")
    assert sorted(map(_key, read_counts(alt, GRID_NET, attribute="counted"))) == sorted(map(_key, csv_counts))


BAD_XML = {
    "unknown edge": ('<meandata><interval begin="0" end="900">\n<edge id="nowhere" entered="3"/>\n'
                     "</interval></meandata>", "c.xml: line 2: edge 'nowhere' is not in grid.net.xml"),
    "no such attribute": ('<meandata><interval begin="0" end="900">\n\n<edge id="W0_G00" left="3" speed="9"/>\n'
                          "</interval></meandata>",
                          "c.xml: line 3: <edge> has no attribute 'entered' \\(choose one with "
                          "--edgedata-attribute\\); it has: left, speed"),
    "outside an interval": ('<meandata>\n<edge id="W0_G00" entered="3"/></meandata>',
                            "c.xml: line 2: <edge> outside an <interval>"),
    "lane data": ('<meandata><interval begin="0" end="900"><edge id="W0_G00">\n<lane id="W0_G00_0" entered="1"/>'
                  "</edge></interval></meandata>", "line 2: <lane> data is not supported"),
    "malformed": ("<meandata><interval>", "c.xml: malformed XML"),
    "negative": ('<data><interval begin="0" end="900"><edgeRelation from="G10_G11" to="G11_G12" count="-1"/>'
                 "</interval></data>", "line 1: column count: negative count -1 at G10_G11 -> G11_G12"),
}


@pytest.mark.parametrize("case", list(BAD_XML))
def test_bad_sumo_counts_raise_one_line(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    text, message = BAD_XML[case]
    p = tmp_path / "c.xml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=message) as e:
        read_counts(p, GRID_NET)
    assert "\n" not in str(e.value)
    out = tmp_path / "out"
    assert main(["demand-from-counts", "grid", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err) and not out.exists()


@pytest.mark.sumo
def test_sumo_edgedata_counts_fit_like_the_same_csv(known: tuple[Path, list[Count]], tmp_path: Path) -> None:
    """The same counts as SUMO edgeData/edgeRelation XML (other order, other attributes beside the
    count) and as CSV: same seed -> identical sampled routes and identical GEH table."""
    path, counts = known
    xml = _as_sumo_xml(counts, tmp_path / "grid_counts.xml")
    a = demand_from_counts("grid", path, tmp_path / "csv", seed=3, candidates=300)
    b = demand_from_counts("grid", xml, tmp_path / "xml", seed=3, candidates=300)
    def vehicles(d: str) -> list[tuple]:  # routeSampler's header comment names its (temporary) input files
        import xml.etree.ElementTree as ET

        root = ET.parse(tmp_path / d / "routes.rou.xml").getroot()
        return [(v.get("id"), v.get("depart"), v.find("route").get("edges")) for v in root.iter("vehicle")]

    assert len(vehicles("csv")) > 1000 and vehicles("csv") == vehicles("xml")
    cols = ["location", "begin_s", "end_s", "observed_veh", "simulated_veh", "geh"]
    ta = a.fit[cols].sort_values(cols[:3]).reset_index(drop=True)
    tb = b.fit[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ta, tb)
    assert a.share_geh_ok >= 0.85 and len(ta) == len(counts)
    # the written scenario references the XML file and refits it the same way
    sc = prepare_demand(load_scenario(tmp_path / "xml" / "grid_counts.toml"))
    assert len(sc.flows) == b.flows


def test_targeted_trips_on_a_network_with_pedestrians(tmp_path: Path) -> None:
    """Sidewalks, walking areas and crossings (as OSM networks have; they once crashed the entry search
    with KeyError 'from_node'): every count location gets routes from and to car edges, through it."""
    import subprocess

    import sumolib

    from mobility.inputs.counts import _targeted_trips
    from mobility.inputs.osm import binary

    src = ROOT / "networks" / "corridor"
    net_file = tmp_path / "walk.net.xml"
    subprocess.run([binary("netconvert"), "-n", str(src / "corridor.nod.xml"), "-e", str(src / "corridor.edg.xml"),
                    "-x", str(src / "corridor.con.xml"), "--sidewalks.guess", "true", "--crossings.guess", "true",
                    "-o", str(net_file)], check=True, capture_output=True)
    snet = sumolib.net.readNet(str(net_file), withInternal=True)
    assert any(e.getFunction() == "walkingarea" for e in snet.getEdges(withInternal=True))
    net = SignalNetwork.load(net_file)
    counts = [Count(2, "J3_J4", "", 0.0, 900.0, 10.0), Count(3, "N3_J3", "", 0.0, 900.0, 5.0)]
    trips = _targeted_trips(counts, net)
    assert trips
    for src_edge, via, dst in trips:
        for e in (src_edge, dst):
            assert snet.getEdge(e).getFunction() == "" and snet.getEdge(e).allows("passenger")
    for c in counts:  # each location has trips through it (as origin, via or destination)
        assert any(c.from_edge in (s, *v, d) for s, v, d in trips)


BERLIN = ROOT.parent / "shared" / "scenarios" / "real" / "berlin-doerpfeldstr"


@pytest.mark.sumo
@pytest.mark.skipif(not BERLIN.exists(), reason="../shared/scenarios/real not present")
def test_berlin_models_own_edgedata_counts_fit(tmp_path: Path) -> None:
    """A real OSM-derived model (trams, sidewalks, walking areas) and its own SUMO edgeData counts:
    read as they are and met within GEH 5 at every location."""
    rep = demand_from_counts(BERLIN / "net.net.xml.gz", BERLIN / "edge_data_cars.xml", tmp_path / "out", seed=1)
    assert sorted(rep.fit["location"]) == sorted(["178028204#9", "-178028204#9", "-147053824#2", "147053824#2"])
    assert rep.fit["observed_veh"].sum() == 274 + 468 + 508 + 154
    assert rep.share_geh_ok == 1.0 and (rep.fit["simulated_veh"] > 0.8 * rep.fit["observed_veh"]).all()
