"""``check_controller``: every registered controller passes; broken ones fail with a message that says
what to fix; the researcher's guide (docs/controllers.md) runs as written."""

from __future__ import annotations

import random
import re
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from mobility import check_controller
from mobility.controllers import Controller, GreenPhase, Safety, TimingPlan, load_class, targets

DOC = Path(__file__).resolve().parent.parent / "docs" / "controllers.md"


class LongestQueueFirst(Controller):
    """A third-party controller, as a researcher would write it."""

    name = "longest-queue"
    description = "Serve the stage whose lanes hold the most halted vehicles."
    decision_interval_s = 5.0

    def __init__(self, min_green_s: float = 10.0) -> None:
        super().__init__(min_green_s=min_green_s)

    def reset(self, network, seed):  # type: ignore[no-untyped-def]
        self.served = {jid: [[network.junctions[jid].incoming_lanes.index(lane) for lane in lanes]
                             for lanes in network.junctions[jid].green_lanes()] for jid in network.junction_ids}

    def act(self, obs):  # type: ignore[no-untyped-def]
        out = {}
        for jid, o in obs.junctions.items():
            q = [o.queue_veh[lanes].sum() for lanes in self.served[jid]]
            out[jid] = GreenPhase(max(range(len(q)), key=q.__getitem__))
        return out


@pytest.mark.parametrize("name", sorted(targets()))
def test_every_registered_controller_conforms(name: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_controller(load_class(name))
    skipped = [str(w.message) for w in caught if "checks skipped" in str(w.message)]
    if skipped:
        pytest.skip(skipped[0])


def test_a_third_party_controller_conforms() -> None:
    check_controller(LongestQueueFirst)
    check_controller(LongestQueueFirst(min_green_s=7))


# -- broken controllers, and what the checker says about them -------------------------------


class ConvertsParams(LongestQueueFirst):
    def __init__(self, min_green_s: int = 10) -> None:
        super().__init__(min_green_s=float(min_green_s))


class ForgetsParams(LongestQueueFirst):
    def __init__(self, min_green_s: float = 10.0, extra: int = 1) -> None:
        super().__init__(min_green_s=min_green_s)


class SharesParams(LongestQueueFirst):
    def get_params(self):  # type: ignore[no-untyped-def]
        return self._params


class NeedsArgs(LongestQueueFirst):
    def __init__(self, min_green_s: float) -> None:
        super().__init__(min_green_s=min_green_s)


class GlobalRandom(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return {jid: GreenPhase(random.randrange(len(self.served[jid]))) for jid in obs.junctions}


class SurvivesReset(LongestQueueFirst):
    calls = 0

    def act(self, obs):  # type: ignore[no-untyped-def]
        self.calls += 1  # an instance counter never reset
        return {jid: GreenPhase(self.calls % len(self.served[jid])) for jid in obs.junctions}


class OutOfRange(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return {jid: GreenPhase(len(self.served[jid])) for jid in obs.junctions}


class NumpyIndex(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return {jid: GreenPhase(np.int64(0)) for jid in obs.junctions}


class UnknownJunction(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return {"nowhere": GreenPhase(0)}


class ShortPlan(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return {jid: TimingPlan((30.0,)) for jid in obs.junctions}


class AllGreenStates(LongestQueueFirst):
    """A plan whose replacement states show every link green: foes together."""

    def act(self, obs):  # type: ignore[no-untyped-def]
        out = {}
        for jid in obs.junctions:
            n = len(self.served[jid])
            width = len(self.network.junctions[jid].phases[0].state)
            phases = len(self.network.junctions[jid].phases)
            out[jid] = TimingPlan((20.0,) * n, 0.0, ("G" * width,) * phases)
        return out

    def reset(self, network, seed):  # type: ignore[no-untyped-def]
        super().reset(network, seed)
        self.network = network


class ReturnsNone(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        return None


class NoYellow(LongestQueueFirst):
    def safety(self) -> Safety:
        return Safety(yellow_s=0.0)


class NoClearance(LongestQueueFirst):
    def safety(self) -> Safety:
        return Safety(all_red_s=0.5)


class SiteClearance(LongestQueueFirst):
    def safety(self) -> Safety:
        return Safety(all_red_s=0.0)


class FailsInAct(LongestQueueFirst):
    def act(self, obs):  # type: ignore[no-untyped-def]
        if obs.time_s >= 20:
            raise KeyError("lane")
        return {}


@pytest.mark.parametrize("cls, message", [
    (ConvertsParams, "parameter 'min_green_s' defaults to 10 but get_params() returns 10.0"),
    (ForgetsParams, "pass every constructor parameter to super().__init__"),
    (SharesParams, "return a copy"),
    (NeedsArgs, "cannot construct it with default parameters"),
    (GlobalRandom, "two instances reset with seed 7 and fed the same observations returned different actions"),
    (SurvivesReset, "a second reset() with the same seed did not restart the controller"),
    (OutOfRange, "GreenPhase(4) for 'J1'; expected an int in 0..3"),
    (NumpyIndex, "convert numpy ints with int()"),
    (UnknownJunction, "returned an action for 'nowhere'"),
    (ShortPlan, "expected a tuple of 4 positive green durations"),
    (AllGreenStates, "whose states phase 0 gives conflicting links"),
    (ReturnsNone, "returned NoneType; expected a mapping"),
    (FailsInAct, "act() at t=20 raised KeyError"),
    (NoYellow, "safety() asks for a 0 s yellow; unsafe below 3 s"),
    (NoClearance, "safety() asks for a 0.5 s all-red; unsafe below 1 s"),
])
def test_broken_controllers_fail_with_a_fix_it_message(cls: type[Controller], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_controller(cls)


def test_a_module_importing_sumo_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sumo_at_import.py").write_text(textwrap.dedent("""
        import traci.constants as tc
        from tests.test_check import LongestQueueFirst

        class Sneaky(LongestQueueFirst):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from sumo_at_import import Sneaky  # type: ignore[import-not-found]

    with pytest.raises(AssertionError, match=r"importing module 'sumo_at_import' imports traci.*never import SUMO"):
        check_controller(Sneaky)


def test_sumo_in_a_notebook_namespace_is_caught() -> None:
    """Classes defined in exec'd code (a notebook cell) cannot be imported by name: their globals are
    inspected instead."""
    ns: dict = {"__name__": "__main__", "LongestQueueFirst": LongestQueueFirst}
    cell = "class {}(LongestQueueFirst):\n    def act(self, obs):\n        return super().act(obs)\n"
    exec("import libsumo\n" + cell.format("InCell"), ns)
    with pytest.raises(AssertionError, match=r"libsumo"):
        check_controller(ns["InCell"])
    clean: dict = {"__name__": "__main__", "LongestQueueFirst": LongestQueueFirst}
    exec("import numpy\n" + cell.format("Clean"), clean)
    check_controller(clean["Clean"], networks=[])


class UsesDemand(LongestQueueFirst):
    needs_demand = True

    def reset(self, network, seed):  # type: ignore[no-untyped-def]
        super().reset(network, seed)
        self.vph = {jid: network.demand.movement_vph(jid, 0) for jid in network.junction_ids}
        assert all(len(v) == len(network.junctions[jid].links) for jid, v in self.vph.items())


def test_controllers_needing_demand_get_one_or_are_skipped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    check_controller(UsesDemand)
    monkeypatch.setitem(sys.modules, "mobility.inputs.demand", None)  # as if the module did not exist
    with pytest.warns(UserWarning, match="needs demand but mobility.inputs.demand is not available"):
        check_controller(UsesDemand)


def test_not_a_controller() -> None:
    with pytest.raises(AssertionError, match="expected a mobility.controllers.Controller subclass"):
        check_controller(dict)  # type: ignore[arg-type]


# -- the researcher's guide runs as written ---------------------------------------------------


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_guide_documents_every_builtin_and_its_measured_results() -> None:
    from mobility.controllers import BUILTIN

    text = DOC.read_text()
    assert len(_python_blocks(text)) >= 5
    results = text[text.index("## Results on the bundled corridor"):]
    for name in BUILTIN:
        assert f"`{name}`" in text, f"{name} is not described in docs/controllers.md"
        assert f"| {name} |" in results, f"{name} has no measured row in the results"


@pytest.mark.sumo
def test_guide_snippets_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks starting with ``# file: NAME`` are also saved as that file (as the reader is told to),
    in a directory on sys.path (the comparison's worker processes inherit it)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__guide__"}
    for i, block in enumerate(_python_blocks(DOC.read_text())):
        first = block.splitlines()[0]
        if first.startswith("# file: "):
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(block)
        exec(compile(block, f"{DOC.name}[python block {i}]", "exec"), namespace)
    res = namespace["res"]
    assert set(res.runs["controller"]) == {"static", "max-pressure", "longest-queue"}
    assert (res.runs["status"] == "ok").all()


def test_an_all_red_of_zero_defers_to_the_site_floor() -> None:
    """``Safety(all_red_s=0)``: no clearance red of the controller's own, the site's floor applies; the
    check accepts it (a positive all-red under the default 1 s floor stays refused, ``NoClearance``),
    and the actuator still shows the site's 1 s on a TOML scenario."""
    from mobility.controllers.base import SiteSafety

    check_controller(SiteClearance)
    assert Safety(all_red_s=0.0).at_least(SiteSafety()).all_red_s == 1.0
    assert Safety(all_red_s=0.0).at_least(SiteSafety(all_red_s=0.0)).all_red_s == 0.0
