"""moefuzz: a property-based differential fuzzer for MoE routing and paged-KV GPU kernels.

The engine (generation, isolation, shrinking, corpus) lives here and knows no specific kernel;
what is fuzzed lives in the ``targets`` package, one folder per target.
"""

__version__ = "0.1.0"
