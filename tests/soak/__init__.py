"""Soak tests: the engine under kill -9 restarts, rotations and a database outage."""
