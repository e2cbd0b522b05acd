"""Built-in targets, one sub-package each: contract, oracle (``*_torch``), kernels, strategy.

Each sub-package defines ``TARGET``, a :class:`moefuzz.model.target.Target`.
"""
