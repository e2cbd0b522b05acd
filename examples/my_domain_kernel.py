"""Fuzz my own EP scatter, which only takes hidden sizes that are multiples of 128, against
moefuzz's ep_scatter contract.

moefuzz run --targets examples/my_domain_kernel.py --target ep_scatter --kernel my-scatter-h128 --time 2m
"""

import torch

from moefuzz.execute.launch import LaunchContext
from moefuzz.model.case import Case
from moefuzz_targets.ep_scatter import TARGET as EP_SCATTER


def hidden_multiple_of_128(case: Case) -> bool:
    """My kernel's domain: it copies rows in 128-wide tiles with no tail."""
    return case.arrays["recv_x"].shape[1] % 128 == 0


def my_scatter(ctx: LaunchContext) -> None:
    """My kernel: each expert's items take its first rows, in (token, k) order."""
    topk_ids = ctx.inputs["recv_topk"].long()  # [N, K] local expert or -1, on ctx.device
    aligned = ctx.inputs["num_recv_tokens_per_expert"].long()  # [E], multiples of 128
    recv_x, recv_x_scale = ctx.inputs["recv_x"], ctx.inputs["recv_x_scale"]  # [N, H], [N, S]
    assert recv_x.shape[1] % 128 == 0, "my kernel takes H % 128 == 0 only"
    flat = topk_ids.reshape(-1)
    item = torch.nonzero(flat >= 0).reshape(-1)  # t * K + k of each item
    expert = flat[item]
    order = torch.sort(expert, stable=True).indices
    item, expert = item[order], expert[order]
    counts = torch.bincount(expert, minlength=aligned.numel())
    start = torch.cumsum(aligned, 0) - aligned
    row = start[expert] + torch.arange(item.numel(), device=item.device) - (torch.cumsum(counts, 0) - counts)[expert]
    token = item // topk_ids.shape[1]

    out = ctx.outputs
    out["expert_start_loc"].copy_((start + counts).int())
    out["m_indices"].copy_(torch.repeat_interleave(torch.arange(aligned.numel(), device=item.device), aligned).int())
    out["output_index"].reshape(-1)[item] = row.int()
    out["output_tensor"][row] = recv_x[token]
    out["output_tensor_scale"][row] = recv_x_scale[token]


TARGET = EP_SCATTER.with_kernel(
    "my-scatter-h128", my_scatter, "my torch EP scatter (H % 128 == 0 only)", domain=hidden_multiple_of_128
)
