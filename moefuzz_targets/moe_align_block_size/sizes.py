"""The length of moe_align_block_size's padded outputs, shared by the contract and the oracle.

Plain Python with no imports, so that the oracle (imported by exported reproducers, which run
without moefuzz) does not need the contract module, which does.
"""

from __future__ import annotations


def max_num_tokens_padded(numel: int, num_experts: int, block_size: int, pad_sorted_ids: bool) -> int:
    """Length of sorted_token_ids, exactly as vLLM's wrapper allocates it."""
    length = numel + num_experts * (block_size - 1)
    if pad_sorted_ids:
        length = -(-length // block_size) * block_size
    if numel < num_experts:
        length = min(numel * block_size, length)
    return length
