"""How well green-wave's platoon model (mobility/controllers/coordination/platoon.py) predicts SUMO, signal by signal.

    python benchmarks/platoon_model.py [--seed 1] [--specs "green-wave;green-wave(lead_lag=False);green-wave(objective='maxband')"]

For each green-wave variant: the plan is built as in a run, the platoon model's expected stops per
through vehicle at every corridor signal are printed next to SUMO's, counted on the time–space
trajectories of the same plan (seed ``--seed``): a stop is a moving → halted (< 0.1 m/s) transition,
assigned to the next stop line ahead. SUMO's count is per tracked vehicle of the direction (partial
trips included), the model's per vehicle of the through lane group.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def simulated(ts: dict, direction: str) -> dict[str, float]:
    """Stops per tracked vehicle, by the next stop line ahead, from time–space trajectories."""
    tr = ts["trajectories"]
    sig = ts["signals"]
    lines = sig[sig.direction == direction].groupby("junction_id").distance_m.first().sort_values()
    t = tr[tr.direction == direction].sort_values(["trip", "time_s"])
    v, trip = t.speed_m_s.to_numpy(), t.trip.to_numpy()
    same = np.r_[False, trip[1:] == trip[:-1]]
    stop = same & (np.r_[np.inf, v[:-1]] >= 0.1) & (v < 0.1)
    where = np.searchsorted(lines.to_numpy(), t.distance_m.to_numpy()[stop] - 1.0)
    counts = np.bincount(where, minlength=len(lines) + 1)[:len(lines)]
    return dict(zip(lines.index, counts / max(t.trip.nunique(), 1)))


def modelled(network, gw) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """The model's stop share per signal and direction for the controller's plan (after reset): the
    plan's own model with ``objective="stops"``, else the model of its cycle and splits."""
    from mobility.controllers.green_wave import arterial_model

    c, bw = gw.plan_.corridor, gw.bandwidth_
    model = gw.model_ or arterial_model(network, gw.plan_, bw.travel_out_s, bw.travel_in_s,
                                        gw.get_params()["saturation_flow_vph_per_lane"])
    modes = gw.modes_ if gw.modes_ is not None else np.zeros(len(c.junctions), dtype=int)
    score = model.evaluate(np.array([[bw.offsets_s[j] for j in c.junctions]]), modes[None, :])
    return {d: {c.junctions[st.signal]: float(v) for st, v in zip(model.directions[d], score.stop_share[d][0])}
            for d in score.stop_share}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--specs", default="green-wave;green-wave(lead_lag=False);green-wave(objective='maxband')")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import tempfile

    from mobility import run
    from mobility.controllers import make
    from mobility.inputs.demand import estimate_demand
    from mobility.network import SignalNetwork
    from mobility.scenario import load_scenario

    sc = load_scenario("corridor")
    net = SignalNetwork.load(sc.net_file)
    with tempfile.TemporaryDirectory() as wd:
        net = net.with_demand(estimate_demand(sc, net, Path(wd)))
    for spec in args.specs.split(";"):
        gw = make(spec)
        gw.reset(net, args.seed)
        model = modelled(net, gw)
        res = run(sc, spec, seed=args.seed, timespace=True)
        print(f"\n{spec}: cycle {gw.plan_.cycle_s:.0f} s, lead-lag at {gw.lead_lag_ or 'none'}")
        for d in ("outbound", "inbound"):
            sim = simulated(res.timespace, d)
            order = list(sim)
            m = model[d]
            print(f"| {d} | " + " | ".join(order) + " | sum |")
            print("|---|" + "---|" * (len(order) + 1))
            print("| SUMO | " + " | ".join(f"{sim[j]:.2f}" for j in order) + f" | {sum(sim.values()):.2f} |")
            print("| model | " + " | ".join(f"{m[j]:.2f}" for j in order) + f" | {sum(m.values()):.2f} |")


if __name__ == "__main__":
    main()
