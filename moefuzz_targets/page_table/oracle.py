"""The decode page table's reference in plain torch, to be checked by eye against the contract.

Mirrors what SGLang's trtllm_mha / FA3 backends mean by ``req_to_token[req_pool_indices,
:max_seq_len_k]`` taken every page_size-th column and divided by page_size (token locations
translated to the SWA pool first on a sliding-window layer, sglang#16267), with every cell past a
request's pages (or before its window) the reserved page 0, and FlashInfer's flattened form of the
same pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def page_table_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Build one attention layer's page table for a decode batch.

    Args:
        inputs: ``req_to_token`` [num_reqs_in_pool, max_context] int32, ``req_pool_indices`` [B]
            int64, ``seq_lens`` [B] int64, and on a sliding-window layer
            ``full_to_swa_index_mapping`` [num_pages * page_size] int64.
        params: ``page_size``, ``max_pages`` (columns of the table), ``sliding_window`` (W >= 1,
            or -1 for a full-attention layer).

    Returns:
        CPU int32 tensors: ``page_table`` [B, max_pages], ``kv_indptr`` [B + 1] and
        ``kv_indices`` [kv_indptr[-1]] (see ``contract.py`` for the definitions).
    """
    req_to_token = inputs["req_to_token"].cpu().to(torch.int64)
    req_pool_indices = inputs["req_pool_indices"].cpu()
    seq_lens = inputs["seq_lens"].cpu()
    mapping = inputs.get("full_to_swa_index_mapping")
    page_size = int(params["page_size"])
    window = int(params["sliding_window"])
    batch = seq_lens.shape[0]

    page_table = torch.zeros((batch, int(params["max_pages"])), dtype=torch.int64)  # 0: the safe page
    tables = [torch.zeros(0, dtype=torch.int64)]  # each request's pages, for the flattened form
    for i in range(batch):
        seq_len, row = int(seq_lens[i]), int(req_pool_indices[i])
        num = -(-seq_len // page_size)  # ceil: the pages holding positions 0..seq_len-1
        first = max(seq_len - window, 0) // page_size if mapping is not None else 0  # first page in the window
        slots = req_to_token[row, torch.arange(first, num) * page_size]  # first token location of each page
        if mapping is not None:
            slots = mapping.cpu()[slots]  # translate the token location, THEN divide
        page_table[i, first:num] = slots // page_size
        tables.append(page_table[i, first:num])

    kv_indptr = torch.zeros(batch + 1, dtype=torch.int64)
    kv_indptr[1:] = torch.cumsum(torch.tensor([t.numel() for t in tables[1:]], dtype=torch.int64), dim=0)
    return {
        "page_table": page_table.to(torch.int32),
        "kv_indptr": kv_indptr.to(torch.int32),
        "kv_indices": torch.cat(tables).to(torch.int32),
    }
