"""stream_overlap's reference in plain torch: the schedule run serially, one batch at a time.

No streams, no spin: batch b's forward writes its slots, then batch b's copy snapshots its pages,
then batch b+1 begins. That is the order the two fences of sgl-project/sglang#20611 enforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from moefuzz.model.case import Scalar


def stream_overlap_torch(inputs: Mapping[str, torch.Tensor], params: Mapping[str, Scalar]) -> dict[str, torch.Tensor]:
    """Run the write-through schedule serially.

    Args:
        inputs: ``batch_pages`` [B, P] int32 (-1 = no page), ``page_fills`` [B, P] int32,
            ``kernel_lengths`` [B] int32 (timing only: unused here).
        params: ``num_pages`` N, ``page_size`` S, ``slot_size`` D (``copy_method`` is unused).

    Returns:
        ``host_pages`` [B, P, S, D] int32 on the CPU: ``host_pages[b, j]`` is page
        ``batch_pages[b, j]`` of the pool right after batch b's forward; 0 in rows of -1 pages.

    Raises:
        Nothing on inputs that pass ``contract.check``.
    """
    pages = inputs["batch_pages"].cpu().to(torch.int64)
    fills = inputs["page_fills"].cpu().to(torch.int64)
    num_pages, page_size, slot_size = int(params["num_pages"]), int(params["page_size"]), int(params["slot_size"])
    num_slots = num_pages * page_size
    num_batches, per_batch = pages.shape

    pool = torch.zeros((num_slots, slot_size), dtype=torch.int64)  # the device KV pool starts at 0
    elements = torch.arange(slot_size)
    host_pages = torch.zeros((num_batches, per_batch, page_size, slot_size), dtype=torch.int64)
    for batch in range(num_batches):
        # forward: batch b writes the first page_fills[b, j] slots of each of its pages
        for j in range(per_batch):
            page = int(pages[batch, j])
            if page >= 0:
                slots = page * page_size + torch.arange(int(fills[batch, j]))
                pool[slots] = (batch * num_slots + slots[:, None]) * slot_size + elements[None, :] + 1
        # copy: then its pages, whole, to the host
        for j in range(per_batch):
            page = int(pages[batch, j])
            if page >= 0:
                host_pages[batch, j] = pool[page * page_size : (page + 1) * page_size]
    return {"host_pages": host_pages.to(torch.int32)}
