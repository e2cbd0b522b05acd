"""``python3 -m benchmarks.baselines``: see :mod:`benchmarks.baselines`."""

from benchmarks.baselines import main

main()
