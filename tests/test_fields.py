"""The number checks of user input (:func:`mobility.fields.is_number_in`) and the parameters that use
them: a bool, NaN, inf or a string is never "a number", and the bounds are open or closed as said."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from mobility.errors import MobilityError
from mobility.fields import is_number_in


@pytest.mark.parametrize("v", [True, False, math.nan, math.inf, -math.inf, "1", None, [1], 1j])
def test_not_a_finite_number_is_never_in_range(v: Any) -> None:
    assert not is_number_in(v)


@pytest.mark.parametrize("v", [0, 1, 0.5, np.float64(0.5), np.int64(1), Fraction(1, 2)])
def test_real_numbers_in_range(v: Any) -> None:
    assert is_number_in(v, 0, 1)


def test_bounds_closed_unless_open() -> None:
    assert is_number_in(0, 0) and not is_number_in(0, 0, low_open=True) and is_number_in(1e-12, 0, low_open=True)
    assert is_number_in(1, 0, 1) and not is_number_in(1, 0, 1, high_open=True) and is_number_in(0.999, 0, 1, high_open=True)
    assert not is_number_in(-1e-12, 0) and not is_number_in(1 + 1e-12, 0, 1)
    assert is_number_in(-1e300) and is_number_in(1e300)  # no bounds: any finite number


def _controller(spec: str, **params: Any) -> Callable[[], Any]:
    def build() -> Any:
        from mobility.controllers import make

        return make(spec, **params)
    return build


def _tsp(**params: Any) -> Callable[[], Any]:
    def build() -> Any:
        from mobility.controllers.tsp import Tsp

        return Tsp.from_params(params, "spec")
    return build


def _hours(**days: Any) -> Callable[[], Any]:
    def build() -> Any:
        from mobility.inputs.profiles import hours_per_year

        return hours_per_year(**days)
    return build


# every call site of is_number_in: a value it refuses, the one-line message (unchanged wording); NaN
# and inf in a controller's parameters are refused before, by Controller ("expected a finite number")
REFUSED = {
    "webster: bool": (_controller("webster", min_green_s=True),
                      "controller 'webster': parameter 'min_green_s': expected a positive number of seconds, got True"),
    "webster: 0 where positive": (_controller("webster", min_green_s=0), "parameter 'min_green_s': expected a positive"),
    "webster: negative": (_controller("webster", lost_time_s_per_phase=-1),
                          "parameter 'lost_time_s_per_phase': expected a non-negative number of seconds, got -1"),
    "sumo-actuated: bool": (_controller("sumo-actuated", max_gap_s=True),
                            "controller 'sumo-actuated': parameter 'max_gap_s': expected a positive number of seconds, got True"),
    "sumo-actuated: 0": (_controller("sumo-actuated", min_green_s=0), "parameter 'min_green_s': expected a positive"),
    "tls-coordinator: bool": (_controller("tls-coordinator", speed_factor=True),
                              "controller 'tls-coordinator': parameter 'speed_factor': expected a positive number, got True"),
    "tls-coordinator: 0": (_controller("tls-coordinator", speed_factor=0), "parameter 'speed_factor': expected a positive"),
    "deployment share: bool": (_controller("static@(share=True)"), r"deployment share: expected a number in \(0, 1\], got True"),
    "deployment share: 0": (_controller("static@(share=0)"), r"deployment share: expected a number in \(0, 1\], got 0"),
    "deployment worst: above 1": (_controller("static@(worst=1.01)"), r"deployment worst: expected a number in \(0, 1\]"),
    "deploy_seed: bool": (_controller("static@(share=0.5, deploy_seed=True)"), "deploy_seed: expected an integer >= 0, got True"),
    "deploy_seed: float": (_controller("static@(share=0.5, deploy_seed=1.0)"), "deploy_seed: expected an integer >= 0, got 1.0"),
    "glosa share: above 1": (_controller("static+glosa(share=1.5)"), r"\+glosa share: expected a number in \[0, 1\], got 1.5"),
    "glosa range_m: 0": (_controller("static+glosa(share=0.5, range_m=0)"), r"\+glosa range_m: expected a positive distance in m, got 0"),
    "tsp checkin_m: 0": (_tsp(checkin_m=0), r"spec: \+tsp checkin_m: expected a positive distance in m, got 0"),
    "tsp max_extension_s: bool": (_tsp(max_extension_s=True), r"\+tsp max_extension_s: expected a duration in s >= 0, got True"),
    "tsp min_green_s: inf": (_tsp(min_green_s=math.inf), r"\+tsp min_green_s: expected a duration in s >= 0, got inf"),
    "hours_per_year: bool": (_hours(weekdays=True), r"weekdays: expected a number of days in \[0, 366\], got True"),
    "hours_per_year: 367": (_hours(weekend_days=367), r"weekend_days: expected a number of days in \[0, 366\], got 367"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_each_number_parameter_refuses_with_one_line(case: str) -> None:
    build, msg = REFUSED[case]
    with pytest.raises(MobilityError, match=msg) as e:
        build()
    assert "\n" not in str(e.value)


def test_the_bounds_each_parameter_accepts() -> None:
    from mobility.controllers import make
    from mobility.controllers.tsp import Tsp
    from mobility.inputs.profiles import hours_per_year

    assert make("webster", lost_time_s_per_phase=0, offset_s=-30).get_params()["offset_s"] == -30
    assert make("static@(share=1)").name == "static@(share=1)"
    assert make("static+glosa(share=0)").name == "static+glosa(share=0)"
    assert Tsp.from_params({"max_extension_s": 0, "min_green_s": 0}, "spec").max_extension_s == 0.0
    assert hours_per_year(weekdays=366, weekend_days=0)


def test_profile_peak_share_and_multiplier(tmp_path: Path) -> None:
    from mobility.errors import ScenarioError
    from mobility.inputs.profiles import DEFAULT_PROFILE, Profile

    p = DEFAULT_PROFILE
    for share in (0.49, 1.0, True, math.nan):
        with pytest.raises(ScenarioError, match=r"peak_share: expected a share in \[0.5, 1\)"):
            Profile(p.name, p.periods, p.base_period, share, p.tidal, p.description)
    assert Profile(p.name, p.periods, p.base_period, 0.5, p.tidal, p.description).peak_share == 0.5


def test_osm_insertion_density_is_checked_before_netconvert(tmp_path: Path) -> None:
    from mobility.inputs.osm import import_osm

    osm = tmp_path / "a.osm"
    osm.write_text("<osm/>")
    for bad in (-1, math.inf, True):
        with pytest.raises(MobilityError, match="insertion density: expected vehicles/hour per lane-km >= 0, got"):
            import_osm(osm, tmp_path / "out", insertion_density=bad)
    assert not (tmp_path / "out").exists()
