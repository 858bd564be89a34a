"""Webster timing: hand-computed cycles and splits, parameter errors, and the plan on real SUMO."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mobility import load_scenario, make, run
from mobility.controllers.webster import Webster, _intergreens, permissive_lane_factors, webster_timing
from mobility.inputs.demand import estimate_demand
from mobility.errors import ControllerError
from mobility.network import Junction, Link, Phase, SignalNetwork


@pytest.fixture(scope="module")
def cross(one_junction: Path) -> Junction:
    """Two stages: W→E green 30 s + yellow 3 s, N→S green 30 s + yellow 3 s (T = 6 s)."""
    return SignalNetwork.load(one_junction).junctions["C"]


def _flows(j: Junction, we: float, ns: float) -> list[float]:
    return [we if lk.in_lane == "W_C_0" else ns for lk in j.links]


def test_cycle_and_splits_by_hand(cross: Junction) -> None:
    # y = 600/1800 = 1/3 and 300/1800 = 1/6, Y = 1/2; L = 2 × 4 = 8 s
    # C0 = (1.5 × 8 + 5) / (1 − 1/2) = 34 s; effective green C − L = 26 s split 2:1 → 17.333, 8.667 s
    # displayed green G = g + l − t = g + 4 − 3 → 18.333, 9.667 s; cycle 18.333 + 9.667 + 6 = 34 s
    t = webster_timing(cross, _flows(cross, 600, 300), min_cycle_s=20, min_green_s=5, resolution_s=0)
    assert t.flow_ratios == pytest.approx((1 / 3, 1 / 6))
    assert t.cycle_s == pytest.approx(34.0)
    assert t.greens_s == pytest.approx((18 + 1 / 3, 9 + 2 / 3))
    # whole seconds: largest remainder keeps the cycle (18.33 → 18, 9.67 → 10)
    assert webster_timing(cross, _flows(cross, 600, 300), min_cycle_s=20, min_green_s=5).greens_s == (18.0, 10.0)
    # the cycle is clipped to min_cycle_s = 40: C − L = 32 → 21.333 + 1, 10.667 + 1
    t = webster_timing(cross, _flows(cross, 600, 300), min_green_s=5, resolution_s=0)
    assert t.cycle_s == pytest.approx(40.0) and t.greens_s == pytest.approx((22 + 1 / 3, 11 + 2 / 3))
    # a minimum green of 10 s holds the short stage (9.667 s) at 10 s; its effective green 10 + 3 − 4 = 9 s
    # is lost time for the other: C = (1.5 × (8 + 9) + 5) / (1 − 1/3) = 45.75 s,
    # G1 = 45.75 − 8 − 9 (effective) + 4 − 3 = 29.75 s
    t = webster_timing(cross, _flows(cross, 600, 300), min_cycle_s=20, min_green_s=10, resolution_s=0)
    assert t.cycle_s == pytest.approx(45.75) and t.greens_s == pytest.approx((29.75, 10.0))
    # with a forced cycle the minimum is taken from the other stage: 34 − 6 − 10 = 18 s
    t = webster_timing(cross, _flows(cross, 600, 300), cycle_s=34, min_green_s=10, resolution_s=0)
    assert t.greens_s == pytest.approx((18.0, 10.0))


def test_saturated_and_forced_cycles(cross: Junction) -> None:
    # Y = 1000/1800 + 800/1800 = 1.0 >= 0.95 → max_cycle_s; greens share 150 − 6 = 144 s
    t = webster_timing(cross, _flows(cross, 1000, 800), resolution_s=0)
    assert t.cycle_s == 150.0 and sum(t.greens_s) == pytest.approx(144.0)
    # forced cycle 60 s: only the split: C − L = 52 s split 2:1 → 34.667 + 1, 17.333 + 1
    t = webster_timing(cross, _flows(cross, 600, 300), cycle_s=60.0, resolution_s=0)
    assert t.cycle_s == pytest.approx(60.0) and t.greens_s == pytest.approx((35 + 2 / 3, 18 + 1 / 3))
    # no demand: equal effective greens, Webster's shortest cycle clipped to the minimum
    t = webster_timing(cross, [0.0, 0.0], resolution_s=0)
    assert t.cycle_s == 40.0 and t.greens_s == pytest.approx((17.0, 17.0))


def test_a_lane_served_by_two_stages_counts_once() -> None:
    # EB has a lead stage and runs on with WB: EB is served by stages 0 and 1, WB by 1, side by 2
    links = (Link(0, "e_0", "x_0", (), "s"), Link(1, "w_0", "y_0", (), "s"), Link(2, "s_0", "z_0", (), "s"))
    phases = tuple(Phase(s, d, d, d) for s, d in
                   (("Grr", 10), ("GGr", 20), ("yyr", 3), ("rrr", 2), ("rrG", 15), ("rry", 3), ("rrr", 2)))
    j = Junction("J", links, phases, "0", 0.0, ("e_0", "w_0", "s_0"), ("x_0", "y_0", "z_0"), ())
    assert j.green_phases == (0, 1, 4)
    t = webster_timing(j, [900.0, 360.0, 180.0], min_green_s=5, resolution_s=0)
    # EB's 0.5 lands on its last stage (1), not on both: Y = 0 + 0.5 + 0.1, not 0.5 + 0.5 + 0.1
    assert t.flow_ratios == pytest.approx((0.0, 0.5, 0.1))
    # L = 3 × 4 = 12 s: C0 = (18 + 5) / 0.4 = 57.5 s; transitions T = 0 + 5 + 5; stage 0 would get
    # G = 0 + l − t = 4 s < 5 s: held at 5 s, its effective green 5 + 0 − 4 = 1 s is lost time:
    # C = (1.5 × 13 + 5) / 0.4 = 61.25 s; stages 1 and 2 share 61.25 − 13 = 48.25 s at 5 : 1
    assert t.cycle_s == pytest.approx(61.25)
    assert t.greens_s == pytest.approx((5.0, 48.25 * 5 / 6 + 4 - 5, 48.25 / 6 + 4 - 5))
    assert sum(t.greens_s) + 10 == pytest.approx(t.cycle_s)
    # without minimum-green trouble (min 3 s) the split is Webster's, 0 : 5 : 1 of C − L = 45.5 s
    t = webster_timing(j, [900.0, 360.0, 180.0], min_green_s=3, resolution_s=0)
    assert t.cycle_s == pytest.approx(57.5)
    assert t.greens_s == pytest.approx((4.0, 45.5 * 5 / 6 - 1, 45.5 / 6 - 1))


def _corridor_j1() -> Junction:
    return SignalNetwork.load(load_scenario("corridor").net_file).junctions["J1"]


def test_permissive_left_turns_reduce_their_lane_saturation_flow() -> None:
    """HCM's shared-lane model: the side street's single lane (right, through, permissive left)
    gets a lower saturation flow the more left turners and the more opposing traffic it has, and
    so a longer green than the same volume going straight."""
    j = _corridor_j1()
    side = "N1_J1_0"
    opposing = "S1_J1_0"

    def flows(left: float, straight: float, opp: float) -> list[float]:
        out = []
        for lk in j.links:
            if lk.in_lane == side:
                out.append({"l": left, "s": straight}.get(lk.direction, 0.0))
            elif lk.in_lane == opposing:
                out.append(opp / 2 if lk.direction in ("s", "r") else 0.0)
            else:
                out.append(400.0 if lk.direction == "s" else 20.0)
        return out

    straight = webster_timing(j, flows(0, 130, 100))
    shared = webster_timing(j, flows(60, 70, 100))
    assert shared.greens_s[3] > straight.greens_s[3] and shared.flow_ratios[3] > straight.flow_ratios[3]
    t = webster_timing(j, flows(60, 70, 100), sneakers_per_cycle=0)
    trans = _intergreens(j)
    f = [permissive_lane_factors(j, np.asarray(flows(60, 70, opp)), t, trans, saturation=1800,
                                 lost_time=4, sneakers_per_cycle=1)[side] for opp in (0, 100, 400, 800)]
    assert all(a > b for a, b in zip(f, f[1:])), f  # more opposing traffic, less saturation flow
    assert 0.05 <= f[-1] < 0.5 and f[0] <= 1.0
    # no left turners: no factor, the classic flow ratio (lane volume / 1800)
    assert straight.flow_ratios[3] == pytest.approx(130 / 1800)


def test_parameter_errors(cross: Junction) -> None:
    with pytest.raises(ControllerError, match=r"^controller 'webster': parameter 'min_green_s': expected a positive "
                                              r"number of seconds, got -1$"):
        Webster(min_green_s=-1)
    with pytest.raises(ControllerError, match=r"parameter 'max_cycle_s': expected at least min_cycle_s=100, got 50"):
        Webster(min_cycle_s=100, max_cycle_s=50)
    with pytest.raises(ControllerError, match=r"parameter 'saturation_flow_vph_per_lane'.*got 'x'"):
        make("webster(saturation_flow_vph_per_lane='x')")
    with pytest.raises(ControllerError, match=r"parameter 'max_cycle_s': expected at least 26 s for junction 'C' "
                                              r"\(cycle below the sum of minimum greens"):
        webster_timing(cross, [0.0, 0.0], min_green_s=10, min_cycle_s=20, max_cycle_s=25)
    with pytest.raises(ControllerError, match=r"^controller 'green-wave': parameter 'cycle_s': .*cycle below"):
        webster_timing(cross, [0.0, 0.0], cycle_s=19, controller="green-wave")


def test_reset_rejects_a_cycle_too_short_for_the_corridor(tmp_path: Path) -> None:
    sc = load_scenario("corridor")
    net = SignalNetwork.load(sc.net_file)
    ctrl = Webster(min_cycle_s=30, max_cycle_s=40)  # 4 stages × 7 s + 20 s of transitions = 48 s
    with pytest.raises(ControllerError, match=r"parameter 'max_cycle_s': expected at least 48 s for junction 'J1'"):
        ctrl.reset(net.with_demand(estimate_demand(sc, net, tmp_path)), 1)


@pytest.mark.sumo
def test_plans_apply_on_the_corridor(tmp_path: Path) -> None:
    sc = load_scenario("corridor").replace(end_s=1800.0, warmup_s=600.0)
    net = SignalNetwork.load(sc.net_file)
    ctrl = Webster()
    ctrl.reset(net.with_demand(estimate_demand(sc, net, tmp_path)), 1)
    shoulder, peak = ctrl.timings["J1"][:2]

    add, states = tmp_path / "tls.add.xml", tmp_path / "states.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="J1" dest="{states}"/></additional>')
    res = run(sc, "webster", seed=1, sumo_args=["-a", str(add)])
    assert res.network.iloc[0]["teleports"] == 0

    j = net.junctions["J1"]
    trace = [(float(e.get("time")), e.get("state")) for e in ET.parse(states).getroot().iter("tlsState")]
    changes = [c for i, c in enumerate(trace) if i == 0 or c[1] != trace[i - 1][1]]
    first = j.phases[j.green_phases[0]].state
    starts = [t for t, s in changes if s == first]
    before = [b - a for a, b in zip(starts, starts[1:]) if b <= 900]
    after = [b - a for a, b in zip(starts, starts[1:]) if a >= 1000]
    assert before and set(before) == {shoulder.cycle_s}
    assert after and set(after) == {peak.cycle_s}
    # the stage greens are the plan's (through stage of the peak plan)
    through = j.phases[j.green_phases[2]].state
    durations = [b[0] - a[0] for a, b in zip(changes, changes[1:]) if a[1] == through and a[0] >= 1000]
    assert set(durations) == {peak.greens_s[2]}
    # no change of plan ever takes a green straight to red (every green ends with a yellow)
    for (_, a), (_, b) in zip(changes, changes[1:]):
        assert not any(x in "Gg" and y in "rR" for x, y in zip(a, b)), (a, b)
