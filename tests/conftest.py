"""Shared fixtures: a hand-built one-junction network whose stops and delay are known by construction."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
RESCO = SHARED / "scenarios" / "resco"


def netconvert() -> str:
    import sumo

    return str(Path(sumo.SUMO_HOME) / "bin" / "netconvert")


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).strip() + "\n")
    return path


def build_one_junction(d: Path, green_we_s: float = 30.0, green_ns_s: float = 30.0) -> Path:
    """A cross with a signal at C: W→E and N→S through movements only, 300 m legs, 50 km/h.

    Program (offset 0): W→E green ``green_we_s``, yellow 3 s, N→S green ``green_ns_s``, yellow 3 s.
    Returns the .net.xml path.
    """
    _write(d / "x.nod.xml", """
        <nodes>
          <node id="W" x="-300" y="0"/> <node id="E" x="300" y="0"/>
          <node id="N" x="0" y="300"/> <node id="S" x="0" y="-300"/>
          <node id="C" x="0" y="0" type="traffic_light"/>
        </nodes>""")
    _write(d / "x.edg.xml", """
        <edges>
          <edge id="W_C" from="W" to="C" numLanes="1" speed="13.89"/>
          <edge id="C_E" from="C" to="E" numLanes="1" speed="13.89"/>
          <edge id="N_C" from="N" to="C" numLanes="1" speed="13.89"/>
          <edge id="C_S" from="C" to="S" numLanes="1" speed="13.89"/>
        </edges>""")
    _write(d / "x.con.xml", """
        <connections>
          <connection from="W_C" to="C_E" fromLane="0" toLane="0"/>
          <connection from="N_C" to="C_S" fromLane="0" toLane="0"/>
        </connections>""")
    base = [netconvert(), "-n", str(d / "x.nod.xml"), "-e", str(d / "x.edg.xml"), "-x", str(d / "x.con.xml"),
            "--no-turnarounds", "true", "--tls.default-type", "static"]
    first = d / "first.net.xml"
    subprocess.run([*base, "-o", str(first)], check=True, capture_output=True)
    import sumolib

    tls = sumolib.net.readNet(str(first), withPrograms=True).getTLS("C")
    idx = {c[0].getEdge().getID(): c[2] for c in tls.getConnections()}
    n = len(idx)

    def state(**chars: str) -> str:
        s = ["r"] * n
        for edge, ch in chars.items():
            s[idx[edge]] = ch
        return "".join(s)

    _write(d / "x.tll.xml", f"""
        <tlLogics>
          <tlLogic id="C" type="static" programID="0" offset="0">
            <phase duration="{green_we_s}" state="{state(W_C='G')}"/>
            <phase duration="3" state="{state(W_C='y')}"/>
            <phase duration="{green_ns_s}" state="{state(N_C='G')}"/>
            <phase duration="3" state="{state(N_C='y')}"/>
          </tlLogic>
        </tlLogics>""")
    net = d / "x.net.xml"
    subprocess.run([*base, "--tllogic-files", str(d / "x.tll.xml"), "-o", str(net)], check=True, capture_output=True)
    return net


def write_sumocfg(d: Path, net: Path, routes_xml: str, end: float, name: str = "case") -> Path:
    routes = _write(d / f"{name}.rou.xml", routes_xml)
    return _write(d / f"{name}.sumocfg", f"""
        <configuration>
          <input><net-file value="{net.name}"/><route-files value="{routes.name}"/></input>
          <time><begin value="0"/><end value="{end}"/></time>
        </configuration>""")


@pytest.fixture(scope="session")
def one_junction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_one_junction(tmp_path_factory.mktemp("onej"))


def resco_map(name: str) -> Path:
    cfg = RESCO / name / f"{name}.sumocfg"
    if not cfg.exists():
        pytest.skip(f"RESCO map {name} not found at {cfg} (../shared is absent on this machine)")
    return cfg


def build_two_junctions(d: Path, link_m: float = 45.0, b_greens_s: tuple[float, float] = (30.0, 30.0)) -> Path:
    """Two signals in series on an east-west road: W → A → B → E, with ``link_m`` metres between A
    and B (storage for about ``link_m / 7.5`` vehicles), and a north-south cross street at each
    (NA → A → SA, NB → B → SB). One lane everywhere, through movements only, 50 km/h, legs 300 m.
    A runs netconvert's default static program (30 s per direction); B's program gives its
    east-west through ``b_greens_s[0]`` s, yellow 3 s, its cross street ``b_greens_s[1]`` s, yellow 3 s.
    Returns the .net.xml path."""
    _write(d / "t.nod.xml", f"""
        <nodes>
          <node id="W" x="-300" y="0"/> <node id="E" x="{link_m + 300}" y="0"/>
          <node id="A" x="0" y="0" type="traffic_light"/> <node id="B" x="{link_m}" y="0" type="traffic_light"/>
          <node id="NA" x="0" y="300"/> <node id="SA" x="0" y="-300"/>
          <node id="NB" x="{link_m}" y="300"/> <node id="SB" x="{link_m}" y="-300"/>
        </nodes>""")
    _write(d / "t.edg.xml", """
        <edges>
          <edge id="W_A" from="W" to="A" numLanes="1" speed="13.89"/>
          <edge id="A_B" from="A" to="B" numLanes="1" speed="13.89"/>
          <edge id="B_E" from="B" to="E" numLanes="1" speed="13.89"/>
          <edge id="NA_A" from="NA" to="A" numLanes="1" speed="13.89"/>
          <edge id="A_SA" from="A" to="SA" numLanes="1" speed="13.89"/>
          <edge id="NB_B" from="NB" to="B" numLanes="1" speed="13.89"/>
          <edge id="B_SB" from="B" to="SB" numLanes="1" speed="13.89"/>
        </edges>""")
    _write(d / "t.con.xml", """
        <connections>
          <connection from="W_A" to="A_B"/> <connection from="A_B" to="B_E"/>
          <connection from="NA_A" to="A_SA"/> <connection from="NB_B" to="B_SB"/>
        </connections>""")
    base = [netconvert(), "-n", str(d / "t.nod.xml"), "-e", str(d / "t.edg.xml"), "-x", str(d / "t.con.xml"),
            "--no-turnarounds", "true", "--tls.default-type", "static", "--tls.green.time", "30"]
    first = d / "t0.net.xml"
    subprocess.run([*base, "-o", str(first)], check=True, capture_output=True)
    import sumolib

    idx = {c[0].getEdge().getID(): c[2] for c in sumolib.net.readNet(str(first), withPrograms=True).getTLS("B").getConnections()}

    def state(ch_we: str, ch_ns: str) -> str:
        s = ["r"] * len(idx)
        s[idx["A_B"]], s[idx["NB_B"]] = ch_we, ch_ns
        return "".join(s)

    _write(d / "t.tll.xml", f"""
        <tlLogics>
          <tlLogic id="B" type="static" programID="0" offset="0">
            <phase duration="{b_greens_s[0]}" state="{state('G', 'r')}"/>
            <phase duration="3" state="{state('y', 'r')}"/>
            <phase duration="{b_greens_s[1]}" state="{state('r', 'G')}"/>
            <phase duration="3" state="{state('r', 'y')}"/>
          </tlLogic>
        </tlLogics>""")
    net = d / "t.net.xml"
    subprocess.run([*base, "--tllogic-files", str(d / "t.tll.xml"), "-o", str(net)], check=True, capture_output=True)
    return net
