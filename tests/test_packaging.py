"""The package installs as a wheel: bundled networks, scenarios and metric definitions travel with it.

Builds a wheel of this checkout (``pip wheel --no-deps``), installs it into a fresh virtual
environment (its dependencies come from this environment's site-packages through a path entry,
without the editable install of the checkout: nothing is downloaded), and runs the bundled corridor
from another directory. The run must give the same junction table as this checkout gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: a short corridor run: warm-up 900 s, then 300 s measured (enough for every junction to see traffic)
ARGS = ["compare", "corridor", "--controllers", "static", "--seeds", "1", "--end", "1200"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this checkout installed; returns its ``bin/`` directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("mobility-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    fresh_site = Path(subprocess.run([str(env_dir / "bin" / "python"), "-c", "import sysconfig; "
                                      "print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies: this venv's site-packages as a plain path entry (its .pth files, among them
    # the editable finder of this checkout, are not processed from there)
    (fresh_site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
                           "--no-deps", "--no-index", "-q", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return env_dir / "bin"


@pytest.mark.sumo
@pytest.mark.packaging
def test_wheel_holds_the_bundled_data(installed: Path) -> None:
    code = ("import mobility, mobility.scenario as s; print(mobility.__file__); print(s.ROOT); "
            "print(s.load_scenario('corridor').net_file)")
    out = subprocess.run([str(installed / "python"), "-c", code], capture_output=True, text=True, cwd=installed,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    init, data, net = out.stdout.split()
    site = str(installed.parent / "lib")
    # the installed copy, not this checkout, and its data inside the package
    assert init.startswith(site) and data.startswith(site) and net.startswith(data)
    assert (Path(data) / "docs" / "metrics.md").read_text() == (ROOT / "docs" / "metrics.md").read_text()
    assert (Path(data) / "networks" / "grid" / "grid.net.xml").read_bytes() == \
        (ROOT / "networks" / "grid" / "grid.net.xml").read_bytes()
    assert not (Path(data) / "networks" / "build.py").exists()


@pytest.mark.sumo
@pytest.mark.packaging
def test_installed_wheel_runs_the_bundled_corridor_from_another_directory(installed: Path,
                                                                         tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(installed / "mobility"), *ARGS, "--out", "out"], capture_output=True, text=True,
                          cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = pd.read_csv(elsewhere / "out" / "junctions.csv")
    runs = pd.read_csv(elsewhere / "out" / "runs.csv")
    assert list(runs["status"]) == ["ok"]
    assert runs.loc[0, "scenario_source"].startswith(str(installed.parent / "lib"))
    # the six signals of the corridor and the unattributed rest, with traffic at each
    assert sorted(theirs["junction_id"]) == sorted([f"J{i}" for i in range(1, 7)] + ["(unattributed)"])
    assert (theirs.loc[theirs["junction_id"] != "(unattributed)", "vehicles"] > 0).all()
    # the same numbers as this checkout (same code, same data: same run ids too)
    mine_dir = tmp_path / "mine"
    proc = subprocess.run([sys.executable, "-m", "mobility.cli", *ARGS, "--out", str(mine_dir)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mine = pd.read_csv(mine_dir / "junctions.csv")
    pd.testing.assert_frame_equal(theirs, mine)
