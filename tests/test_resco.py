"""The eight RESCO maps run as .sumocfg files, unchanged, and every signal gets a row (real SUMO).

Skipped with a message when ../shared/scenarios/resco is absent.
"""

from __future__ import annotations

import pytest

from mobility import run
from mobility.metrics import UNATTRIBUTED
from mobility.network import SignalNetwork
from mobility.scenario import load_scenario

from .conftest import resco_map

pytestmark = pytest.mark.sumo

MAPS = ["cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21", "grid4x4", "arterial4x4"]


@pytest.mark.parametrize("name", MAPS)
def test_resco_map_runs_with_a_row_per_signal(name: str) -> None:
    cfg = resco_map(name)
    sc = load_scenario(cfg)
    assert sc.sumocfg == cfg.resolve() and sc.end_s > sc.begin_s
    signals = set(SignalNetwork.load(sc.net_file).junction_ids)
    res = run(sc, "static")
    j = res.junctions
    assert set(j["junction_id"]) == signals | {UNATTRIBUTED}
    n = res.network.iloc[0]
    assert n["vehicles_seen"] > 100 and n["co2_kg"] > 0
    assert j["co2_kg"].sum() == pytest.approx(n["co2_kg"], rel=1e-9)
    # most signals see traffic in their zone
    served = j[j["junction_id"] != UNATTRIBUTED]["vehicles"]
    assert (served > 0).mean() >= 0.75
