"""Per-approach and per-movement tables, congestion index, spillback and blocked green on real SUMO runs
of the two-signal network (tests/conftest.py ``build_two_junctions``: A and B 45 m apart)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mobility import run
from mobility.approaches import JAM_GAP_M, SPILLBACK_MIN_S
from mobility.metrics import HALT_SPEED, UNATTRIBUTED
from mobility.scenario import ZoneSpec, from_sumocfg

from .conftest import build_two_junctions, write_sumocfg

ROUTES = """<routes><vType id="c" sigma="0"/>
  <flow id="we" type="c" begin="0" end="1200" vehsPerHour="400" from="W_A" to="B_E" departSpeed="max"/>
  <flow id="na" type="c" begin="0" end="1200" vehsPerHour="600" from="NA_A" to="A_SA" departSpeed="max"/>
  <flow id="nb" type="c" begin="0" end="1200" vehsPerHour="300" from="NB_B" to="B_SB" departSpeed="max"/>
  </routes>"""


def _run(tmp_path: Path, b_greens_s: tuple[float, float], *sumo_args: str):
    net = build_two_junctions(tmp_path, b_greens_s=b_greens_s)
    sc = from_sumocfg(write_sumocfg(tmp_path, net, ROUTES, end=1300)).replace(zones=ZoneSpec(300, 300), warmup_s=100.0)
    return run(sc, "static", seed=1, sumo_args=list(sumo_args))


def _full_steps(dump: Path, lane: str, length: float, t0: float) -> list[float]:
    """Times (SUMO's step labels) at which ``lane`` is full by the documented rule, read independently
    from SUMO's netstate dump."""
    out = []
    for ts in ET.parse(dump).getroot().iter("timestep"):
        t = float(ts.get("time"))
        if t < t0:
            continue
        pos = sorted((float(v.get("pos")) for ln in ts.iter("lane") if ln.get("id") == lane
                      for v in ln.iter("vehicle") if float(v.get("speed")) < HALT_SPEED), reverse=True)
        if pos and length - pos[0] <= JAM_GAP_M and pos[-1] <= JAM_GAP_M and \
                all(a - b <= JAM_GAP_M for a, b in zip(pos, pos[1:])):
            out.append(t)
    return out


def _runs(times: list[float]) -> list[float]:
    """Durations (s, 1 s steps) of the runs of consecutive times."""
    out, n = [], 0
    for i, t in enumerate(times):
        n = n + 1 if i and t - times[i - 1] < 1.5 else 1
        if i == len(times) - 1 or times[i + 1] - t > 1.5:
            out.append(float(n))
    return out


@pytest.mark.sumo
def test_approach_and_movement_totals_add_up_to_the_junction(tmp_path: Path) -> None:
    res = _run(tmp_path, (10.0, 50.0))
    j = res.junctions[res.junctions["junction_id"] != UNATTRIBUTED].set_index("junction_id")
    a, m = res.approaches, res.movements
    assert set(a["approach"]) >= {"W_A", "NA_A", "A_B", "NB_B"}
    for col in ("vehicles", "delay_s", "stops", "co2_kg", "halted_veh_s", "veh_s", "queue_mean_veh"):
        per_j = a.groupby("junction_id")[col].sum()
        np.testing.assert_allclose(per_j.loc[j.index], j[col], rtol=1e-9, atol=1e-9, err_msg=col)
        per_a = m.groupby(["junction_id", "approach"])[col].sum()
        np.testing.assert_allclose(per_a.loc[list(zip(a.junction_id, a.approach))], a[col], rtol=1e-9, atol=1e-9,
                                   err_msg=col)
    for col in ("spillback_events", "spillback_s", "blocked_green_s"):
        assert (a.groupby("junction_id")[col].sum().loc[j.index] == j[col]).all(), col
    # every vehicle crossed A by a movement it can take: W_A -> A_B, NA_A -> A_SA
    mv = m[m["vehicles"] > 0].set_index(["approach", "to_edge"])
    assert set(mv.loc["W_A"].index) == {"A_B"} and set(mv.loc["NA_A"].index) == {"A_SA"}
    # the served vehicles are the flows' (1200 s at 400 and 600 veh/h, minus warm-up and queued ones)
    assert 0 < mv.loc[("NA_A", "A_SA"), "vehicles"] <= 200
    # HCM LOS from each approach's delay; v/c from its flow and its green ratio at 1800 veh/h/lane
    a = a.set_index(["junction_id", "approach"])
    ab = a.loc[("B", "A_B")]
    assert ab["green_ratio"] == pytest.approx(10 / 66, abs=0.02)  # 10 s of B's 66 s cycle
    assert ab["capacity_veh_per_h"] == pytest.approx(1800 * ab["green_ratio"])
    assert ab["vc_ratio"] == pytest.approx(ab["flow_veh_per_h"] / ab["capacity_veh_per_h"])
    for (_, _), r in a.iterrows():
        if r["vehicles"] > 0:
            assert r["hcm_los"] == "ABCDEF"[sum(r["delay_s_per_veh"] > x for x in (10, 20, 35, 55, 80))]
        assert r["queue_max_veh"] >= r["queue_p95_veh"] >= 0 and r["queue_max_veh"] >= r["queue_mean_veh"]
    # congestion index: time / (time - delay); the starved W->E approach is the most congested
    assert a.loc[("A", "W_A"), "congestion_index"] == a["congestion_index"].max() > 2
    n = res.network.iloc[0]
    assert 1 < n["congestion_index"] < a["congestion_index"].max()
    # (the index also counts each arriving vehicle's estimated last step, which veh_s leaves out)
    assert n["congestion_index"] == pytest.approx(n["veh_s"] / (n["veh_s"] - n["delay_s"]), rel=0.03)


@pytest.mark.sumo
def test_spillback_and_blocked_green_are_counted(tmp_path: Path) -> None:
    """B passes W->E 10 s of 66: the 45 m link A_B (6 slots) fills to its upstream end and A's W->E
    green is shown into it. The full steps of A_B_0, recomputed from SUMO's netstate dump with the
    documented rule, give the same spillback events and time; and A's blocked green is W->E green
    time while A_B_0 was full (SUMO's own signal states). With B's W->E green 50 s nothing spills."""
    dump, states, add = tmp_path / "dump.xml", tmp_path / "states.xml", tmp_path / "tls.add.xml"
    add.write_text(f'<additional><timedEvent type="SaveTLSStates" source="A" dest="{states}"/></additional>')
    res = _run(tmp_path, (10.0, 50.0), "--netstate-dump", str(dump), "-a", str(add))
    a = res.approaches.set_index(["junction_id", "approach"])
    from mobility.network import SignalNetwork

    net = SignalNetwork.load(tmp_path / "t.net.xml")
    full = _full_steps(dump, "A_B_0", net.lane_length("A_B_0"), 100.0)
    runs = _runs(full)
    events = [r for r in runs if r >= SPILLBACK_MIN_S]
    assert len(events) >= 3
    ab = a.loc[("B", "A_B")]
    assert ab["spillback_events"] == len(events)
    assert ab["spillback_s"] == pytest.approx(sum(events))
    # blocked green at A: W->E shows green while A_B_0 is full (state at the same step)
    we = net.junctions["A"].incoming_lanes.index("W_A_0")
    shown = {float(e.get("time")): e.get("state") for e in ET.parse(states).getroot().iter("tlsState")}
    blocked = sum(1 for t in full if shown[t][we] in "Gg")  # both outputs label a step alike
    assert a.loc[("A", "W_A"), "blocked_green_s"] == blocked
    assert a.loc[("A", "W_A"), "blocked_green_s"] > 30
    assert res.junctions.set_index("junction_id").loc["A", "blocked_green_s"] == a.loc[("A", "W_A"), "blocked_green_s"]
    # B passing W->E for 50 s of 66: the link never fills
    (tmp_path / "ok").mkdir()
    ok = _run(tmp_path / "ok", (50.0, 10.0))
    ja = ok.junctions.set_index("junction_id")
    assert ja.loc["B", "spillback_events"] == 0 and ja.loc["A", "blocked_green_s"] == 0


@pytest.mark.sumo
def test_corridor_every_served_vehicle_has_its_approach_and_movement() -> None:
    """The bundled corridor (multi-lane approaches, turn bays, two-part left turns): every served
    vehicle is put on a signalised approach and one of its movements (none on ``(none)`` or
    ``(unresolved)``), and the rows still add up to the junctions."""
    from mobility import load_scenario

    res = run(load_scenario("corridor").replace(end_s=900.0, warmup_s=300.0), "static", seed=1)
    a, m = res.approaches, res.movements
    assert a.loc[a["approach"] == "(none)", "vehicles"].sum() == 0
    assert m.loc[m["to_edge"] == "(unresolved)", "vehicles"].sum() == 0
    j = res.junctions[res.junctions["junction_id"] != UNATTRIBUTED].set_index("junction_id")
    assert j["vehicles"].sum() > 500
    for col in ("vehicles", "delay_s", "stops", "co2_kg"):
        np.testing.assert_allclose(a.groupby("junction_id")[col].sum().loc[j.index], j[col], rtol=1e-9, err_msg=col)
        np.testing.assert_allclose(m[col].sum(), a[col].sum(), rtol=1e-9, err_msg=col)
    # left turns are their own movements: J1's eastbound approach serves three outgoing edges
    assert set(m[(m["junction_id"] == "J1") & (m["approach"] == "W_J1_bay") & (m["vehicles"] > 0)]["to_edge"]) == \
        {"J1_J2", "J1_N1", "J1_S1"}
    c = res.corridor
    assert (c["congestion_index"] == c["travel_time_s_mean"] / (c["travel_time_s_mean"] - c["delay_s_per_veh"])).all()
    assert (c["congestion_index"] > 1).all()


# -- pure logic (no SUMO run) -----------------------------------------------------------------


def test_full_lane_needs_one_queue_from_end_to_start() -> None:
    """A 60 m lane: halted fronts at 59, 50, 41, 32, 23, 14 m form one queue from the stop line to
    the start (gaps <= 15 m, the last within 15 m of the start); with a 20 m hole, or a queue that
    does not reach the start, or one that starts away from the stop line, the lane is not full."""
    from mobility.approaches import _full

    def full(pos: list[float]) -> bool:
        n = len(pos)
        t, g = _full(np.zeros(n), np.zeros(n, dtype=np.int64), np.array(pos), np.full(n, 60.0))
        return len(t) == 1

    assert full([59, 50, 41, 32, 23, 14])
    assert full([14, 41, 59, 23, 50, 32])  # row order does not matter
    assert not full([59, 50, 41, 21, 12])  # a 20 m hole
    assert not full([59, 50, 41, 32, 23])  # the last is 23 m from the start
    assert not full([40, 31, 22, 13])  # 20 m of free lane before the stop line
    # two 20 m lanes and two steps at once: (t=0, lane 1) has a 17 m hole, (t=1, lane 0) 16 m free at the
    # stop line; only (t=1, lane 1) is full
    t, g = _full(np.array([0, 0, 1, 1, 1]), np.array([1, 1, 0, 1, 1]), np.array([19.0, 2.0, 4.0, 18.0, 9.0]),
                 np.full(5, 20.0))
    assert (t.tolist(), g.tolist()) == ([1], [1])


def test_crossings_find_approach_movement_and_time(one_junction: Path) -> None:
    """Vehicle 0 drives W_C -> internal lane -> C_E; vehicle 1 skips the internal lane between two
    samples; vehicle 2 is still on W_C at the end; vehicle 3 only drives on C_E (departed there)."""
    from mobility.approaches import ApproachMap, Crossings
    from mobility.metrics import ZoneMap
    from mobility.network import SignalNetwork

    net = SignalNetwork.load(one_junction)
    zm = ZoneMap.build(net, ZoneSpec(100, 100))
    am = ApproachMap(net, zm)
    li = zm.lane_index
    via = [lk.via[0] for lk in net.junctions["C"].links if lk.in_lane == "W_C_0"][0]
    rows = [(0, 1, "W_C_0"), (0, 2, via), (0, 3, "C_E_0"), (1, 1, "W_C_0"), (1, 2, "C_E_0"), (2, 1, "W_C_0"),
            (2, 2, "W_C_0"), (3, 1, "C_E_0"), (3, 2, "C_E_0")]
    rows.sort(key=lambda r: r[1])
    c = Crossings(am)
    half = 5  # two batches, the first ending inside vehicle 0's crossing
    for part in (rows[:half], rows[half:]):
        c.add(np.array([r[0] for r in part]), np.array([float(r[1]) for r in part]), np.array([li[r[2]] for r in part]))
    c.finish()
    got = sorted(zip(c.veh.tolist(), (c.key & ((1 << 37) - 1)).tolist(), c.appr.tolist(), c.mov.tolist()))
    w = am.appr_edge.index("W_C")
    m = [i for i, (a, e) in enumerate(zip(am.mov_appr, am.mov_edge)) if a == w and e == "C_E"][0]
    assert got == [(0, 3000, w, m), (1, 2000, w, m)]
    # a step on the approach belongs to the next crossing, one on the exit to the last one
    a, mv = c.lookup(np.array([0, 0, 2]), np.array([1.0, 3.0, 2.0]), np.zeros(3, dtype=np.int64),
                     np.array([True, False, True]))
    assert a.tolist() == [w, w, -1] and mv.tolist() == [m, m, -1]
