"""Fleet mix, emission classes and carbon accounting scopes.

Every vehicle in a simulation belongs to a *vehicle type* of the scenario, and every vehicle type
has one SUMO emission class. Types are grouped into *kinematic groups* (``car``, ``taxi``, ``bus``,
``van``, ``truck``): all types of a group drive identically (same SUMO vClass and vType
parameters) and differ only in how they turn motion into CO2 or electricity. Changing the fleet
(e.g. the share of electric cars) inside fixed group shares therefore leaves the traffic unchanged,
which is what makes fleet what-ifs comparable run for run.

Scopes (GHG Protocol):

* **scope 1 — tailpipe CO2** (``co2_kg``): SUMO's emission model for the vehicle's class, per
  step, in mg/s × step length. Electric vehicles emit none.
* **scope 2 — electricity** (``energy_kwh``, ``co2_scope2_kg``): SUMO's electricity consumption
  (Wh/s; HBEFA 4.2's ``FC_MJ`` converted by SUMO; recuperation counts negative) × the scenario's
  grid emission factor in kg CO2/kWh. Tonnes are always tonnes of CO2, never of carbon.
* ``co2_total_kg`` = scope 1 + scope 2.

The China emission standards map to HBEFA 4.2 subsegments as documented in :data:`CHINA_STANDARDS`
(国五 ≈ Euro 5, 国六a ≈ Euro 6c, 国六b ≈ Euro 6d for light vehicles; 国五/国六 heavy ≈ Euro V/VI).
The mapping is by the pollutant-limit equivalence of the standards; CO2 from HBEFA depends mainly on
vehicle category, fuel and speed profile, not on the Euro stage.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ..errors import ScenarioError

# ------------------------------------------------------------------------------------------------
# grid factor

#: Default grid emission factor (kg CO2 per kWh drawn from the grid): China's national average
#: electricity CO2 emission factor for 2022, 0.5366 kg CO2/kWh, published by the Ministry of Ecology
#: and Environment and the National Bureau of Statistics (2024). Scenarios should set their
#: provincial/regional factor and record its source.
DEFAULT_GRID_KG_CO2_PER_KWH = 0.5366
DEFAULT_GRID_SOURCE = ("China national average electricity CO2 emission factor for 2022 "
                       "(MEE & NBS announcement, 2024)")
DEFAULT_GRID_YEAR = 2022


@dataclass(frozen=True)
class GridFactor:
    """Scope-2 factor: kg CO2 per kWh of electricity consumed, with its source and year."""

    kg_co2_per_kwh: float = DEFAULT_GRID_KG_CO2_PER_KWH
    source: str = DEFAULT_GRID_SOURCE
    year: int = DEFAULT_GRID_YEAR


# ------------------------------------------------------------------------------------------------
# emission classes

#: China standard → SUMO emission class, by (category, fuel, standard).
#: Light-duty: 国五 (China 5) ≈ Euro 5; 国六a (China 6a) ≈ Euro 6c; 国六b (China 6b) ≈ Euro 6d.
#: Heavy-duty: 国五 ≈ Euro V; 国六 ≈ Euro VI (stage D–E). New-energy vehicles (NEV, 新能源):
#: battery-electric (BEV) and plug-in hybrid (PHEV; HBEFA models it as two classes, combustion mode
#: "(P)" and electric mode "(El)", mixed by the utility factor, the share of distance driven
#: electrically). HBEFA 4.2 in SUMO has no battery-electric *urban* bus subsegment; the standard
#: battery-electric coach (≤ 18 t) stands in for it.
CHINA_STANDARDS: dict[tuple[str, str, str], str] = {
    ("car", "petrol", "国五"): "HBEFA4/PC_petrol_Euro-5",
    ("car", "petrol", "国六a"): "HBEFA4/PC_petrol_Euro-6c",
    ("car", "petrol", "国六b"): "HBEFA4/PC_petrol_Euro-6d",
    ("car", "diesel", "国五"): "HBEFA4/PC_diesel_Euro-5",
    ("car", "diesel", "国六b"): "HBEFA4/PC_diesel_Euro-6d",
    ("car", "bev", "NEV"): "HBEFA4/PC_BEV",
    ("car", "phev-electric", "NEV"): "HBEFA4/PC_PHEV_petrol_Euro-6d_(El)",
    ("car", "phev-petrol", "NEV"): "HBEFA4/PC_PHEV_petrol_Euro-6d_(P)",
    ("van", "diesel", "国五"): "HBEFA4/LCV_diesel_N1-III_Euro-5",
    ("van", "diesel", "国六b"): "HBEFA4/LCV_diesel_N1-III_Euro-6d",
    ("van", "petrol", "国六b"): "HBEFA4/LCV_petrol_N1-III_Euro-6d",
    ("van", "bev", "NEV"): "HBEFA4/LCV_BEV_N1-II",
    ("bus", "diesel", "国五"): "HBEFA4/UBus_Std_gt15-18t_Euro-V_EGR",
    ("bus", "diesel", "国六"): "HBEFA4/UBus_Std_gt15-18t_Euro-VI_D-E",
    ("bus", "bev", "NEV"): "HBEFA4/Coach_BEV_Std_le18t",
    ("truck", "diesel", "国五"): "HBEFA4/RT_gt7_5-12t_Euro-V_EGR",
    ("truck", "diesel", "国六"): "HBEFA4/RT_gt7_5-12t_Euro-VI_D-E",
    ("truck", "bev", "NEV"): "HBEFA4/RigidTruck_BEV_gt7.5-12t",
}


def is_electric(emission_class: str) -> bool:
    """Whether SUMO reports electricity (not fuel) for this class: battery-electric classes,
    PHEVs in electric mode, SUMO's ``Energy`` and ``MMPEVEM`` models."""
    c = emission_class.lower()
    return "bev" in c or c.endswith("_(el)") or c.endswith("-(el)") or c.startswith("energy") or c.startswith("mmpevem")


@functools.lru_cache(maxsize=None)
def emission_class_error(emission_class: str) -> str | None:
    """``None`` if SUMO knows ``emission_class``, else SUMO's reason in one line. Asks SUMO's own
    ``emissionsDrivingCycle`` (two samples, ~30 ms; PHEMlight classes from the wheel's data), so the
    list of classes is always SUMO's."""
    from .emission_tables import class_error  # local: only when a scenario is validated

    return class_error(emission_class)


# ------------------------------------------------------------------------------------------------
# fleets


@dataclass(frozen=True)
class FleetClass:
    """One vehicle type of a fleet: kinematic ``group``, SUMO ``vclass``, emission class, share of
    all vehicles, and a description saying which standard/fuel it stands for."""

    id: str
    group: str
    vclass: str
    emission_class: str
    share: float
    description: str


#: kinematic groups of the bundled fleets: (group, SUMO vClass, share of vehicles)
#: Shares are typical of urban arterials in Chinese cities (private cars dominate; ride-hailing and
#: taxis ~8 %; buses, light and heavy goods vehicles a few % each). They are assumptions of the
#: default, stated so they can be replaced with local classified counts.
CHINA_CITY_GROUPS = (("car", "passenger", 0.80), ("taxi", "passenger", 0.08), ("van", "delivery", 0.06),
                     ("bus", "bus", 0.03), ("truck", "truck", 0.03))


def china_city_fleet(nev_share: float = 0.3, *, bus_bev_share: float = 0.8, van_bev_share: float = 0.1,
                     bev_of_nev: float = 0.7, phev_utility_factor: float = 0.4) -> tuple[FleetClass, ...]:
    """The bundled default fleet of a Chinese city.

    ``nev_share``: share of new-energy vehicles among private cars and taxis (0–1); of these
    ``bev_of_nev`` are battery-electric and the rest plug-in hybrids, which drive
    ``phev_utility_factor`` of their distance electrically. Combustion cars: 国六b petrol 70 %,
    国五 petrol 27 %, 国六b diesel 3 %. Buses: ``bus_bev_share`` battery-electric, the rest 国六
    diesel. Vans: ``van_bev_share`` electric, the rest 国六b diesel 70 % / petrol 30 %. Trucks: 国六
    diesel 80 %, 国五 diesel 20 %.
    """
    for name, v in (("nev_share", nev_share), ("bus_bev_share", bus_bev_share), ("van_bev_share", van_bev_share),
                    ("bev_of_nev", bev_of_nev), ("phev_utility_factor", phev_utility_factor)):
        if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name}: expected a share between 0 and 1, got {v!r}")
    cs = CHINA_STANDARDS
    phev = nev_share * (1 - bev_of_nev)
    car_split = [
        ("petrol_cn6", cs["car", "petrol", "国六b"], (1 - nev_share) * 0.70, "petrol car, 国六b (≈ Euro 6d)"),
        ("petrol_cn5", cs["car", "petrol", "国五"], (1 - nev_share) * 0.27, "petrol car, 国五 (≈ Euro 5)"),
        ("diesel_cn6", cs["car", "diesel", "国六b"], (1 - nev_share) * 0.03, "diesel car, 国六b (≈ Euro 6d)"),
        ("bev", cs["car", "bev", "NEV"], nev_share * bev_of_nev, "battery-electric car (NEV)"),
        ("phev_el", cs["car", "phev-electric", "NEV"], phev * phev_utility_factor,
         "plug-in hybrid car, electric-mode share (NEV)"),
        ("phev_petrol", cs["car", "phev-petrol", "NEV"], phev * (1 - phev_utility_factor),
         "plug-in hybrid car, petrol-mode share (NEV)"),
    ]
    within = {
        "car": car_split, "taxi": car_split,
        "van": [("diesel_cn6", cs["van", "diesel", "国六b"], (1 - van_bev_share) * 0.7, "diesel van, 国六b"),
                ("petrol_cn6", cs["van", "petrol", "国六b"], (1 - van_bev_share) * 0.3, "petrol van, 国六b"),
                ("bev", cs["van", "bev", "NEV"], van_bev_share, "battery-electric van (NEV)")],
        "bus": [("diesel_cn6", cs["bus", "diesel", "国六"], 1 - bus_bev_share, "diesel bus, 国六 (≈ Euro VI)"),
                ("bev", cs["bus", "bev", "NEV"], bus_bev_share, "battery-electric bus (NEV)")],
        "truck": [("diesel_cn6", cs["truck", "diesel", "国六"], 0.8, "diesel truck 7.5–12 t, 国六 (≈ Euro VI)"),
                  ("diesel_cn5", cs["truck", "diesel", "国五"], 0.2, "diesel truck 7.5–12 t, 国五 (≈ Euro V)")],
    }
    out = []
    for group, vclass, gshare in CHINA_CITY_GROUPS:
        for suffix, eclass, share, desc in within[group]:
            if share > 0:
                out.append(FleetClass(f"{group}_{suffix}", group, vclass, eclass, gshare * share,
                                      f"{group}: {desc}" if group == "taxi" else desc))
    return tuple(out)


#: bundled fleet presets by name
PRESETS = {"china-city": china_city_fleet}


def preset_fleet(name: str, **params: float) -> tuple[FleetClass, ...]:
    """A bundled fleet by name (see :data:`PRESETS`) with its parameters."""
    if name not in PRESETS:
        raise KeyError(name)
    return PRESETS[name](**params)


def check_shares(shares: list[float], where: str) -> None:
    """Shares must be in [0, 1] and sum to 1 (±1e-6)."""
    total = sum(shares)
    if any(s < 0 or not math.isfinite(s) for s in shares) or abs(total - 1.0) > 1e-6:
        raise ScenarioError(f"{where}: expected non-negative shares summing to 1, got {total:g}")
