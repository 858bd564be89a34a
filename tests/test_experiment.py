"""mobility.experiments.run and mobility.files: one run, its id and provenance, and the files a
results folder holds (unit tests, plus one short real run of the bundled corridor)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mobility.controllers import make
from mobility.errors import MobilityError
from mobility.experiments.run import check_seed, run, run_id, split_specs, variant_label
from mobility.files import atomic_file, read_results, write_tables
from mobility.scenario import load_scenario


def test_split_specs_and_labels() -> None:
    assert split_specs("static, max-pressure(min_green_s=5, yellow_s=4),webster@(J1,J2)") == [
        "static", "max-pressure(min_green_s=5, yellow_s=4)", "webster@(J1,J2)"]
    assert variant_label("max-pressure", {}) == "max-pressure"
    assert variant_label("max-pressure", {"min_green_s": 5}) == "max-pressure(min_green_s=5)"


@pytest.mark.parametrize("bad", [-1, 2**31, 1.0, True, "1", None])
def test_check_seed_refuses(bad: object) -> None:
    with pytest.raises(MobilityError, match="--seed: expected an integer 0 <= seed < 2\\*\\*31"):
        check_seed(bad, "--seed")


def test_run_id_changes_with_what_changes_the_numbers() -> None:
    h = load_scenario("corridor").content_hash()
    base = run_id(h, make("max-pressure"), 1)
    assert base == run_id(h, make("max-pressure"), 1)  # stable
    others = {run_id(h, make("max-pressure"), 2), run_id(h, make("max-pressure", min_green_s=7), 1),
              run_id(h, make("static"), 1), run_id(h, make("max-pressure"), 1, "--time-to-teleport 60"),
              run_id(h, make("max-pressure"), 1, backend="traci"), run_id("0" * 16, make("max-pressure"), 1)}
    assert base not in others and len(others) == 6


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_results_folder_written_as_a_unit_and_read_back(tmp_path: Path) -> None:
    t = {"junctions": pd.DataFrame({"run_id": ["a"], "x": [1.5]}), "network": pd.DataFrame({"run_id": ["a"]}),
         "runs": pd.DataFrame({"run_id": ["a"], "status": ["ok"]})}
    write_tables(tmp_path, t, extra={"note.txt": "hello"})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.{e}" for n in t for e in ("csv", "parquet")] + ["note.txt"])
    back = read_results(tmp_path, ("junctions", "network", "runs"), ("corridor",))
    assert set(back) == {"junctions", "network", "runs"}
    pd.testing.assert_frame_equal(back["junctions"], t["junctions"])
    with pytest.raises(MobilityError, match="corridor.parquet: missing; expected the tables"):
        read_results(tmp_path, ("corridor",))
    (tmp_path / "runs.parquet").write_bytes(b"not parquet")
    with pytest.raises(MobilityError, match="runs.parquet: unreadable"):
        read_results(tmp_path, ("runs",))
    # a unit half-written by a live writer is refused, not read
    stage = tmp_path / f".staging-{os.getpid()}-x"
    stage.mkdir()
    (stage / "MANIFEST.json").write_text('{"files": [], "remove": []}')
    with pytest.raises(MobilityError, match="being written by pid"):
        read_results(tmp_path, ("junctions",))


@pytest.mark.sumo
def test_a_run_is_reproducible_and_records_its_provenance() -> None:
    sc = load_scenario("corridor").with_window(end_s=1200.0)
    a = run(sc, "max-pressure", seed=3)
    b = run(sc, "max-pressure", seed=3)
    pd.testing.assert_frame_equal(a.junctions, b.junctions)
    pd.testing.assert_frame_equal(a.network, b.network)
    r = a.runs.iloc[0]
    assert (r["status"], r["seed"], r["controller"], r["scenario"]) == ("ok", 3, "max-pressure", "corridor")
    assert r["run_id"] == run_id(sc.content_hash(), make("max-pressure"), 3)
    assert r["sumo_version"] == "1.28.0" and r["mobility_version"] == "0.1.0"
    # every vehicle-second is somewhere: the junction zones plus the unattributed rest add up to the network
    total = a.junctions["veh_s"].sum()
    assert total == pytest.approx(float(a.network["veh_s"].iloc[0]), rel=1e-9)
