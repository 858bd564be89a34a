"""The HTML report: self-contained, numbers from the statistics, drawn without script errors in a
real headless browser (Debian ``chromium``; skipped with a message when there is none)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mobility import compare, load_scenario
from mobility.report import build_report, markdown, write_report
from mobility.experiments.stats import summary

from .conftest import ROOT

CONTROLLERS = ["static", "max-pressure(min_green_s=5)", "sumo-actuated"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corridor comparison (3 controllers × 2 seeds, 5 min), written to a results directory."""
    out = tmp_path_factory.mktemp("report") / "cmp"
    sc = load_scenario("corridor").replace(end_s=420.0, warmup_s=120.0)
    res = compare(sc, CONTROLLERS, seeds=[1, 2], jobs=2, out=out)
    assert (res.runs["status"] == "ok").all(), res.runs["error"].tolist()
    return out


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH: the report's browser test needs Debian `chromium` "
                "(apt-get install -y chromium; .ci/run installs it when it can)")


def render(html_file: Path) -> str:
    """The DOM after the page's scripts ran (``#selftest`` also exercises sorting and the map selector)."""
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", f"{html_file.resolve().as_uri()}#selftest"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def body_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom)
    assert tag, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))


@pytest.mark.sumo
def test_report_is_self_contained_and_complete(results: Path, tmp_path: Path) -> None:
    out = write_report(results, tmp_path / "r.html")
    text = out.read_text()
    assert list(tmp_path.iterdir()) == [out]  # one file
    # nothing fetched from anywhere: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text and "url(http" not in text
    for part in ("Per junction", "Charts", "Network map", "Time–space diagrams", "Methodology", "Metric definitions",
                 "HBEFA4/PC_petrol_Euro-6ab", "Seeds and statistics", "1.28.0"):
        assert part in text, part
    assert text.count('<svg class="chart"') == 3
    assert text.count('<svg class="timespace"') == 2 * len(CONTROLLERS)  # one per direction, first seed
    assert text.count('class="mapvariant"') == len(CONTROLLERS) - 1
    assert text.count('<circle class="junction') == 6 * (len(CONTROLLERS) - 1)


@pytest.mark.sumo
def test_report_numbers_are_the_statistics(results: Path) -> None:
    text = build_report(results)
    j = pd.read_parquet(results / "junctions.parquet")
    s = summary(j, pd.read_parquet(results / "network.parquet"), pd.read_parquet(results / "runs.parquet"))
    table = text[text.index('<table class="sortable junctions">'):]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert len(rows) == 6 * len(CONTROLLERS)
    d = s["junctions"]
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        jid, variant = cells[0], cells[1].replace("&#x27;", "'")
        delay = d[(d.junction_id == jid) & (d.variant == variant) & (d.metric == "delay_s_per_veh")].iloc[0]
        assert cells[4].startswith(f"{delay['mean']:,.1f}"), (row, delay)
        assert f"±{(delay.ci_high - delay.ci_low) / 2:,.1f}" in cells[4]
        los = re.sub("<[^>]+>", "", cells[5])
        assert los == "ABCDEF"[sum(delay["mean"] > x for x in (10, 20, 35, 55, 80))]
        if variant != "static":
            f = s["junction_diffs"]
            diff = f[(f.junction_id == jid) & (f.variant == variant) & (f.metric == "co2_kg")].iloc[0]
            assert f"{diff['pct_change']:+.1f} %" in cells[10]
            assert ("≈0" in cells[10]) == bool(diff.ci_includes_zero)


@pytest.mark.sumo
def test_report_renders_in_a_headless_browser_without_script_errors(results: Path, tmp_path: Path) -> None:
    page = write_report(results, tmp_path / "report.html", baseline="static")
    attrs = body_attrs(render(page))
    assert "data-errors" not in attrs, attrs.get("data-errors")
    assert attrs.get("data-ok") == "1"
    assert attrs["data-charts"] == "3"  # delay, stops, CO2: each with bars of non-zero size
    assert attrs["data-maps"] == "1"
    assert attrs["data-timespace"] == str(2 * len(CONTROLLERS))
    assert attrs["data-sort-ok"] == "1"  # clicking "delay" sorts the junction table by it
    assert attrs["data-map-switch"] == "1"  # the controller selector shows exactly the chosen layer


def test_browser_check_catches_script_errors(tmp_path: Path) -> None:
    """The harness above would see a broken page (so its passing means something)."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><script>window.onerror=function(m){document.body.setAttribute("
                    "'data-errors',m);};</script></head><body><script>document.body.setAttribute('data-ok','1');"
                    "nosuch();</script></body></html>")
    attrs = body_attrs(render(page))
    assert "nosuch is not defined" in attrs.get("data-errors", "")


def test_report_bad_input_one_line_exit_2(tmp_path: Path) -> None:
    def mob(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mobility.cli", *a], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)

    out = tmp_path / "r.html"
    proc = mob("report", str(tmp_path / "nope"), "--out", str(out))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "nope: no such directory" in proc.stderr and not out.exists()
    (tmp_path / "empty").mkdir()
    proc = mob("report", str(tmp_path / "empty"), "--out", str(out))
    assert proc.returncode == 2 and "junctions.parquet: missing" in proc.stderr and not out.exists()


@pytest.mark.sumo
def test_unknown_baseline_is_an_error_and_writes_nothing(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    proc = subprocess.run([sys.executable, "-m", "mobility.cli", "report", str(results), "--out", str(out),
                           "--baseline", "webster"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--baseline: baseline 'webster' is not a controller of these results; known: static" in proc.stderr
    assert not out.exists()


def test_markdown_subset_renders_the_metric_definitions() -> None:
    html = markdown((ROOT / "docs" / "metrics.md").read_text())
    assert "<h1>" not in html  # the document's title is dropped
    assert "<td><code>delay_s_per_veh</code></td>" in html
    assert html.count("<table") >= 2 and "<ul>" in html
    assert "|" not in re.sub(r"<[^>]+>", "", html.split("<table")[1])  # pipes became cells
