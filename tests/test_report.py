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


#: the browser test's own probe, appended to a copy of the report (the report ships no test code): what
#: was drawn, whether sorting the junction table by delay sorts it, whether the map selector shows exactly
#: the chosen controller's layer
PROBE = r"""<script>
(function () {
  var b = document.body;
  function drawn(selector, part) {
    var n = 0;
    document.querySelectorAll(selector).forEach(function (svg) {
      var box = svg.getBBox();
      if (box.width > 0 && box.height > 0 && svg.querySelectorAll(part).length > 0) n += 1;
    });
    return n;
  }
  b.setAttribute("data-charts", drawn("svg.chart", "rect.bar"));
  b.setAttribute("data-maps", drawn("svg.map", "circle.junction"));
  b.setAttribute("data-timespace", drawn("svg.timespace", "polyline"));
  var t = document.querySelector("table.junctions"), ok = "no-table";
  if (t) {
    t.querySelectorAll("thead th")[4].click();
    var prev = -Infinity; ok = "1";
    Array.prototype.forEach.call(t.tBodies[0].rows, function (r) {
      var x = parseFloat(r.cells[4].getAttribute("data-v")); if (x < prev) ok = "0"; prev = x;
    });
  }
  b.setAttribute("data-sort-ok", ok);
  var sel = document.querySelector("select.mapselect");
  if (sel && sel.options.length > 1) {
    sel.value = sel.options[1].value; sel.dispatchEvent(new Event("change"));
    var shown = document.getElementById(sel.getAttribute("data-map")).querySelectorAll("g.mapvariant:not([style*='none'])");
    b.setAttribute("data-map-switch", shown.length === 1 && shown[0].getAttribute("data-variant") === sel.value ? "1" : "0");
  }
  b.setAttribute("data-ok", "1");
})();
</script>"""
ONERROR = ("<script>window.onerror=function(m,s,l){var b=document.body||document.documentElement;"
           "b.setAttribute('data-errors',(b.getAttribute('data-errors')||'')+m+' (line '+l+'); ');};</script>")


def render(html_file: Path, probe: bool = True) -> str:
    """The DOM after the page's scripts ran; with ``probe``, a copy of the page with an error catcher
    first in <head> and :data:`PROBE` last in <body> (the report itself carries no test code)."""
    page = html_file
    if probe:
        text = html_file.read_text(encoding="utf-8")
        page = html_file.with_name("probe-" + html_file.name)
        page.write_text(text.replace("<head>", "<head>" + ONERROR, 1).replace("</body>", PROBE + "</body>", 1),
                        encoding="utf-8")
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
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
    # no test code shipped in the report: only the table sorter and the map selector
    assert "self-check" not in text and "data-ok" not in text and "selftest" not in text
    assert text.count("<script>") == 1
    # every chart has drawn bars (non-zero widths), every map layer its junctions
    for chart in re.findall(r'<svg class="chart".*?</svg>', text, re.S):
        widths = [float(w) for w in re.findall(r'<rect class="bar"[^>]*width="([\d.]+)"', chart)]
        assert len(widths) == 6 * len(CONTROLLERS) and min(widths) > 0
    # per approach: the approaches of every junction with their LOS, and the spillback section
    for part in ("Per approach", "v/c", "congestion index", "spillback events", "blocked green s"):
        assert part in text, part
    table = text[text.index('<table class="sortable approaches">'):]
    rows = re.findall(r"<tr>(.*?)</tr>", table[: table.index("</table>")], re.S)[1:]
    a = pd.read_parquet(results / "approaches.parquet")
    a = a[a["approach"] != "(none)"]
    assert len(rows) == len(a.drop_duplicates(["junction_id", "approach", "variant"]))
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        los = re.sub("<[^>]+>", "", cells[6])
        delay = float(re.findall(r'<td data-v="([^"]*)"', row)[2])  # vehicles, lanes... the exact mean delay
        assert los == "ABCDEF"[sum(delay > x for x in (10, 20, 35, 55, 80))], row
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
    attrs = body_attrs(render(page, probe=False))
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


def test_a_failed_write_keeps_the_old_report_and_leaves_no_temporary_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is written under a temporary name and renamed into place (``mobility.files.atomic_file``):
    if the rename fails, the previous report is unchanged and nothing else is left in the folder."""
    import mobility.files
    import mobility.report

    out = tmp_path / "r.html"
    monkeypatch.setattr(mobility.report, "build_report", lambda results, baseline=None: "<html>new</html>")
    assert write_report(tmp_path, out).read_text(encoding="utf-8") == "<html>new</html>"
    monkeypatch.setattr(mobility.report, "build_report", lambda results, baseline=None: "<html>newer</html>")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mobility.files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, out)
    assert list(tmp_path.iterdir()) == [out] and out.read_text(encoding="utf-8") == "<html>new</html>"


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


@pytest.mark.sumo
def test_values_from_the_tables_are_escaped(results: Path, tmp_path: Path) -> None:
    """A junction id with markup in it is shown as text, never as markup (the templates escape)."""
    import shutil

    d = tmp_path / "evil"
    shutil.copytree(results, d, ignore=shutil.ignore_patterns("runs"))
    evil = '<img src=x onerror="alert(1)">&J1'
    for name in ("junctions", "approaches"):
        t = pd.read_parquet(d / f"{name}.parquet")
        t["junction_id"] = t["junction_id"].replace("J1", evil)
        t.to_parquet(d / f"{name}.parquet", index=False)
    text = build_report(d)
    assert evil not in text and "<img" not in text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;J1" in text


@pytest.mark.sumo
def test_the_report_command_replaces_an_existing_report(results: Path, tmp_path: Path) -> None:
    """``make demo`` twice: ``mobility report R --out R/report.html`` when that file exists already
    replaces it (its ``--out`` is a file, not an output directory)."""
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mobility.cli", "report", str(results), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
