"""ep_gather's reference in plain torch, to be checked by eye against the contract.

Mirrors what LightLLM ``deepep_scatter_gather.py`` ``ep_gather`` (``_fwd_kernel_ep_gather``) is
meant to compute: each token's weighted sum of the rows its valid top-k slots point to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def ep_gather_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Reduce expert rows back to tokens.

    Args:
        inputs: ``input_tensor`` [M, H] float32 (bf16 values; NaN allowed in rows no valid slot
            names), ``recv_topk`` [N, K] int32 (local expert or -1), ``recv_topk_weight`` [N, K]
            float32, ``input_index`` [N, K] int32 (row of each valid slot; -1 slots: any value).
        params: ``num_experts`` (unused here: only the sign of an id matters).

    Returns:
        ``output_tensor`` [N, H] float32 holding bf16 values: for each token t,
        bf16(sum over k with recv_topk[t, k] >= 0 of weight[t, k] * input_tensor[input_index[t, k]]),
        accumulated in fp32 in k order; 0 for a token with no valid slot.
    """
    values = inputs["input_tensor"].cpu().to(torch.bfloat16).to(torch.float32)  # [M, H]
    topk = inputs["recv_topk"].cpu()  # [N, K]
    weight = inputs["recv_topk_weight"].cpu()  # [N, K]
    index = inputs["input_index"].cpu().to(torch.int64)  # [N, K]
    num_tokens, top_k = topk.shape
    out = torch.zeros((num_tokens, values.shape[1]), dtype=torch.float32)
    for k in range(top_k):
        valid = topk[:, k] >= 0  # -1 slots are skipped: their index and weight are never read
        out[valid] += weight[valid, k, None] * values[index[valid, k]]
    return {"output_tensor": out.to(torch.bfloat16).to(torch.float32)}
