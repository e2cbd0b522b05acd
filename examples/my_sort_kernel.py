"""Fuzz my own MoE sort against moefuzz's three_step_sort contract.

moefuzz run --targets examples/my_sort_kernel.py --target three_step_sort --kernel my-sort --time 2m
"""

import torch

from moefuzz.execute.launch import LaunchContext
from moefuzz_targets.three_step_sort import TARGET as THREE_STEP_SORT


def my_sort(ctx: LaunchContext) -> None:
    """My kernel: group the (token, k) items of a routing table by local expert."""
    ids = ctx.inputs["token_selected_experts"].long()  # [T, K] on ctx.device
    num_tokens, top_k = ids.shape
    start, end = int(ctx.params["start_expert"]), int(ctx.params["end_expert"])
    local = (ids >= start) & (ids < end)
    expert = torch.where(local, ids - start, end - start).reshape(-1)  # item t*K+k; not local: last
    item = torch.arange(expert.numel(), device=ids.device)
    order = torch.argsort(expert * expert.numel() + item)[: int(local.sum())]  # by (expert, t, k)
    row = (order % top_k) * num_tokens + order // top_k  # unpermuted row u = k*T + t
    counts = torch.bincount(expert, minlength=end - start + 1)[: end - start]

    out = ctx.outputs
    out["expert_first_token_offset"][0] = 0
    out["expert_first_token_offset"][1:] = torch.cumsum(counts, 0)
    out["permuted_row_to_unpermuted_row"][: order.numel()] = row.int()
    out["permuted_token_selected_experts"][: order.numel()] = expert[order].int()
    out["unpermuted_row_to_permuted_row"][row] = torch.arange(order.numel(), device=ids.device, dtype=torch.int32)


TARGET = THREE_STEP_SORT.with_kernel("my-sort", my_sort, "my torch sort of the routing table")
