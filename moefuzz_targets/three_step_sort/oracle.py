"""The three-step sort's reference in plain torch, to be checked by eye against the contract.

Mirrors what ``threeStepBuildExpertMapsSortFirstToken`` and ``fusedBuildExpertMapsSortFirstTokenKernel``
(TensorRT-LLM / FlashInfer ``cutlass_fused_moe_kernels.cuh``) are meant to compute: the permutation
that groups a routing table's (token, k) items by local expert, stable in token then k.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def three_step_sort_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Build the expert maps of one MoE layer's routing table.

    Args:
        inputs: ``token_selected_experts`` [T, K] int32, any ids (ids outside the local range,
            -1 sentinels included, are simply not local; a repeated id in one token's top-k is
            an item of its own each time).
        params: ``num_experts`` E, ``start_expert`` s, ``end_expert`` e: the local experts are
            the global ids s <= id < e, local id = id - s, E_local = e - s.

    Returns:
        CPU tensors, with N the number of local items and u = k * T + t an unpermuted row:

        - ``expert_first_token_offset`` [E_local + 1] int64: exclusive prefix of the local
          experts' item counts, last entry N.
        - ``permuted_row_to_unpermuted_row`` [T * K] int32: u of permuted row p < N.
        - ``unpermuted_row_to_permuted_row`` [T * K] int32: p of local item u.
        - ``permuted_token_selected_experts`` [T * K] int32: local expert of permuted row p < N.

        Entries the contract leaves unspecified (p >= N; u of a non-local item) hold -1.
    """
    experts = inputs["token_selected_experts"].cpu().to(torch.int64)  # [T, K]
    num_tokens, top_k = experts.shape
    start, end = int(params["start_expert"]), int(params["end_expert"])

    flat = experts.reshape(-1)  # item i = t * K + k, token-major, so already in (t, k) order
    item = torch.arange(flat.numel())
    is_local = (flat >= start) & (flat < end)
    local_item = item[is_local]
    local_expert = flat[is_local] - start
    # A stable sort by expert keeps (t, k) order inside each expert.
    order = torch.sort(local_expert, stable=True).indices
    sorted_item = local_item[order]
    sorted_expert = local_expert[order]
    token, k = sorted_item // top_k, sorted_item % top_k
    unpermuted_row = k * num_tokens + token  # k-major
    n_local = int(sorted_item.numel())

    counts = torch.bincount(local_expert, minlength=end - start)
    offsets = torch.zeros(end - start + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(counts, dim=0)

    permuted_to_unpermuted = torch.full((flat.numel(),), -1, dtype=torch.int32)
    permuted_to_unpermuted[:n_local] = unpermuted_row.to(torch.int32)
    permuted_experts = torch.full((flat.numel(),), -1, dtype=torch.int32)
    permuted_experts[:n_local] = sorted_expert.to(torch.int32)
    unpermuted_to_permuted = torch.full((flat.numel(),), -1, dtype=torch.int32)
    unpermuted_to_permuted[unpermuted_row] = torch.arange(n_local, dtype=torch.int32)
    return {
        "expert_first_token_offset": offsets,
        "permuted_row_to_unpermuted_row": permuted_to_unpermuted,
        "unpermuted_row_to_permuted_row": unpermuted_to_permuted,
        "permuted_token_selected_experts": permuted_experts,
    }
