"""moe_align_block_size's reference in plain torch, to be checked by eye against the contract.

Mirrors what vLLM's ``moe_align_block_size`` (``csrc/moe/moe_align_sum_kernels.cu`` behind
``vllm/model_executor/layers/fused_moe/moe_align_block_size.py``, ``ignore_invalid_experts=True``)
is meant to compute; inside a segment it lists items in ascending flat index, one of the orders
the contract allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from moefuzz_targets.moe_align_block_size.sizes import max_num_tokens_padded

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def moe_align_block_size_torch(
    inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]
) -> dict[str, torch.Tensor]:
    """Group the items of a routing table by expert, each expert padded to whole blocks.

    Args:
        inputs: ``topk_ids`` [M, K] int32 (ids >= -1); optional ``expert_map`` [E] int32
            (global -> local id, -1 for another rank's expert).
        params: ``num_experts`` E (global), ``block_size`` B, ``pad_sorted_ids`` (bool).

    Returns:
        CPU tensors, with i = t * K + k the flat index of item (t, k), numel = M * K, and
        E_eff = E_local with a map, else E:

        - ``sorted_token_ids`` [max_num_tokens_padded] int32: expert 0's items, padded with
          numel to a multiple of B, then expert 1's..., then numel to the end.
        - ``expert_ids`` [cdiv(max_num_tokens_padded, B)] int32: the expert of each block of B
          slots; -1 for blocks past num_tokens_post_padded.
        - ``num_tokens_post_padded`` [1] int32: sum over experts of round_up(count, B).

    Raises:
        Nothing on inputs that pass ``contract.check``.
    """
    ids = inputs["topk_ids"].cpu().to(torch.int64).reshape(-1)  # flat index i = t * K + k
    num_experts, block_size = int(params["num_experts"]), int(params["block_size"])
    numel = ids.numel()

    kept = (ids >= 0) & (ids < num_experts)  # -1 sentinels and ids >= E are skipped
    expert = torch.where(kept, ids, -1)
    num_eff = num_experts
    if "expert_map" in inputs:
        expert_map = inputs["expert_map"].cpu().to(torch.int64)
        expert = torch.where(kept, expert_map[ids.clamp(0, num_experts - 1)], -1)
        kept &= expert >= 0  # another rank's expert: skipped
        num_eff = int((expert_map >= 0).sum())

    items = torch.arange(numel)[kept]
    experts = expert[kept]
    order = torch.sort(experts, stable=True).indices  # by expert, then flat index
    items, experts = items[order], experts[order]

    counts = torch.bincount(experts, minlength=num_eff)  # [E_eff]
    padded = (counts + block_size - 1) // block_size * block_size  # 0 for an empty expert
    segment_start = torch.cumsum(padded, dim=0) - padded
    first_item = torch.cumsum(counts, dim=0) - counts  # where each expert starts in `items`
    slot = segment_start[experts] + torch.arange(items.numel()) - first_item[experts]
    total = int(padded.sum())

    length = max_num_tokens_padded(numel, num_experts, block_size, bool(params["pad_sorted_ids"]))
    sorted_token_ids = torch.full((length,), numel, dtype=torch.int32)
    sorted_token_ids[slot] = items.to(torch.int32)
    expert_ids = torch.full(((length + block_size - 1) // block_size,), -1, dtype=torch.int32)
    expert_ids[: total // block_size] = torch.repeat_interleave(torch.arange(num_eff), padded // block_size).to(
        torch.int32
    )
    return {
        "sorted_token_ids": sorted_token_ids,
        "expert_ids": expert_ids,
        "num_tokens_post_padded": torch.tensor([total], dtype=torch.int32),
    }
