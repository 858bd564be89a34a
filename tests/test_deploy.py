"""Partial deployment ``NAME@(...)``: spec parsing, the seeded share, and (real SUMO) untreated junctions
keep their own programs state for state."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility.experiments import run as experiment
from mobility.controllers import make, parse_spec
from mobility.controllers.deploy import Deployed, Deployment
from mobility.errors import ControllerError
from mobility.network import SignalNetwork
from mobility.scenario import load_scenario


def test_specs_split_and_parse_with_parentheses() -> None:
    text = "static,max-pressure(min_green_s=5)@(J2, J4)+glosa(share=0.5),max-pressure@(share=0.57, deploy_seed=2)"
    specs = experiment.split_specs(text)
    assert specs == ["static", "max-pressure(min_green_s=5)@(J2, J4)+glosa(share=0.5)",
                     "max-pressure@(share=0.57, deploy_seed=2)"]
    name, params = parse_spec(specs[1])
    assert (name, params) == ("max-pressure@(J2, J4)+glosa(share=0.5)", {"min_green_s": 5})
    c = make(specs[1])
    assert isinstance(c, Deployed) and c.name == "max-pressure@(J2,J4)+glosa(share=0.5)"
    assert c.get_params()["min_green_s"] == 5 and c.decision_interval_s == 5.0
    assert c.deployment == Deployment(junctions=("J2", "J4"))
    # the sweep's way: the name with extra parameters
    c2 = make(name, **params)
    assert c2.name == c.name and c2.get_params() == c.get_params()
    assert experiment.variant_label(c.name, params) == "max-pressure(min_green_s=5)@(J2,J4)+glosa(share=0.5)"


@pytest.mark.parametrize("spec, msg", [
    ("max-pressure@(share=1.5)", "share: expected a number in"),
    ("max-pressure@(share=0.5, seed=1)", "expected share="),
    ("max-pressure@()", "empty deployment"),
    ("max-pressure@(J2,J2)", "listed twice"),
    ("max-pressure+foo(x=1)", "unknown modifier '\\+foo'"),
    ("max-pressure+glosa(share=2)", "glosa share"),
    ("max-pressure+glosa(share=0.5)@(J2)", "comes right after the controller"),
    ("max-pressure@(worst=0)", "worst: expected a number in"),
    ("max-pressure@(worst=0.5, deploy_seed=1)", "or worst=<0..1> alone"),
    ("nope@(J2)", "unknown controller 'nope'"),
])
def test_bad_deployment_specs_are_one_line_errors(spec: str, msg: str) -> None:
    with pytest.raises(ControllerError, match=msg):
        make(spec)


def test_share_is_fixed_across_run_seeds_and_depends_on_deploy_seed() -> None:
    net = SignalNetwork.load(load_scenario("grid").net_file)
    picks = []
    for seed in (1, 2, 3):
        c = make("static@(share=0.5)")
        c.reset(net, seed)
        picks.append(c.treated)
    assert picks[0] == picks[1] == picks[2]
    assert len(picks[0]) == 5 == int(0.5 * len(net.junction_ids) + 0.5) and set(picks[0]) <= set(net.junction_ids)
    other = {make(f"static@(share=0.5, deploy_seed={s})") for s in range(1, 6)}
    for c in other:
        c.reset(net, 1)
    assert any(c.treated != picks[0] for c in other)  # another deployment seed draws other junctions
    bad = make("static@(G11,XX)")
    with pytest.raises(ControllerError, match="junction 'XX' is not a signalised junction"):
        bad.reset(net, 1)


def _tls_states(tmp: Path, spec: str, junctions: list[str]) -> tuple[experiment.Results, dict[str, list]]:
    """Run the corridor (10 min) with SUMO's SaveTLSStates on ``junctions``: every state change per junction."""
    out = tmp / f"tls_{len(list(tmp.iterdir()))}.xml"
    add = tmp / f"{out.stem}.add.xml"
    root = ET.Element("additional")
    for j in junctions:
        ET.SubElement(root, "timedEvent", type="SaveTLSStates", source=j, dest=str(out))
    add.write_bytes(ET.tostring(root))
    sc = load_scenario("corridor").replace(warmup_s=0.0).with_window(0, 600)
    res = experiment.run(sc, spec, 1, sumo_args=["-a", str(add)])
    states: dict[str, list] = {j: [] for j in junctions}
    for el in ET.parse(out).getroot().iter("tlsState"):
        states[el.get("id", "")].append((float(el.get("time", "nan")), el.get("state")))
    return res, states


def test_untreated_junctions_keep_their_program_state_for_state(tmp_path: Path) -> None:
    js = ["J1", "J2", "J3", "J4", "J5", "J6"]
    _, static = _tls_states(tmp_path, "static", js)
    res, deployed = _tls_states(tmp_path, "max-pressure@(J2,J4)", js)
    for j in ("J1", "J3", "J5", "J6"):
        assert len(static[j]) > 20  # the program cycles during the 10 minutes
        assert deployed[j] == static[j], j
    for j in ("J2", "J4"):  # max-pressure does change the treated ones
        assert deployed[j] != static[j], j
    tr = res.junctions.set_index("junction_id")["treated"]
    assert tr.to_dict() == {"J1": False, "J2": True, "J3": False, "J4": True, "J5": False, "J6": False,
                            "(unattributed)": False}
    text = experiment.format_comparison(res)
    assert "treated (2 junctions: J2, J4)" in text and "untreated (4 junctions)" in text


def test_worst_treats_the_junctions_with_the_highest_static_delay() -> None:
    net = SignalNetwork.load(load_scenario("corridor").net_file)
    c = make("max-pressure@(worst=0.34)")
    with pytest.raises(ControllerError, match="needs the static run's delay"):
        c.reset(net, 1)
    c.static_delay = {"J1": 10.0, "J2": 30.0, "J3": float("nan"), "J4": 25.0, "J5": 5.0, "J6": 30.0}
    c.reset(net, 1)
    assert c.treated == ("J2", "J6")  # 0.34 x 5 ranked junctions -> 2 (NaN: no vehicles, not ranked)


def test_worst_uses_a_static_run_of_the_same_scenario() -> None:
    sc = load_scenario("corridor").replace(warmup_s=0.0).with_window(0, 600)
    static = experiment.run(sc, "static", 7)  # any run seed: the ranking uses the scenario's seed
    res = experiment.run(sc, "max-pressure@(worst=0.5)", 7)
    base = experiment.run(sc, "static", sc.seed).junctions
    base = base[base["junction_id"] != "(unattributed)"].sort_values(["delay_s_per_veh", "junction_id"],
                                                                     ascending=[False, True])
    treated = res.junctions.loc[res.junctions["treated"], "junction_id"]
    assert sorted(treated) == sorted(base["junction_id"][:3])
    assert static.junctions["treated"].tolist() == [True] * 6 + [False]  # a whole-network controller
