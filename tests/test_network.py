"""SignalNetwork: what is read from a .net.xml (unit tests on a network built by netconvert)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mobility.errors import NetworkError
from mobility.network import SignalNetwork, states_problem

from .conftest import ROOT


def test_one_junction_movements_phases_and_lanes(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    assert net.junction_ids == ["C"]
    j = net.junctions["C"]
    # two movements, W->E and N->S, each from its in-lane to its out-lane through one internal lane
    moves = {(lk.in_lane, lk.out_lane) for lk in j.links}
    assert moves == {("W_C_0", "C_E_0"), ("N_C_0", "C_S_0")}
    assert all(lk.direction == "s" and len(lk.via) == 1 for lk in j.links)
    assert set(j.incoming_lanes) == {"W_C_0", "N_C_0"} and set(j.outgoing_lanes) == {"C_E_0", "C_S_0"}
    # the program: green WE 30 s, yellow 3 s, green NS 30 s, yellow 3 s
    assert [p.duration for p in j.phases] == [30.0, 3.0, 30.0, 3.0] and j.cycle_s == 66.0
    assert j.green_phases == (0, 2)
    assert j.green_lanes() == [("W_C_0",), ("N_C_0",)]
    # crossing movements are foes: they may never both show a priority green
    (a, b) = sorted(lk.index for lk in j.links)
    assert j.foes == frozenset({(a, b)})
    # lanes: 300 m legs (minus the junction), 50 km/h
    assert 280 < net.lane_length("W_C_0") <= 300 and net.lane_speed("W_C_0") == pytest.approx(13.89)
    assert net.has_edge("W_C") and not net.has_edge("nowhere")


def test_states_problem_refuses_unsafe_programs(one_junction: Path) -> None:
    j = SignalNetwork.load(one_junction).junctions["C"]
    ok = [p.state for p in j.phases]
    assert states_problem(j, ok) == ""
    both = ok[0].replace("r", "G")
    assert "conflicting links" in states_problem(j, [both, *ok[1:]])
    assert "without yellow" in states_problem(j, [ok[0], ok[0].replace("G", "r"), *ok[2:]])
    assert "expected 4" in states_problem(j, ok[:3])


def test_bundled_corridor_is_an_arterial_of_six_signals() -> None:
    net = SignalNetwork.load(ROOT / "networks" / "corridor" / "corridor.net.xml")
    assert net.junction_ids == [f"J{i}" for i in range(1, 7)]
    for j in net.junctions.values():
        assert len(j.green_phases) >= 2
        # every link enters from one of the junction's incoming lanes and leaves by an outgoing one
        assert {lk.in_lane for lk in j.links} <= set(j.incoming_lanes)
        assert {lk.out_lane for lk in j.links} <= set(j.outgoing_lanes)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="network file does not exist"):
        SignalNetwork.load(tmp_path / "none.net.xml")


def test_load_is_cached_until_the_file_changes(one_junction: Path, tmp_path: Path) -> None:
    assert SignalNetwork.load(one_junction) is SignalNetwork.load(one_junction)
    copy = tmp_path / "x.net.xml"
    copy.write_bytes(one_junction.read_bytes())
    first = SignalNetwork.load(copy)
    assert SignalNetwork.load(copy) is first
    text = one_junction.read_bytes()
    assert text.count(b'<phase duration="30"') == 2
    copy.write_bytes(text.replace(b'<phase duration="30"', b'<phase duration="20"', 1))
    os.utime(copy, ns=(1, copy.stat().st_mtime_ns + 1_000_000))  # a new modification time, even on coarse clocks
    second = SignalNetwork.load(copy)
    assert second is not first and second.junctions["C"].phases[0].duration == 20.0
