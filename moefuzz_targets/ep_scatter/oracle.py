"""ep_scatter's reference in plain torch, to be checked by eye against the contract.

Mirrors what LightLLM ``deepep_scatter_gather.py`` ``ep_scatter`` (``_fwd_kernel_ep_scatter_1``
and ``_fwd_kernel_ep_scatter_2``) is meant to compute, with one fixed order inside each expert's
segment: (t, k) order, where the kernel takes its atomics' order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def device_dtype(dtype: Scalar) -> torch.dtype:
    """The torch dtype of recv_x on the device: bf16, or float8_e4m3fn for ``fp8`` where this
    torch has it (bf16 otherwise: every e4m3 value is exact in bf16, so a copy is the same)."""
    if dtype == "fp8" and hasattr(torch, "float8_e4m3fn"):
        return torch.float8_e4m3fn
    return torch.bfloat16


def ep_scatter_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Expand the received tokens into rows grouped by local expert, segments aligned to 128.

    Args:
        inputs: ``recv_x`` [N, H] float32 (values exact in the device dtype), ``recv_x_scale``
            [N, S] float32 (S = 0 for bf16), ``recv_topk`` [N, K] int32 (local expert or -1),
            ``num_recv_tokens_per_expert`` [E] int32 (each expert's item count rounded up to 128).
        params: ``dtype`` (``bf16`` or ``fp8``: recv_x goes through that dtype, exactly).

    Returns:
        CPU tensors, with a_e the aligned count, n_e the items and start_e = sum_{e' < e} a_e' of
        expert e, M = sum_e a_e, and the items of e in (t, k) order taking rows start_e, start_e+1...:

        - ``output_tensor`` [M, H] float32: recv_x[t] on the row of item (t, k); NaN on padding rows.
        - ``output_tensor_scale`` [M, S] float32: recv_x_scale[t] likewise.
        - ``m_indices`` [M] int32: e on each of the a_e rows of e's segment.
        - ``output_index`` [N, K] int32: the row of item (t, k); -1 where recv_topk is -1.
        - ``expert_start_loc`` [E] int32: start_e + n_e.
    """
    recv_x = inputs["recv_x"].cpu().to(device_dtype(params["dtype"])).to(torch.float32)  # [N, H]
    recv_x_scale = inputs["recv_x_scale"].cpu()  # [N, S]
    recv_topk = inputs["recv_topk"].cpu().to(torch.int64)  # [N, K]
    aligned = inputs["num_recv_tokens_per_expert"].cpu().to(torch.int64)  # [E]
    num_tokens, topk = recv_topk.shape
    num_experts = aligned.numel()
    num_rows = int(aligned.sum())

    flat = recv_topk.reshape(-1)  # item i = t * K + k: already in (t, k) order
    item = torch.arange(flat.numel())[flat >= 0]
    expert = flat[flat >= 0]
    counts = torch.bincount(expert, minlength=num_experts)  # n_e
    start = torch.cumsum(aligned, 0) - aligned  # start_e
    # A stable sort by expert keeps (t, k) order inside each expert; rank = place among its items.
    order = torch.sort(expert, stable=True).indices
    item, expert = item[order], expert[order]
    rank = torch.arange(item.numel()) - (torch.cumsum(counts, 0) - counts)[expert]
    row = start[expert] + rank
    token = item // topk

    output_tensor = torch.full((num_rows, recv_x.shape[1]), float("nan"))
    output_tensor[row] = recv_x[token]
    output_tensor_scale = torch.full((num_rows, recv_x_scale.shape[1]), float("nan"))
    output_tensor_scale[row] = recv_x_scale[token]
    output_index = torch.full((num_tokens * topk,), -1, dtype=torch.int32)
    output_index[item] = row.to(torch.int32)
    return {
        "output_tensor": output_tensor,
        "output_tensor_scale": output_tensor_scale,
        "m_indices": torch.repeat_interleave(torch.arange(num_experts), aligned).to(torch.int32),
        "output_index": output_index.reshape(num_tokens, topk),
        "expert_start_loc": (start + counts).to(torch.int32),
    }
