"""paged_decode's reference in plain torch, fp32, to be checked by eye against the contract.

One decode step of paged attention (the contract is in ``contract.py``): for each request i, the
query at position L - 1 (L = cache_seqlens[i], the new token's K/V already in the cache) attends
the positions [start, L) with start = max(0, L - W) under a sliding window W > 0, else 0. Each
position p lives at slot p % page_size of page page_table[i, p // page_size]; only the pages of
attended positions are gathered, so the trailing (garbage) entries of a row are never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def attended_positions(seq_len: int, sliding_window: int) -> range:
    """Positions the query at ``seq_len - 1`` attends: the last ``sliding_window`` when it is > 0
    (FA's window_size=(W-1, 0), FlashInfer's window_left=W-1), else all of [0, seq_len)."""
    start = max(0, seq_len - sliding_window) if sliding_window > 0 else 0
    return range(start, seq_len)


def paged_decode_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Decode attention of B requests through their page tables, with GQA and a sliding window.

    Args:
        inputs: ``q`` [B, Hq, D] float32; ``k_cache``, ``v_cache`` [num_pages, page_size, Hkv,
            D] float32; ``page_table`` [B, max_pages] int32; ``cache_seqlens`` [B] int32.
        params: ``sliding_window`` W (0: none), ``sm_scale`` (the scale of q . k).

    Returns:
        ``o`` [B, Hq, D] float32 on the CPU: for q head h (kv head h // (Hq // Hkv)),
        o[i, h] = sum_p softmax_p(sm_scale * q[i, h] . K[p]) V[p] over the attended positions p;
        0 for a request that attends nothing (L = 0).
    """
    q = inputs["q"].cpu().to(torch.float32)  # [B, Hq, D]
    k_cache = inputs["k_cache"].cpu().to(torch.float32)  # [num_pages, page_size, Hkv, D]
    v_cache = inputs["v_cache"].cpu().to(torch.float32)
    page_table = inputs["page_table"].cpu().to(torch.int64)  # [B, max_pages]
    cache_seqlens = inputs["cache_seqlens"].cpu().to(torch.int64)  # [B]
    sliding_window = int(params["sliding_window"])
    sm_scale = torch.tensor(float(params["sm_scale"]), dtype=torch.float32)
    batch, num_q_heads, _ = q.shape
    page_size, num_kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = num_q_heads // num_kv_heads

    o = torch.zeros_like(q)
    for i in range(batch):
        positions = torch.tensor(attended_positions(int(cache_seqlens[i]), sliding_window), dtype=torch.int64)
        if positions.numel() == 0:
            continue  # nothing attended: o stays 0 (FA: "if the row of the mask is all zero, the output is zero")
        pages = page_table[i, positions // page_size]  # [n] only the attended positions' entries
        offsets = positions % page_size
        keys = k_cache[pages, offsets].repeat_interleave(group, dim=1)  # [n, Hq, D]: q head h reads kv head h // G
        values = v_cache[pages, offsets].repeat_interleave(group, dim=1)
        scores = torch.einsum("hd,nhd->hn", q[i], keys) * sm_scale  # [Hq, n]
        weights = torch.softmax(scores, dim=1)
        o[i] = torch.einsum("hn,nhd->hd", weights, values)
    return {"o": o}
