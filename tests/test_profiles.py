"""Time-of-day profiles: per-period scaling, the tidal AM/PM switch, annual hours, profile files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mobility.errors import ScenarioError
from mobility.inputs.profiles import (DEFAULT_PROFILE, FlowSet, Profile, ProfilePeriod, Tidal, apply_profile,
                               default_profile, flow_factors, hours_per_year, load_profile)
from mobility.scenario import Flow, load_scenario

from .conftest import write_sumocfg

INBOUND = Tidal(inbound=FlowSet(origins=frozenset({"W0_G00"})), outbound=FlowSet(origins=frozenset({"E0_G02"})))


@pytest.fixture(scope="module")
def tidal_grid():
    """The grid with three flows: inbound 600 veh/h, outbound 400 veh/h (a 60/40 AM peak), cross 100."""
    sc = load_scenario("grid")
    flows = (Flow("W0_G00", "G02_E0", (600.0,)), Flow("E0_G02", "G00_W0", (400.0,)),
             Flow("N0_G00", "G20_S0", (100.0,)))
    return sc.replace(flows=flows)


def vph(sc) -> list[float]:
    return [f.vph[0] for f in sc.flows]


def test_default_profile_hours_cover_the_year() -> None:
    h = hours_per_year()
    assert h == {"am_peak": 500.0, "inter_peak": 3150.0, "pm_peak": 750.0, "evening": 1095.0, "night": 3265.0}
    assert sum(h.values()) == 365 * 24
    h2 = hours_per_year(DEFAULT_PROFILE, weekdays=5, weekend_days=2)  # one week
    assert sum(h2.values()) == 7 * 24
    assert h2["am_peak"] == 10 and h2["night"] == 5 * 8 + 2 * 11


def test_scaled_vph_without_tidal_directions(tidal_grid) -> None:
    out = apply_profile(tidal_grid, DEFAULT_PROFILE)
    assert list(out) == ["am_peak", "inter_peak", "pm_peak", "evening", "night"]
    assert vph(out["am_peak"]) == [600.0, 400.0, 100.0]  # the base period is the scenario itself
    assert vph(out["inter_peak"]) == pytest.approx([420.0, 280.0, 70.0])
    assert vph(out["night"]) == pytest.approx([72.0, 48.0, 12.0])
    assert out["evening"].name == "grid@evening"
    assert out["evening"].net_file == tidal_grid.net_file and out["evening"].end_s == tidal_grid.end_s
    assert vph(tidal_grid) == [600.0, 400.0, 100.0]  # the base scenario is unchanged


def test_tidal_swap_between_am_and_pm(tidal_grid) -> None:
    out = apply_profile(tidal_grid, default_profile(INBOUND))
    assert vph(out["am_peak"]) == pytest.approx([600.0, 400.0, 100.0])
    # PM: the 60/40 split turns round; the undirected flow only follows the multiplier
    assert vph(out["pm_peak"]) == pytest.approx([400.0, 600.0, 100.0])
    # inter-peak: directions balanced, total = multiplier x base total
    assert vph(out["inter_peak"]) == pytest.approx([350.0, 350.0, 70.0])
    assert vph(out["night"]) == pytest.approx([0.12 * 500, 0.12 * 500, 12.0])
    # tidal given as an argument overrides the profile's (here: none)
    assert vph(apply_profile(tidal_grid, DEFAULT_PROFILE, INBOUND)["pm_peak"]) == pytest.approx([400.0, 600.0, 100.0])


def test_tidal_from_a_balanced_base(tidal_grid) -> None:
    """Base = inter-peak: the AM peak becomes 60/40 inbound, the PM 40/60, scaled by 1/0.7."""
    balanced = tidal_grid.replace(flows=(Flow("W0_G00", "G02_E0", (350.0,)), Flow("E0_G02", "G00_W0", (350.0,))))
    prof = default_profile(INBOUND).replace(base_period="inter_peak")
    f = flow_factors(balanced, prof)
    assert f["inter_peak"] == (1.0, 1.0)
    assert f["am_peak"] == pytest.approx((1.2 / 0.7, 0.8 / 0.7))
    assert f["pm_peak"] == pytest.approx((0.8 / 0.7, 1.2 / 0.7))


def test_every_period_keeps_every_demand_period(tidal_grid) -> None:
    sc = tidal_grid.replace(flows=(Flow("W0_G00", "G02_E0", (600.0, 300.0)),),
                            periods=(*tidal_grid.periods, dataclasses.replace(tidal_grid.periods[0], name="b")))
    out = apply_profile(sc, default_profile(INBOUND))
    assert out["pm_peak"].flows[0].vph == pytest.approx((400.0, 200.0))


def test_sumocfg_scenarios_scale_as_a_whole(tmp_path: Path, one_junction: Path) -> None:
    import shutil

    net = tmp_path / one_junction.name
    shutil.copyfile(one_junction, net)
    routes = '<routes><flow id="f" begin="0" end="600" from="W_C" to="C_E" vehsPerHour="300"/></routes>'
    cfg = write_sumocfg(tmp_path, net, routes, 600)
    sc = load_scenario(cfg)
    out = apply_profile(sc, DEFAULT_PROFILE)
    assert out["am_peak"].sumo_args == ()
    assert out["night"].sumo_args[-2:] == ("--scale", "0.12")
    with pytest.raises(ScenarioError, match="tidal direction switching needs a TOML scenario"):
        apply_profile(sc, default_profile(INBOUND))


def test_flow_in_both_direction_sets_is_an_error(tidal_grid) -> None:
    both = Tidal(FlowSet(origins=frozenset({"W0_G00"})), FlowSet(destinations=frozenset({"G02_E0"})))
    with pytest.raises(ScenarioError, match="W0_G00 -> G02_E0 matches both"):
        apply_profile(tidal_grid, default_profile(both))


def period(name: str, mult: float, wd: tuple, we: tuple = ()) -> ProfilePeriod:
    return ProfilePeriod(name, mult, wd, we)


@pytest.mark.parametrize("periods, base, message", [
    ((period("a", 1, ((0, 12),), ((0, 24),)), period("b", 1, ((11, 24),))), "a",
     "period 'b': weekday_hours span \\[11, 24\\) overlaps the previous span"),
    ((period("a", 1, ((0, 12),), ((0, 24),)), period("b", 1, ((13, 24),))), "a", "leaves 12–13 h uncovered"),
    ((period("a", 1, ((0, 24),), ((0, 20),)),), "a", "weekend_hours cover 0–20 h only"),
    ((period("a", 0, ((0, 24),), ((0, 24),)),), "a", "period 'a': multiplier: expected a number > 0, got 0"),
    ((period("a", 1, ((0, 24),), ((0, 24),)),), "zz", "base_period 'zz' is not a period"),
    ((period("a", 1, ((20, 30),), ((0, 24),)),), "a", "expected 0 <= start < end <= 24"),
])
def test_invalid_profiles(periods: tuple, base: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Profile("p", periods, base)


def test_load_profile_file(tmp_path: Path, tidal_grid) -> None:
    p = tmp_path / "city.toml"
    p.write_text("""
name = "city"
base_period = "am"
peak_share = 0.7
[[periods]]
name = "am"
multiplier = 1.0
weekday_hours = [[0, 12]]
tidal = "inbound"
[[periods]]
name = "pm"
multiplier = 0.5
weekday_hours = [[12, 24]]
weekend_hours = [[0, 24]]
tidal = "outbound"
[tidal.inbound]
origins = ["W0_G00"]
[tidal.outbound]
destinations = ["G00_W0"]
""")
    prof = load_profile(p)
    assert prof.name == "city" and prof.peak_share == 0.7 and prof.names == ("am", "pm")
    assert prof.tidal == Tidal(FlowSet(origins=frozenset({"W0_G00"})), FlowSet(destinations=frozenset({"G00_W0"})))
    out = apply_profile(tidal_grid, prof)
    # pm: inbound 600 * 0.5 * (0.3/0.7), outbound 400 * 0.5 * (0.7/0.3), undirected 100 * 0.5
    assert vph(out["pm"]) == pytest.approx([600 * 0.5 * 0.3 / 0.7, 400 * 0.5 * 0.7 / 0.3, 50.0])
    assert hours_per_year(prof, 250, 115) == {"am": 3000.0, "pm": 3000.0 + 115 * 24}


@pytest.mark.parametrize("text, message", [
    ('[[periods]]\nname = "a"\nmultiplier = 1\nweekday_hours = [[0, 24]]\nweekend_hours = [[0, 24]]\ncolour = 1\n',
     "field 'periods\\[0\\].colour': unknown field"),
    ('[[periods]]\nname = "a"\nweekday_hours = [[0, 24]]\n', "field 'periods\\[0\\].multiplier': missing"),
    ('[[periods]]\nname = "a"\nmultiplier = 1\nweekday_hours = [0, 24]\n', "field 'periods\\[0\\].weekday_hours'"),
    ('base_period = "a"\n[[periods]]\nname = "a"\nmultiplier = 1\nweekday_hours = [[0, 24]]\n'
     'weekend_hours = [[0, 24]]\n[tidal.inbound]\norigin = ["x"]\n', "field 'tidal.inbound.origin': unknown field"),
    ('[[periods]]\nname = "a"\nmultiplier = 1\nweekday_hours = [[0, 24]]\nweekend_hours = [[0, 24]]\n',
     "bad.toml: profile 'bad': base_period 'am_peak' is not a period"),
])
def test_bad_profile_files(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_profile(p)


def test_default_profile_documented_shares() -> None:
    """The module doc says: peak hour ≈ 7.7 % of a weekday's traffic, weekend day ≈ 75 % of a weekday."""
    weekday = sum(p.multiplier * p.weekday_h for p in DEFAULT_PROFILE.periods)
    weekend = sum(p.multiplier * p.weekend_h for p in DEFAULT_PROFILE.periods)
    assert 1 / weekday == pytest.approx(0.077, abs=0.0005)
    assert weekend / weekday == pytest.approx(0.75, abs=0.005)
