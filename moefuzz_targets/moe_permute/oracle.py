"""moe_permute's reference in plain torch, to be checked by eye against the contract.

Mirrors what vLLM's ``moe_permute`` with an ``expert_map`` (``csrc/moe/moe_permute_unpermute_op.cu``:
``preprocessTopkIdKernel`` with its guard, ``sortAndScanExpert``, ``expandInputRowsKernel``) is
meant to compute on a one-sided dispatch's padded table: the (token, k) items of local experts,
grouped by local expert, stable in flat index ``t * K + k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def moe_permute_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Permute one MoE layer's received tokens into local-expert order.

    Args:
        inputs: ``topk_ids`` [T, K] int32 global ids (pads and other ranks' experts included),
            ``expert_map`` [E] int32 global -> local id or -1, ``hidden_states`` [T, H] float32.
            ``num_tokens_per_rank`` is not read: padding is recognised by its id alone.
        params: ``num_local_experts`` E_local.

    Returns:
        CPU tensors, with i = t * K + k a flat item index and N the number of local items (items
        whose id is in 0..E-1 and maps to a local id):

        - ``expert_first_token_offset`` [E_local + 1] int64: exclusive prefix of the local
          experts' item counts, last entry N.
        - ``permuted_idx`` [T * K] int32: i of permuted row p < N.
        - ``inv_permuted_idx`` [T * K] int32: p of local item i.
        - ``permuted_hidden_states`` [T * K, H] float32: row p < N is hidden_states[t] of its item.

        Entries the contract leaves unspecified (p >= N; i of a non-local item) hold -1 (0.0 for
        hidden rows).
    """
    topk_ids = inputs["topk_ids"].cpu().to(torch.int64)  # [T, K]
    expert_map = inputs["expert_map"].cpu().to(torch.int64)  # [E]
    hidden_states = inputs["hidden_states"].cpu()  # [T, H]
    top_k = topk_ids.shape[1]
    num_experts = expert_map.shape[0]
    num_local = int(params["num_local_experts"])

    flat = topk_ids.reshape(-1)  # item i = t * K + k
    in_range = (flat >= 0) & (flat < num_experts)  # the guard: -1 pads and ids >= E are never looked up
    local_expert = torch.full_like(flat, -1)
    local_expert[in_range] = expert_map[flat[in_range]]
    is_local = local_expert >= 0

    items = torch.arange(flat.numel())[is_local]  # increasing i
    experts = local_expert[is_local]
    order = torch.sort(experts, stable=True).indices  # by local expert, then i
    sorted_items = items[order]
    num_permuted = int(sorted_items.numel())

    counts = torch.bincount(experts, minlength=num_local)
    offsets = torch.zeros(num_local + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(counts, dim=0)

    permuted_idx = torch.full((flat.numel(),), -1, dtype=torch.int32)
    permuted_idx[:num_permuted] = sorted_items.to(torch.int32)
    inv_permuted_idx = torch.full((flat.numel(),), -1, dtype=torch.int32)
    inv_permuted_idx[sorted_items] = torch.arange(num_permuted, dtype=torch.int32)
    permuted_hidden = torch.zeros((flat.numel(), hidden_states.shape[1]), dtype=torch.float32)
    permuted_hidden[:num_permuted] = hidden_states[sorted_items // top_k].to(torch.float32)
    return {
        "expert_first_token_offset": offsets,
        "permuted_idx": permuted_idx,
        "inv_permuted_idx": inv_permuted_idx,
        "permuted_hidden_states": permuted_hidden,
    }
