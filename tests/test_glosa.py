"""``NAME+glosa(share=...)``: SUMO's GLOSA device on a share of the vehicles (real SUMO)."""

from __future__ import annotations

import pandas as pd
import pytest

from mobility.experiments import run as experiment
from mobility.controllers import make
from mobility.scenario import load_scenario

METRICS = ["vehicles", "delay_s", "stops", "co2_kg", "halted_veh_s"]


@pytest.fixture(scope="module")
def runs() -> dict[str, experiment.Results]:
    sc = load_scenario("corridor").replace(warmup_s=0.0).with_window(0, 900)
    return {spec: experiment.run(sc, spec, 1) for spec in ("static", "static+glosa(share=0)", "static+glosa(share=1)")}


def test_glosa_options_reach_sumo() -> None:
    c = make("static+glosa(share=0.25, range_m=150)")
    assert c.name == "static+glosa(share=0.25,range_m=150)"
    assert c.sumo_options() == ["--device.glosa.probability", "0.25", "--device.glosa.range", "150.0"]


def test_glosa_share_0_equals_no_glosa(runs: dict[str, experiment.Results]) -> None:
    a, b = runs["static"], runs["static+glosa(share=0)"]
    pd.testing.assert_frame_equal(a.junctions[["junction_id", *METRICS]], b.junctions[["junction_id", *METRICS]])
    assert a.network["delay_s"].iloc[0] == b.network["delay_s"].iloc[0]
    assert b.runs["controller"].iloc[0] == "static+glosa(share=0)"  # its own run id, but the same numbers


def test_glosa_share_1_changes_stops_on_the_corridor(runs: dict[str, experiment.Results]) -> None:
    a, c = runs["static"], runs["static+glosa(share=1)"]
    assert (a.network["vehicles_seen"].iloc[0] - c.network["vehicles_seen"].iloc[0]) == 0  # same demand
    sa = a.corridor.set_index("direction")["stops_per_veh"]
    sc = c.corridor.set_index("direction")["stops_per_veh"]
    assert not sa.equals(sc)
    assert a.junctions["stops"].sum() != c.junctions["stops"].sum()
