"""coordinated-actuated: what it does with calls, gaps and force-offs, on the bundled corridor's plan.

The controller is reset on the real corridor network with the demand SUMO routes for the bundled
scenario (as a run does), then fed observations whose calls (vehicles on a stage's lanes) and
detector gaps are chosen: the stage it serves is then predicted exactly. Greens switch at once here
(the actuator's yellow and all-red are tested in test_signals.py).
"""

from __future__ import annotations


import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mobility.controllers import GreenPhase, JunctionObservation, Observation, make
from mobility.controllers.coordinated_actuated import city_cycle, close_signals
from mobility.controllers.coordination.greenwave import corridor_path, through_load
from mobility.inputs.demand import Demand, estimate_demand
from mobility.network import SignalNetwork
from mobility.scenario import Period, load_scenario

MIN_GREEN_S = 7.0  # the controller's default


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> SignalNetwork:
    sc = load_scenario("corridor")
    net = SignalNetwork.load(sc.net_file)
    return net.with_demand(estimate_demand(sc, net, tmp_path_factory.mktemp("demand")))


def _drive(net: SignalNetwork, count: float, gap_s: float, horizon_s: float = 600.0) -> dict[str, list[tuple[float, int]]]:
    """Feed the controller every second for ``horizon_s``: every incoming lane holds ``count``
    vehicles and every detector reports a gap of ``gap_s``. Returns, per junction, (time, stage)
    at each change of the stage it serves (greens switch immediately)."""
    c = make("coordinated-actuated")
    c.reset(net, 1)
    green: dict[str, int | None] = {j: None for j in net.junction_ids}
    since = {j: 0.0 for j in net.junction_ids}
    changes: dict[str, list[tuple[float, int]]] = {j: [] for j in net.junction_ids}
    for t in np.arange(0.0, horizon_s, 1.0):
        obs = {}
        for jid in net.junction_ids:
            j = net.junctions[jid]
            n = len(j.incoming_lanes)
            obs[jid] = JunctionObservation(
                jid, j.incoming_lanes, np.zeros(n), np.full(n, count), np.full(n, 10.0),
                phase=0, green=green[jid], time_in_phase_s=float(t) - since[jid],
                detector_gap_s=np.full(n, gap_s))
        actions = c.act(Observation(float(t), obs))
        for jid, a in actions.items():
            assert isinstance(a, GreenPhase)
            if a.index != green[jid]:
                green[jid], since[jid] = a.index, float(t)
                changes[jid].append((float(t), a.index))
    return changes


def test_no_calls_hold_the_coordinated_stage(corridor: SignalNetwork) -> None:
    """With no vehicle on any lane no side stage is called: each signal serves one stage, all the time."""
    changes = _drive(corridor, count=0.0, gap_s=np.inf)
    for jid, ch in changes.items():
        assert len(ch) == 1 and ch[0][0] == 0.0, (jid, ch)


def test_gap_out_returns_early_after_the_minimum_green(corridor: SignalNetwork) -> None:
    """Calls everywhere but no vehicle over the detectors (gap inf): every side stage gaps out as
    soon as its minimum green has run, and the time goes back to the coordinated stage."""
    changes = _drive(corridor, count=1.0, gap_s=np.inf)
    for jid, ch in changes.items():
        coord = ch[0][1]
        side = [(t, k, nxt_t) for (t, k), (nxt_t, _) in zip(ch, ch[1:]) if k != coord]
        assert side, jid  # the side streets are served
        assert all(nxt_t - t == MIN_GREEN_S for t, _, nxt_t in side), (jid, side)


def test_force_offs_keep_the_cycle(corridor: SignalNetwork) -> None:
    """Continuous demand (gap 0: every side stage would extend forever): the force-offs end each side
    stage so that the coordinated stage starts at the same point of the common cycle, every cycle;
    and the coordinated stage is never cut before its force-off (early return only lengthens it)."""
    gw = make("green-wave", weight_inbound=1.0, objective="maxband", lead_lag=False)
    gw.reset(corridor, 1)
    assert gw.plan_ is not None
    busy = _drive(corridor, count=5.0, gap_s=0.0, horizon_s=900.0)
    idle = _drive(corridor, count=1.0, gap_s=np.inf, horizon_s=900.0)
    for jid in gw.plan_.corridor.junctions:
        coord = busy[jid][0][1]
        starts = [t for t, k in busy[jid][1:] if k == coord]
        assert len(starts) >= 3, (jid, busy[jid])
        assert set(np.diff(starts)) == {gw.plan_.cycle_s}, (jid, starts)
        # under continuous demand the side stages take their whole windows: the coordinated green is
        # the shortest it can be; gap-outs give it back, never take from it
        held_busy = min(b - a for (a, k), (b, _) in zip(busy[jid][1:], busy[jid][2:]) if k == coord)
        held_idle = min(b - a for (a, k), (b, _) in zip(idle[jid][1:], idle[jid][2:]) if k == coord)
        assert held_idle > held_busy, jid


# ---------------------------------------------------------------------------------------------
# the corridor of a network without a declared one, and the fallbacks on a city's own control

#: the arterial W-E through A1, A2, A3 (200 m apart: the longest chain) and the street S-N through
#: A2 and B, 50 m north of A2 (two signals)
_NODES = {"W": (-200, 0), "A1": (0, 0), "A2": (200, 0), "A3": (400, 0), "E": (600, 0),
          "S": (200, -200), "B": (200, 50), "N": (200, 250)}
_SIGNALS = ("A1", "A2", "A3", "B")
_ROADS = [("W", "A1"), ("A1", "A2"), ("A2", "A3"), ("A3", "E"), ("S", "A2"), ("A2", "B"), ("B", "N")]


@pytest.fixture(scope="module")
def two_streets(tmp_path_factory: pytest.TempPathFactory) -> SignalNetwork:
    """The hand-built network above (one lane each way, 50 km/h, netconvert's fixed-time programs)."""
    return _two_streets(tmp_path_factory.mktemp("two_streets"), "static")


@pytest.fixture(scope="module")
def two_streets_actuated(tmp_path_factory: pytest.TempPathFactory) -> SignalNetwork:
    """The same network with vehicle-actuated programs (as a city's own control)."""
    return _two_streets(tmp_path_factory.mktemp("two_streets_actuated"), "actuated")


def _two_streets(d: Path, tls_type: str) -> SignalNetwork:
    import sumo

    kind = {n: ' type="traffic_light"' if n in _SIGNALS else "" for n in _NODES}
    nodes = "".join(f'<node id="{n}" x="{x}" y="{y}"{kind[n]}/>' for n, (x, y) in _NODES.items())
    edges = "".join(f'<edge id="{a}_{b}" from="{a}" to="{b}" numLanes="1" speed="13.89"/>'
                    f'<edge id="{b}_{a}" from="{b}" to="{a}" numLanes="1" speed="13.89"/>' for a, b in _ROADS)
    (d / "n.nod.xml").write_text(f"<nodes>{nodes}</nodes>")
    (d / "n.edg.xml").write_text(f"<edges>{edges}</edges>")
    net = d / "n.net.xml"
    subprocess.run([str(Path(sumo.SUMO_HOME) / "bin" / "netconvert"), "-n", str(d / "n.nod.xml"), "-e",
                    str(d / "n.edg.xml"), "--no-turnarounds", "true", "--tls.default-type", tls_type, "-o", str(net)],
                   check=True, capture_output=True)
    return SignalNetwork.load(net)


def _demand(net: SignalNetwork, street_vph: float, arterial_vph: float) -> Demand:
    """One hour; every link from a street (S-N) edge carries ``street_vph``, every other ``arterial_vph``."""
    street = {f"{a}_{b}" for a, b in _ROADS[4:]} | {f"{b}_{a}" for a, b in _ROADS[4:]}
    vph = {jid: np.array([[street_vph if net.lanes[lk.in_lane].edge in street else arterial_vph
                           for lk in j.links]]) for jid, j in net.junctions.items()}
    return Demand((Period("all", 0.0, 3600.0),), vph)


def test_corridor_without_demand_is_the_longest_chain(two_streets: SignalNetwork) -> None:
    assert set(corridor_path(two_streets).junctions) == {"A1", "A2", "A3"}


def test_corridor_follows_the_demand_not_the_length(two_streets: SignalNetwork) -> None:
    """The street through A2 and B carries 1000 veh/h, the arterial 100: 2 signals × 1000 beats
    3 × 100, so the busy street is the corridor; with the arterial busier it is the arterial again."""
    busy_street = two_streets.with_demand(_demand(two_streets, 1000.0, 100.0))
    c = corridor_path(busy_street)
    assert set(c.junctions) == {"A2", "B"}
    assert through_load(busy_street, c.outbound) == pytest.approx(2000.0)
    busy_arterial = two_streets.with_demand(_demand(two_streets, 100.0, 1000.0))
    assert set(corridor_path(busy_arterial).junctions) == {"A1", "A2", "A3"}
    # no demand on any chain: the old rule
    assert set(corridor_path(two_streets.with_demand(_demand(two_streets, 0.0, 0.0))).junctions) == {"A1", "A2", "A3"}


def test_close_signals_pairs_only_short_links(two_streets: SignalNetwork) -> None:
    near = close_signals(two_streets, 60.0)
    assert near["A2"] == {"B"} and near["B"] == {"A2"}
    assert near["A1"] == set() and near["A3"] == set()
    assert close_signals(two_streets, 10.0)["A2"] == set()


def test_only_the_corridor_is_replaced(two_streets: SignalNetwork) -> None:
    """keep_actuated (default): the signals off the corridor keep their own program; False: they get
    isolated plans."""
    net = two_streets.with_demand(_demand(two_streets, 1000.0, 100.0))
    c = make("coordinated-actuated")
    c.reset(net, 1)
    assert set(c.act(_observe(net, 0.0)).keys()) == {"A2", "B"}
    everyone = make("coordinated-actuated", keep_actuated=False)
    everyone.reset(net, 1)
    assert set(everyone.act(_observe(net, 0.0)).keys()) == set(_SIGNALS)


def _observe(net: SignalNetwork, t: float) -> Observation:
    obs = {}
    for jid in net.junction_ids:
        j = net.junctions[jid]
        n = len(j.incoming_lanes)
        obs[jid] = JunctionObservation(jid, j.incoming_lanes, np.zeros(n), np.zeros(n), np.full(n, 10.0),
                                       phase=0, green=None, time_in_phase_s=0.0, detector_gap_s=np.full(n, np.inf))
    return Observation(t, obs)


def test_city_cycle_is_the_corridor_programs_common_cycle() -> None:
    def net(**cycles: float) -> SignalNetwork:
        return SimpleNamespace(junctions={j: SimpleNamespace(cycle_s=c) for j, c in cycles.items()})  # type: ignore[return-value]

    assert city_cycle(net(a=90, b=90, c=108, d=90), "abcd", 40, 150) == (90.0, {"c"})
    assert city_cycle(net(a=90, b=95, c=90), "abc", 40, 150) == (90.0, set())  # 95 s is within 10 %
    assert city_cycle(net(a=60, b=90, c=120), "abc", 40, 150) == (None, set())  # no common cycle
    assert city_cycle(net(a=200, b=200), "ab", 40, 150) == (None, set())  # outside the bounds


def test_on_the_citys_actuated_control_the_corridor_runs_the_citys_cycle_and_splits(
        two_streets_actuated: SignalNetwork) -> None:
    """Every program actuated: the corridor (A2, B) runs the programs' common cycle, and each stage's
    window (force-off to force-off) is the program's own green plus its own transition phases, not
    Webster's split of the (very unequal) demand."""
    net = two_streets_actuated.with_demand(_demand(two_streets_actuated, 1000.0, 100.0))
    own_cycle = net.junctions["A2"].cycle_s
    assert own_cycle == net.junctions["B"].cycle_s
    c = make("coordinated-actuated")
    c.reset(net, 1)
    assert c.report()["cycle_s"] == own_cycle and c.report()["kept_own_program"] == []
    for jid in ("A2", "B"):
        j, plan = net.junctions[jid], c._plans[jid]  # type: ignore[attr-defined]
        assert plan["cycle"] == pytest.approx(own_cycle)
        ends = np.sort(plan["force_off"])
        windows = np.diff(np.concatenate([ends, [ends[0] + own_cycle]]))
        k = [int(np.argmin(np.abs(plan["force_off"] - e))) for e in ends]  # stage of each end, in order
        # window after stage k's force-off = transition + next stage's own green
        for a, b, w in zip(k, k[1:] + k[:1], windows):
            gi, gn = j.green_phases[a], j.green_phases[b]
            trans = sum(j.phases[i % len(j.phases)].duration for i in range(gi + 1, gn + (len(j.phases) if gn <= gi else 0)))
            assert w == pytest.approx(trans + j.phases[gn].duration), (jid, a, b)
    webster = make("coordinated-actuated", cycle_s=own_cycle)  # a given cycle: Webster's splits
    webster.reset(net, 1)
    assert not np.allclose(webster._plans["A2"]["force_off"], c._plans["A2"]["force_off"])  # type: ignore[attr-defined]
