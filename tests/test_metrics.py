"""Attribution zones and per-junction aggregation (pure numpy, no SUMO run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mobility.metrics import EXIT, FAR, INTERNAL, NEAR, Attribution, ZoneMap
from mobility.network import SignalNetwork
from mobility.scenario import ZoneSpec

from .conftest import ROOT

CORRIDOR = ROOT / "networks" / "corridor" / "corridor.net.xml"


def _code(zm: ZoneMap, lane: str, pos: float) -> int:
    return int(zm.classify(np.array([zm.lane_index[lane]]), np.array([pos]))[0])


def test_one_junction_zone_ranges(one_junction: Path) -> None:
    net = SignalNetwork.load(one_junction)
    zm = ZoneMap.build(net, ZoneSpec(upstream_m=100, downstream_m=50))
    length = net.lanes["W_C_0"].length
    assert _code(zm, "W_C_0", length - 99) == NEAR  # junction 0, near approach
    assert _code(zm, "W_C_0", length - 101) == -1
    assert _code(zm, "C_E_0", 49) == EXIT and _code(zm, "C_E_0", 51) == -1
    internal = net.junctions["C"].internal_lanes
    assert internal and all(_code(zm, lane, 0.5) == INTERNAL for lane in internal)
    assert _code(zm, "", 0.0) == -1  # off the network (teleporting)


def test_corridor_approach_beats_exit_and_walk_stops_at_signals() -> None:
    net = SignalNetwork.load(CORRIDOR)
    zm = ZoneMap.build(net, ZoneSpec(upstream_m=250, downstream_m=200))
    j = {jid: i for i, jid in enumerate(zm.junction_ids)}
    # J2→J3 is 300 m: exit of J2 (200 m) and approach of J3 (250 m) overlap; J3's approach wins
    bay = net.lanes["J2_J3_bay_0"].length
    assert _code(zm, "J2_J3_bay_0", bay - 1) == 4 * j["J3"] + NEAR
    # the upstream part of the link is J3's far approach near its end, J2's exit at its start
    up = net.lanes["J2_J3_0"].length
    assert _code(zm, "J2_J3_0", up - 1) == 4 * j["J3"] + FAR
    assert _code(zm, "J2_J3_0", 1.0) == 4 * j["J2"] + EXIT
    # no lane is claimed beyond the previous signal: J1's internal lanes stay J1's
    for lane in net.junctions["J1"].internal_lanes:
        assert _code(zm, lane, 0.1) == 4 * j["J1"] + INTERNAL


def test_zone_codes_are_exclusive_and_complete() -> None:
    net = SignalNetwork.load(CORRIDOR)
    zm = ZoneMap.build(net, ZoneSpec())
    lanes = np.repeat(np.arange(len(zm.lane_ids)), 50)
    pos = np.tile(np.linspace(0, 1, 50), len(zm.lane_ids)) * np.array(
        [net.lanes[lid].length if lid else 1.0 for lid in zm.lane_ids]).repeat(50)
    codes = zm.classify(lanes, pos)
    assert codes.min() >= -1 and codes.max() < 4 * zm.n_junctions  # one code (or none) per sample


def _attribution() -> Attribution:
    zm = ZoneMap(["A", "B"], {"a": 0, "b": 1, "": 2}, ["a", "b", ""], np.array([0.0, 50.0, np.inf]),
                 np.array([0 * 4 + NEAR, 1 * 4 + NEAR, -1]), np.array([0.0, 0.0, 0.0]), np.array([-1, -1, -1]))
    return Attribution(zm, step_length_s=1.0, capacity=2)


def test_stops_counted_on_moving_to_halted_only() -> None:
    att = _attribution()
    slots = np.array([0, 1])
    att.new_slot_state(slots)
    lane = np.array([0, 1])
    zero = np.zeros(2)
    speeds = [np.array([0.0, 10.0]), np.array([0.0, 5.0]), np.array([3.0, 0.05]), np.array([0.0, 0.0])]
    pos = np.array([10.0, 60.0])
    for v in speeds:
        att.add_step(slots, lane, pos, v, zero, zero + 1000, zero, zero, measure=True)
    t = att.junction_table().set_index("junction_id")
    # slot 0 starts at rest (no stop), moves, halts again at step 4: 1 stop at A
    # slot 1 moves, halts at step 3 (0.05 < 0.1): 1 stop at B, stays halted: still 1
    assert t.loc["A", "stops"] == 1 and t.loc["B", "stops"] == 1
    assert t.loc["A", "halted_veh_s"] == 3 and t.loc["B", "halted_veh_s"] == 2
    assert t.loc["A", "co2_kg"] == pytest.approx(4 * 1000 / 1e6)
    assert t.loc["A", "queue_max_veh"] == 1


def test_served_when_leaving_near_approach_and_slots_grow() -> None:
    att = _attribution()
    slots = np.array([0, 1, 2])
    att.new_slot_state(slots)  # grows past the initial capacity of 2
    z = np.zeros(3)
    att.add_step(slots, np.array([0, 0, 1]), np.array([10.0, 10.0, 60.0]), z + 5, z, z, z, z, measure=True)
    # vehicle 0 and 2 leave their near approaches (to off-network lane 2), vehicle 1 stays
    att.add_step(slots, np.array([2, 0, 2]), np.array([0.0, 20.0, 0.0]), z + 5, z + 1, z, z, z, measure=True)
    t = att.junction_table().set_index("junction_id")
    assert t.loc["A", "vehicles"] == 1 and t.loc["B", "vehicles"] == 1
    assert att.network_totals()["delay_s"] == pytest.approx(3.0)
    assert att.vehicles_seen == 3


def test_hcm_level_of_service_bands() -> None:
    from mobility.metrics import level_of_service

    assert [level_of_service(x) for x in (5, 10, 10.1, 20, 30, 55, 79.9, 80.1, float("nan"))] == \
        ["A", "A", "B", "B", "C", "D", "E", "F", ""]
