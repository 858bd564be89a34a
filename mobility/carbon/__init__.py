"""Carbon: fleets and emission classes, SUMO emission tables, fleet what-ifs (reevaluate), annual tonnage."""
