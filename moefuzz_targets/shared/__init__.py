"""Code two or more built-in targets share; not a target (it defines no ``TARGET``).

A target imports from here, never from another target's package. This package's ``__init__``
imports nothing, so a kernel module that imports :mod:`moefuzz_targets.shared.triton_helpers`
still imports only torch and triton (what an exported reproducer needs).
"""
