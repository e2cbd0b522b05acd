"""moefuzz's CUDA decode page table (``cuda/page_table.cu``) as kernel entries.

Same contract and buffers as ``kernels.py``; the compiled extension comes from moefuzz's build
cache (:func:`moefuzz.execute.cuda_compile.load_extension`), built before the workers start::

    req_to_token               [num_reqs_in_pool, max_context] int32
    req_pool_indices           [B] int64
    seq_lens                   [B] int64
    full_to_swa_index_mapping  [num_pages * page_size] int64   (sliding-window layers only)
    page_table                 [B, max_pages] int32
    kv_indptr                  [B + 1] int32
    kv_indices                 [kv_indptr[-1]] int32
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moefuzz.execute.cuda_build import CudaBuild
    from moefuzz.execute.launch import LaunchContext


def _launch(ctx: LaunchContext, build: CudaBuild) -> None:
    import torch

    from moefuzz.execute.cuda_compile import load_extension

    seq_lens = ctx.inputs["seq_lens"].contiguous()
    mapping = ctx.inputs.get("full_to_swa_index_mapping")
    out = ctx.outputs
    max_pages = int(ctx.params["max_pages"])
    if tuple(out["page_table"].shape) != (seq_lens.shape[0], max_pages):
        raise ValueError(f"page_table CUDA kernels write a [B, max_pages] table: {tuple(out['page_table'].shape)!r}")
    no_mapping = torch.empty(0, dtype=torch.int64, device=seq_lens.device)
    load_extension(build).page_table(
        ctx.inputs["req_to_token"].contiguous(),
        ctx.inputs["req_pool_indices"].contiguous(),
        seq_lens,
        mapping.contiguous() if mapping is not None else no_mapping,
        out["page_table"],
        out["kv_indptr"],
        out["kv_indices"],
        int(ctx.params["page_size"]),
        max_pages,
        int(ctx.params["sliding_window"]),
    )


def page_table_cuda(ctx: LaunchContext) -> None:
    """moefuzz's correct CUDA page table: reads only a request's table pages, translates token
    locations before dividing, pads with page 0.

    Raises:
        ValueError: an output ``page_table`` not [B, max_pages].
        BuildError: the extension could not be built (normally built before the campaign).
    """
    from moefuzz_targets.page_table.cuda import BUILD

    _launch(ctx, BUILD)


def page_table_cuda_bug_trailing_entries(ctx: LaunchContext) -> None:
    """Bug model of sglang-trtllm-mha-page-table-oob in CUDA: the cells of req_to_token past
    seq_len are read, translated and stored instead of page 0 (a wild cell on a sliding-window
    layer reads far outside ``full_to_swa_index_mapping``: an illegal memory access). Same
    arguments and errors as :func:`page_table_cuda`."""
    from moefuzz_targets.page_table.cuda import BUILD_TRAILING_ENTRIES

    _launch(ctx, BUILD_TRAILING_ENTRIES)
