"""Time-of-day profiles: a day (and a year) of demand built from one base demand.

A :class:`Profile` is a set of named periods. Each period has the hours of a weekday and of a
weekend day it covers (``[start_h, end_h)`` spans; the periods of each day type cover 0–24 h exactly
once), a demand ``multiplier`` and an optional tidal direction. One period, ``base_period``, is the
one the scenario's demand represents (default: the AM peak).

**Scaling.** In period ``p`` a flow's vehicles/hour are its base value times

    f(p) = (multiplier(p) · d(p, flow)) / (multiplier(base) · d(base, flow))

where ``d`` is the direction factor: in a period marked ``tidal = "inbound"`` (AM peak: towards the
centre) inbound flows get ``2·s`` and outbound flows ``2·(1 − s)``, with ``s = peak_share`` (default
0.6: a 60/40 split); in a period marked ``"outbound"`` (PM peak) the two are swapped; in other
periods, and for flows that are neither inbound nor outbound, ``d = 1``. So a base AM peak with a
60/40 inbound/outbound split becomes a 40/60 PM peak (the tidal switch), and a balanced inter-peak.

**Directions** (:class:`Tidal`) are network-specific: a flow is *inbound* if it matches the
inbound :class:`FlowSet` (its origin is in ``origins`` when that set is given, and its destination
is in ``destinations`` when that set is given), *outbound* likewise; matching both is an error. They
are given in Python or in a profile TOML's ``[tidal.inbound]`` / ``[tidal.outbound]`` tables.

**Annual hours.** :func:`hours_per_year` gives, per period, ``weekdays × weekday hours +
weekend_days × weekend hours`` (defaults 250 and 115 days: 365 days, 8,760 h). An annual total is
then ``Σ_p (quantity per hour of period p) × hours_per_year[p]``.

Stable API (used by :mod:`mobility.carbon.tonnage`)::

    DEFAULT_PROFILE, default_profile()             the bundled weekday/weekend day (table below)
    load_profile(path) -> Profile                  a profile TOML (see docs/networks.md)
    apply_profile(scenario, profile, tidal=None) -> dict[period name, Scenario]
    flow_factors(scenario, profile, tidal=None) -> dict[period name, tuple[float, ...]]  (per flow)
    hours_per_year(profile, weekdays=250, weekend_days=115) -> dict[period name, float]
    Profile, ProfilePeriod, Tidal, FlowSet         frozen dataclasses

The bundled default (:data:`DEFAULT_PROFILE`; multipliers relative to the AM peak hour). These are
illustrative values typical of an urban weekday (peak hour ≈ 7.7 % of the weekday's traffic,
weekend day ≈ 75 % of a weekday), **not** measurements; replace them with local counts where you
have them:

=============  ==================  ===============  ==========  ========
period         weekday hours       weekend hours    multiplier  tidal
=============  ==================  ===============  ==========  ========
am_peak        07–09 (2 h)         –                1.00        inbound
inter_peak     06–07, 09–16 (8 h)  09–19 (10 h)     0.70        –
pm_peak        16–19 (3 h)         –                1.00        outbound
evening        19–22 (3 h)         19–22 (3 h)      0.50        –
night          22–06 (8 h)         22–09 (11 h)     0.12        –
=============  ==================  ===============  ==========  ========
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from ..fields import Fields, is_number, is_number_in, read_toml
from ..scenario import Flow, Scenario

DIRECTIONS = ("inbound", "outbound")
#: days per year used by :func:`hours_per_year` unless given: working weekdays and weekend/holidays
WEEKDAYS_PER_YEAR = 250
WEEKEND_DAYS_PER_YEAR = 115


@dataclass(frozen=True)
class FlowSet:
    """Flows selected by origin and/or destination edge (an empty set does not constrain)."""

    origins: frozenset[str] = frozenset()
    destinations: frozenset[str] = frozenset()

    def matches(self, flow: Flow) -> bool:
        if not self.origins and not self.destinations:
            return False
        return ((not self.origins or flow.origin in self.origins)
                and (not self.destinations or flow.destination in self.destinations))


@dataclass(frozen=True)
class Tidal:
    """Which flows are inbound (the AM peak direction) and which outbound."""

    inbound: FlowSet = field(default_factory=FlowSet)
    outbound: FlowSet = field(default_factory=FlowSet)

    def direction(self, flow: Flow) -> str:
        """``"inbound"``, ``"outbound"`` or ``""``; a flow matching both raises ScenarioError."""
        i, o = self.inbound.matches(flow), self.outbound.matches(flow)
        if i and o:
            raise ScenarioError(f"tidal directions: flow {flow.origin} -> {flow.destination} matches both the "
                                "inbound and the outbound set; make the sets disjoint")
        return "inbound" if i else "outbound" if o else ""


@dataclass(frozen=True)
class ProfilePeriod:
    """A period of the day: the hours it covers, its demand multiplier and its tidal direction.

    ``weekday_hours``/``weekend_hours``: ``(start_h, end_h)`` spans within 0–24 (a span may not wrap
    midnight: write 22–06 as (22, 24) and (0, 6)). ``multiplier``: demand relative to other periods
    (> 0). ``tidal``: ``"inbound"`` (the inbound direction is the peak), ``"outbound"``, or ``""``."""

    name: str
    multiplier: float
    weekday_hours: tuple[tuple[float, float], ...] = ()
    weekend_hours: tuple[tuple[float, float], ...] = ()
    tidal: str = ""
    description: str = ""

    @property
    def weekday_h(self) -> float:
        """Hours per weekday."""
        return sum(e - b for b, e in self.weekday_hours)

    @property
    def weekend_h(self) -> float:
        """Hours per weekend day."""
        return sum(e - b for b, e in self.weekend_hours)


@dataclass(frozen=True)
class Profile:
    """A day profile (see the module doc). Validated on construction (ScenarioError)."""

    name: str
    periods: tuple[ProfilePeriod, ...]
    base_period: str = "am_peak"
    peak_share: float = 0.6
    tidal: Tidal | None = None
    description: str = ""

    def __post_init__(self) -> None:
        where = f"profile '{self.name}'"
        names = [p.name for p in self.periods]
        if not names:
            raise ScenarioError(f"{where}: no periods")
        if len(set(names)) != len(names):
            raise ScenarioError(f"{where}: period names must be unique, got {names}")
        if self.base_period not in names:
            raise ScenarioError(f"{where}: base_period '{self.base_period}' is not a period "
                                f"(known: {', '.join(names)})")
        if not is_number_in(self.peak_share, 0.5, 1.0, high_open=True):
            raise ScenarioError(f"{where}: peak_share: expected a share in [0.5, 1), got {self.peak_share!r}")
        for p in self.periods:
            if not is_number_in(p.multiplier, 0, low_open=True):
                raise ScenarioError(f"{where}: period '{p.name}': multiplier: expected a number > 0, "
                                    f"got {p.multiplier!r}")
            if p.tidal not in ("", *DIRECTIONS):
                raise ScenarioError(f"{where}: period '{p.name}': tidal: expected inbound, outbound or empty, "
                                    f"got {p.tidal!r}")
        for day in ("weekday", "weekend"):
            spans = sorted((b, e, p.name) for p in self.periods for b, e in getattr(p, f"{day}_hours"))
            t = 0.0
            for b, e, name in spans:
                if not (0 <= b < e <= 24):
                    raise ScenarioError(f"{where}: period '{name}': {day}_hours span [{b:g}, {e:g}): "
                                        "expected 0 <= start < end <= 24")
                if b != t:
                    what = "overlaps the previous span" if b < t else f"leaves {t:g}–{b:g} h uncovered"
                    raise ScenarioError(f"{where}: period '{name}': {day}_hours span [{b:g}, {e:g}) {what}; "
                                        "the periods must cover 0–24 h once")
                t = e
            if t != 24:
                raise ScenarioError(f"{where}: {day}_hours cover 0–{t:g} h only; "
                                    "the periods must cover 0–24 h once")

    def period(self, name: str) -> ProfilePeriod:
        for p in self.periods:
            if p.name == name:
                return p
        raise ScenarioError(f"profile '{self.name}': no period '{name}' (known: {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.periods)

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed (e.g. ``tidal=Tidal(...)``)."""
        return dataclasses.replace(self, **changes)


DEFAULT_PROFILE = Profile(
    name="default-day",
    description="illustrative urban weekday/weekend profile; multipliers relative to the AM peak hour",
    base_period="am_peak",
    peak_share=0.6,
    periods=(
        ProfilePeriod("am_peak", 1.00, ((7, 9),), (), "inbound", "weekday morning peak, towards the centre"),
        ProfilePeriod("inter_peak", 0.70, ((6, 7), (9, 16)), ((9, 19),), "", "daytime between the peaks"),
        ProfilePeriod("pm_peak", 1.00, ((16, 19),), (), "outbound", "weekday evening peak, away from the centre"),
        ProfilePeriod("evening", 0.50, ((19, 22),), ((19, 22),), "", "evening"),
        ProfilePeriod("night", 0.12, ((22, 24), (0, 6)), ((22, 24), (0, 9)), "", "night (and weekend early morning)"),
    ),
)


def default_profile(tidal: Tidal | None = None) -> Profile:
    """The bundled day profile (:data:`DEFAULT_PROFILE`), optionally with tidal directions."""
    return DEFAULT_PROFILE if tidal is None else DEFAULT_PROFILE.replace(tidal=tidal)


def flow_factors(scenario: Scenario, profile: Profile, tidal: Tidal | None = None) -> dict[str, tuple[float, ...]]:
    """Per period, the factor applied to each of ``scenario.flows`` (see the module doc)."""
    tidal = tidal if tidal is not None else profile.tidal
    dirs = [tidal.direction(f) if tidal is not None else "" for f in scenario.flows]
    s = profile.peak_share
    base = profile.period(profile.base_period)

    def d(p: ProfilePeriod, direction: str) -> float:
        if not p.tidal or not direction:
            return 1.0
        return 2 * s if p.tidal == direction else 2 * (1 - s)

    return {p.name: tuple(p.multiplier * d(p, dr) / (base.multiplier * d(base, dr)) for dr in dirs)
            for p in profile.periods}


def apply_profile(scenario: Scenario, profile: Profile | None = None,
                  tidal: Tidal | None = None) -> dict[str, Scenario]:
    """One scenario per profile period, in profile order, with the demand of that period.

    TOML scenarios get each flow's vehicles/hour scaled by :func:`flow_factors`; a ``.sumocfg``
    scenario (no flows) is scaled as a whole with :meth:`Scenario.scaled` by
    ``multiplier(p) / multiplier(base)`` and cannot switch directions (ScenarioError if tidal
    directions are given). ``tidal`` overrides ``profile.tidal``. Each scenario is named
    ``"{scenario.name}@{period}"``; its time window is the base scenario's (a representative hour
    of the period)."""
    profile = profile or DEFAULT_PROFILE
    tidal = tidal if tidal is not None else profile.tidal
    base = profile.period(profile.base_period)
    out: dict[str, Scenario] = {}
    if not scenario.flows:
        if scenario.sumocfg is not None and tidal is not None and any(p.tidal for p in profile.periods):
            raise ScenarioError(f"{scenario.source}: tidal direction switching needs a TOML scenario's flows; "
                                "a .sumocfg scenario can only be scaled as a whole (pass no tidal directions)")
        for p in profile.periods:
            out[p.name] = scenario.scaled(p.multiplier / base.multiplier).replace(name=f"{scenario.name}@{p.name}")
        return out
    factors = flow_factors(scenario, profile, tidal)
    for p in profile.periods:
        flows = tuple(dataclasses.replace(f, vph=tuple(v * k for v in f.vph))
                      for f, k in zip(scenario.flows, factors[p.name]))
        out[p.name] = scenario.replace(flows=flows, name=f"{scenario.name}@{p.name}")
    return out


def hours_per_year(profile: Profile | None = None, weekdays: float = WEEKDAYS_PER_YEAR,
                   weekend_days: float = WEEKEND_DAYS_PER_YEAR) -> dict[str, float]:
    """Hours per year in each period: ``weekdays × weekday hours + weekend_days × weekend hours``."""
    profile = profile or DEFAULT_PROFILE
    for what, v in (("weekdays", weekdays), ("weekend_days", weekend_days)):
        if not is_number_in(v, 0, 366):
            raise ScenarioError(f"hours_per_year: {what}: expected a number of days in [0, 366], got {v!r}")
    return {p.name: float(weekdays * p.weekday_h + weekend_days * p.weekend_h) for p in profile.periods}


# --------------------------------------------------------------------------------------------
# profile files


def load_profile(path: str | Path) -> Profile:
    """Read a profile TOML (format in docs/networks.md); errors name the file and field."""
    path = Path(path)
    data = read_toml(path)
    t = _Table(path, data, "")
    name = t.get("name", str, path.stem)
    description = t.get("description", str, "")
    base = t.get("base_period", str, "am_peak")
    share = float(t.get("peak_share", (int, float), 0.6))
    periods = []
    for i, raw in enumerate(t.get("periods", list, ...)):
        if not isinstance(raw, dict):
            raise t.err(f"periods[{i}]", "expected a [[periods]] table")
        pt = _Table(path, raw, f"periods[{i}].")
        periods.append(ProfilePeriod(
            name=pt.get("name", str, ...),
            multiplier=float(pt.get("multiplier", (int, float), ...)),
            weekday_hours=pt.spans("weekday_hours"),
            weekend_hours=pt.spans("weekend_hours"),
            tidal=pt.get("tidal", str, ""),
            description=pt.get("description", str, ""),
        ))
        pt.finish()
    tidal = None
    raw_tidal = t.get("tidal", dict, {})
    if raw_tidal:
        tt = _Table(path, raw_tidal, "tidal.")
        sets = {}
        for d in DIRECTIONS:
            st = _Table(path, tt.get(d, dict, {}), f"tidal.{d}.")
            sets[d] = FlowSet(frozenset(st.strings("origins")), frozenset(st.strings("destinations")))
            st.finish()
        tt.finish()
        tidal = Tidal(sets["inbound"], sets["outbound"])
    t.finish()
    try:
        return Profile(name, tuple(periods), base, share, tidal, description)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None


class _Table(Fields):
    """:class:`~mobility.fields.Fields` of a profile spec (type names in its messages)."""

    hint = "docs/networks.md"

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, what: str = "") -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise self.err(key, "missing")
            return default
        v = self.table[key]
        if isinstance(v, bool) or not isinstance(v, kind):
            raise self.err(key, f"expected {getattr(kind, '__name__', 'a number')}, got {v!r}")
        return v

    def strings(self, key: str) -> list[str]:
        v = self.get(key, list, [])
        if not all(isinstance(x, str) for x in v):
            raise self.err(key, f"expected a list of edge ids, got {v!r}")
        return v

    def spans(self, key: str) -> tuple[tuple[float, float], ...]:
        v = self.get(key, list, [])
        out = []
        for s in v:
            if (not isinstance(s, list) or len(s) != 2
                    or not all(is_number(x) for x in s)):
                raise self.err(key, f"expected a list of [start_h, end_h] pairs, got {v!r}")
            out.append((float(s[0]), float(s[1])))
        return tuple(out)


def profile_table(profile: Profile | None = None, weekdays: float = WEEKDAYS_PER_YEAR,
                  weekend_days: float = WEEKEND_DAYS_PER_YEAR) -> list[dict[str, Any]]:
    """Rows describing a profile (for reports): period, hours per weekday/weekend day and year,
    multiplier, tidal direction."""
    profile = profile or DEFAULT_PROFILE
    hy = hours_per_year(profile, weekdays, weekend_days)
    return [{"period": p.name, "weekday_h": p.weekday_h, "weekend_h": p.weekend_h, "hours_per_year": hy[p.name],
             "multiplier": p.multiplier, "tidal": p.tidal} for p in profile.periods]


__all__ = [
    "DEFAULT_PROFILE", "FlowSet", "Profile", "ProfilePeriod", "Tidal", "apply_profile", "default_profile",
    "flow_factors", "hours_per_year", "load_profile", "profile_table",
]
