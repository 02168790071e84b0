"""Chaos runs: faults under sustained load, then the invariants (see chaos/run.py)."""
