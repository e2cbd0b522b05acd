"""Processes: disposable workers, case generators, and how they are started and stopped."""
