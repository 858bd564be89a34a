"""Inputs: demand from traffic counts, OpenStreetMap import, time-of-day profiles, demand estimation."""
