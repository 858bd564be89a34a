"""coordinated-actuated: what it does with calls, gaps and force-offs, on the bundled corridor's plan.

The controller is reset on the real corridor network with the demand SUMO routes for the bundled
scenario (as a run does), then fed observations whose calls (vehicles on a stage's lanes) and
detector gaps are chosen: the stage it serves is then predicted exactly. Greens switch at once here
(the actuator's yellow and all-red are tested in test_signals.py).
"""

from __future__ import annotations


import numpy as np
import pytest

from mobility.controllers import GreenPhase, JunctionObservation, Observation, make
from mobility.inputs.demand import estimate_demand
from mobility.network import SignalNetwork
from mobility.scenario import load_scenario

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
