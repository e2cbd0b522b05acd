"""alloc_extend's reference in plain torch, one request at a time, to be checked by eye.

Mirrors what sglang's ``PagedTokenToKVPoolAllocator.alloc_extend`` / ``alloc_decode``
(``python/sglang/srt/mem_cache/allocator.py``) are meant to hand out; written from the contract,
not from the kernels (sglang's own ``alloc_extend_naive`` splits the same rule into three parts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def alloc_extend_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """New token slots of a batch of requests, in batch order.

    Args:
        inputs: ``prefix_lens`` [B] int64, ``seq_lens`` [B] int64, ``last_loc`` [B] int64 (slot
            of the last prefix token, -1 for an empty prefix), ``free_pages`` [>= num_free] int64
            (page ids in allocation order; entries past ``num_free`` are never read).
        params: ``page_size``, ``num_free``.

    Returns:
        ``out_indices`` [sum(seq_lens - prefix_lens)] int64 CPU tensor: for request i, position p
        in [prefix, seq) gets

        - ``last_loc + 1 + (p - prefix)`` while p is on the last prefix page
          (p < ceil(prefix / page_size) * page_size);
        - else ``page * page_size + p % page_size``, page = the request's j-th new page,
          j = p // page_size - ceil(prefix / page_size), taken from the free list in order
          after the pages of requests 0..i-1.

    Raises:
        ValueError: the batch needs more than ``num_free`` pages (``contract.check`` refuses it).
    """
    prefix_lens = inputs["prefix_lens"].cpu().tolist()
    seq_lens = inputs["seq_lens"].cpu().tolist()
    last_loc = inputs["last_loc"].cpu().tolist()
    page_size = int(params["page_size"])
    free_pages = inputs["free_pages"].cpu()[: int(params["num_free"])]

    out: list[torch.Tensor] = []
    taken = 0  # free pages handed to earlier requests
    for prefix, seq, last in zip(prefix_lens, seq_lens, last_loc, strict=True):
        prefix_pages = -(-prefix // page_size)  # pages the prefix holds (the last one maybe partly)
        seq_pages = -(-seq // page_size)
        pages = free_pages[taken : taken + seq_pages - prefix_pages]  # this request's new pages
        if pages.numel() != seq_pages - prefix_pages:
            raise ValueError(f"free list of {free_pages.numel()} pages runs out at request {len(out)}")
        taken += seq_pages - prefix_pages

        positions = torch.arange(prefix, seq, dtype=torch.int64)
        slots = last + 1 + (positions - prefix)  # the rest of the last prefix page...
        new = positions >= prefix_pages * page_size  # ...until the positions of new pages
        j = positions[new] // page_size - prefix_pages  # the request's j-th new page
        slots[new] = pages[j] * page_size + positions[new] % page_size
        out.append(slots)
    out_indices = torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)
    return {"out_indices": out_indices.to(torch.int64)}
