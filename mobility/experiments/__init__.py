"""Experiments: runs, sweeps over controllers × seeds × scenarios, executors, the run store, statistics."""
