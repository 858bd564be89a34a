"""Coordination maths of the coordinated controllers: green-wave bandwidth, platoon model."""
