"""The cyclic-flow-profile model (mobility.controllers.coordination.platoon): pure numpy, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from mobility.controllers.coordination.greenwave import Corridor, Direction, achieved_band, maxband
from mobility.controllers.coordination.platoon import ArterialModel, Stage, Window, disperse, green_share, optimise_offsets, queue


def test_green_share_counts_the_green_seconds_and_wraps_around_the_cycle() -> None:
    g = green_share(Window(80.0, 30.0), 100.0, 100)
    assert g.sum() == pytest.approx(30.0)
    assert g[80:].all() and g[:10].all() and not g[10:80].any()
    half = green_share(Window(10.5, 20.0), 60.0, 60)
    assert half[10] == pytest.approx(0.5) and half[30] == pytest.approx(0.5) and half.sum() == pytest.approx(20.0)


def test_queue_matches_the_deterministic_queue_of_uniform_arrivals() -> None:
    """Uniform arrivals q at a signal with red R and saturation flow s: the queue grows to q R during
    red and clears in q R / (s - q); every vehicle arriving during red or before the queue clears
    stops, so the stop share is (R + q R / (s - q)) / C (Webster's deterministic case)."""
    C, R, q, s = 100, 40, 0.3, 1.0  # veh/s
    green = np.r_[np.zeros(R), np.ones(C - R)][None, :]
    dep, stops, qlen, from_q = queue(np.full((1, C), q), green * s)
    clear = q * R / (s - q)
    assert qlen.max() == pytest.approx(q * R)
    assert dep.sum() == pytest.approx(q * C)  # conservation
    assert stops.sum() / (q * C) == pytest.approx((R + clear) / C, abs=0.02)
    assert from_q.sum() == pytest.approx(q * R + q * clear, abs=0.5)  # left from standstill
    # partial stops: a vehicle held less than full_stop_delay counts as part of a stop
    _, partial, _, _ = queue(np.full((1, C), q), green * s, full_stop_delay_cells=10.0)
    assert partial.sum() < stops.sum()


def test_dispersion_conserves_vehicles_and_without_spread_is_a_pure_lag() -> None:
    p = np.zeros((1, 60))
    p[0, 5:15] = 1.0
    d = disperse(p, 20.0)
    assert d.sum() == pytest.approx(10.0)
    assert d.max() < 1.0  # the platoon spreads
    lag = disperse(p, 20.0, alpha=1e-9, beta=1.0)
    assert np.allclose(lag, np.roll(p, 20), atol=1e-6)


def _two_signals(travel_s: float) -> ArterialModel:
    """A one-way pair: 1,000 veh/h through two signals with half-cycle greens, 60 s apart in time."""
    w = Window(0.0, 30.0)
    stages = (Stage(0, w, 1000.0, 3600.0), Stage(1, w, 1000.0, 3600.0, travel_s, (), 1000.0))
    return ArterialModel(60.0, 2, {"outbound": stages}, alpha=1e-6, beta=1.0)


def test_the_offset_equal_to_the_travel_time_gives_a_green_wave() -> None:
    m = _two_signals(20.0)
    s = m.evaluate(np.array([[0.0, 20.0], [0.0, 50.0]]))
    rate = s.stops_per_veh["outbound"]
    # the entry stops the red arrivals and those before its queue clears: (R + q R / (s - q)) / C;
    # in the wave the second signal stops nobody; half a cycle off, the platoon meets red
    q = 1000 / 3600
    entry = (30 + q * 30 / (1 - q)) / 60
    assert rate[0] == pytest.approx(entry + 0.0, abs=0.02)
    assert rate[1] > rate[0] + 0.4
    offsets, modes, f = optimise_offsets(m, [[0.0, 45.0]])
    assert offsets[0] == 0.0 and offsets[1] == pytest.approx(20.0, abs=1.0) and list(modes) == [0, 0]
    assert f == pytest.approx(float(s.stops_vph[0]), rel=0.02)


def test_achieved_band_inverts_maxband() -> None:
    d_out = Direction(("A", "B", "C"), ("a", "b", "c"), ((0,), (0,), (0,)), (300.0, 450.0), (30.0, 45.0), ())
    d_in = Direction(("C", "B", "A"), ("c", "b", "a"), ((1,), (1,), (1,)), (450.0, 300.0), (45.0, 30.0), ())
    c = Corridor(("A", "B", "C"), d_out, d_in)
    red = [0.45, 0.5, 0.4]
    bw = maxband(c, 80.0, red, red, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], speed_m_s=10.0)
    windows = [(0.0, (1 - r) * 80.0) for r in red]
    got = achieved_band(c, 80.0, windows, windows, bw.offsets_s, bw.travel_out_s, bw.travel_in_s)
    assert got.b_out_s == pytest.approx(bw.b_out_s, abs=0.1)
    assert got.b_in_s == pytest.approx(bw.b_in_s, abs=0.1)
    shifted = dict(bw.offsets_s, B=(bw.offsets_s["B"] + 40.0) % 80.0)
    worse = achieved_band(c, 80.0, windows, windows, shifted, bw.travel_out_s, bw.travel_in_s)
    assert worse.b_out_s + worse.b_in_s < got.b_out_s + got.b_in_s


def test_the_hill_climb_also_picks_the_program_mode_that_fits_the_platoon() -> None:
    """Signal 1 has an alternative program whose green starts 25 s later. With the offsets pinned to
    the travel time by the first signal's reference, the platoon arrives 20 s into signal 1's cycle:
    the climb must choose whichever (offset, mode) pair puts it in green, and never model worse than
    mode 0 alone."""
    w = Window(0.0, 30.0)
    stages = (Stage(0, w, 1000.0, 3600.0),
              Stage(1, w, 1000.0, 3600.0, 20.0, (), 1000.0, alt_window=Window(25.0, 30.0)))
    m = ArterialModel(60.0, 2, {"outbound": stages}, alpha=1e-6, beta=1.0)
    assert m.modes() == [False, True]
    s = m.evaluate(np.array([[0.0, 20.0], [0.0, 20.0]]), np.array([[0, 0], [0, 1]]))
    rate = s.stops_per_veh["outbound"]
    assert rate[1] > rate[0] + 0.3  # mode 1 with the same offset: the platoon meets red
    offsets, modes, f = optimise_offsets(m, [[0.0, 20.0]], [[0, 1]])
    # either mode 0 at offset 20 or mode 1 at offset 20 - 25 = 55 (mod 60) makes the wave
    assert (modes[1], round(offsets[1])) in {(0, 20), (1, 55)}
    assert f == pytest.approx(float(s.stops_vph[0]), rel=0.02)
