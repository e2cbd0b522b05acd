"""sglang 0.5.23 page-table builders fuzzed against moefuzz's page_table contract.

Upstream: ``sglang/kernels/ops/attention/kv_indices.py``, two kernels launched one after the
other, each as its sglang caller launches it:

1. ``create_flashmla_kv_indices_triton`` builds the padded ``page_table`` [B, max_pages] from
   ``req_to_token`` (``flashmla_backend.py``: grid ``(bs, get_num_kv_index_blocks_flashmla(
   max_pages, page_size))``, ``kv_start_idx=None``), with ``PAGED_SIZE=page_size``;
2. ``create_flashinfer_kv_indices_triton`` flattens it into ``kv_indices`` (grid ``(bs,)``,
   ``kv_start_idx=None``), reading the page table as its token table (row i of request i, n[i]
   entries), so its output is the contract's page ids.

Glue, as sglang's backends do it in torch: ``page_table`` is filled with the contract's padding
page 0 before step 1 (sglang's callers fill their buffer first too), and ``kv_indptr`` is the
exclusive prefix sum of the per-request page counts (``flashinfer_backend.py`` takes
``torch.cumsum`` of the lengths), so it is not a kernel under test.

Run ``benchmarks/upstream/fetch.sh`` first, then::

    moefuzz run --targets benchmarks/upstream/sglang_kv_indices.py --target page_table \\
        --kernel sglang-kv-indices --time 10m

Domain: a full-attention layer (``sliding_window = -1``: neither kernel translates SWA slots nor
starts at a window) and a power-of-two ``page_size`` (step 1 builds ``tl.arange(0, 4096 //
page_size)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from benchmarks.upstream._support import is_power_of_two, load_upstream, outside_domain, with_domain
from moefuzz.model.case import Case
from moefuzz_targets.page_table import TARGET as PAGE_TABLE

if TYPE_CHECKING:
    from moefuzz.execute.launch import LaunchContext

RELEASE = "sglang-0.5.23"
SOURCE = "sglang/kernels/ops/attention/kv_indices.py"


def domain(case: Case) -> bool:
    """sliding_window = -1 and a power-of-two page_size."""
    return int(case.params["sliding_window"]) == -1 and is_power_of_two(int(case.params["page_size"]))


def sglang_kv_indices(ctx: LaunchContext) -> None:
    """Build ``page_table``, ``kv_indptr`` and ``kv_indices`` with sglang's two kernels.

    Reads ``req_to_token`` [rows, max_context] int32, ``req_pool_indices`` and ``seq_lens`` [B]
    int64, the params ``page_size`` and ``max_pages``; writes ``page_table`` [B, max_pages],
    ``kv_indptr`` [B + 1] and ``kv_indices`` [kv_indptr[-1]], all int32.
    """
    if outside_domain(ctx, PAGE_TABLE, domain):
        return
    upstream = load_upstream(RELEASE, SOURCE)
    req_to_token = ctx.inputs["req_to_token"]
    req_pool_indices = ctx.inputs["req_pool_indices"]
    seq_lens = ctx.inputs["seq_lens"]
    page_table, kv_indptr = ctx.outputs["page_table"], ctx.outputs["kv_indptr"]
    page_size, max_pages = int(ctx.params["page_size"]), int(ctx.params["max_pages"])
    batch = seq_lens.shape[0]
    page_table.fill_(0)
    if batch:
        upstream.create_flashmla_kv_indices_triton[
            (batch, upstream.get_num_kv_index_blocks_flashmla(max_pages, page_size))
        ](
            req_to_token,
            req_pool_indices,
            seq_lens,
            None,
            page_table,
            req_to_token.stride(0),
            page_table.stride(0),
            PAGED_SIZE=page_size,
        )
    pages = (seq_lens + page_size - 1) // page_size
    kv_indptr[0] = 0
    kv_indptr[1:] = torch.cumsum(pages, 0).to(kv_indptr.dtype)
    if batch:
        upstream.create_flashinfer_kv_indices_triton[(batch,)](
            page_table,
            torch.arange(batch, device=seq_lens.device),
            pages,
            kv_indptr,
            None,
            ctx.outputs["kv_indices"],
            page_table.stride(0),
        )


TARGET = with_domain(
    PAGE_TABLE,
    "sglang-kv-indices",
    sglang_kv_indices,
    f"{RELEASE} {SOURCE} create_flashmla_kv_indices_triton + create_flashinfer_kv_indices_triton",
    domain,
)
