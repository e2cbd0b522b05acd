"""The values moefuzz fills buffers with before a launch, free of torch imports so that the
campaign's parent (contracts, explanations, strategies) can name them too.

Kernel and oracle modules restate them instead of importing moefuzz (exported reproducers run
without it); tests pin every restatement equal to these.
"""

#: Poison for integer buffers: a large positive int32 (the value the LightLLM report saw read
#: back as a stale start offset), far outside every valid index, and negative if read as int16.
INT_POISON = 0x7FFFFFFF - 0x2A
#: Poison for float buffers.
FLOAT_POISON = float("nan")
