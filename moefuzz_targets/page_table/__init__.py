"""page_table: a decode batch's per-request page table over a paged KV cache, padded and flattened.

Files: ``contract.py`` (preconditions, output specs, comparison, explanations), ``oracle.py``
(``page_table_torch``), ``kernels.py`` (moefuzz's Triton kernel: the correct default and the
``bug-trailing-entries`` and ``bug-translate-page-ids`` models), ``cuda/`` and ``cuda_kernels.py``
(the table in CUDA C++, with ``bug-cuda-trailing-entries``), ``strategy.py`` (cases from the
engine's paged KV cache strategy), ``shrink.py`` (passes that keep the paged layout).
"""

from moefuzz.model.convention import conventional_target, kernel
from moefuzz_targets.page_table import cuda

TARGET = conventional_target(
    __name__,
    summary="decode page table: strided req_to_token // page_size, SWA translation, safe trailing pages, "
    "kv_indptr/kv_indices",
    source="SGLang layers/attention trtllm_mha_backend.py + flashattention_backend.py (page_table), "
    "flashinfer_backend.py + utils.py create_flashinfer_kv_indices_triton (kv_indptr, kv_indices)",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton table: reads only table pages, translates token locations, pads with 0",
        ),
        kernel(
            "bug-trailing-entries",
            "translates and stores the garbage cells of req_to_token past seq_len instead of page 0",
            models_bug="sglang trtllm_mha + hybrid SWA: page_table = req_to_token[req_pool_indices, :max_seq_len_k] "
            "keeps cells past cache_seqlens (seed sglang-trtllm-mha-page-table-oob, pyc96/sglang#3)",
        ),
        kernel(
            "bug-translate-page-ids",
            "SWA layer: full_to_swa_index_mapping[slot // page_size] instead of mapping[slot] // page_size",
            models_bug="sgl-project/sglang#16267: SWA page table translated page ids instead of token locations "
            "(identical only at page_size 1)",
        ),
        kernel(
            "cuda",
            "moefuzz's correct CUDA table (cuda/page_table.cu): table pages only, SWA translation, page 0 padding",
            entry="moefuzz_targets.page_table.cuda_kernels:page_table_cuda",
            build=cuda.BUILD,
        ),
        kernel(
            "bug-cuda-trailing-entries",
            "CUDA: translates and stores the garbage cells of req_to_token past seq_len instead of page 0",
            models_bug="sglang trtllm_mha + hybrid SWA page table keeps cells past cache_seqlens "
            "(seed sglang-trtllm-mha-page-table-oob), in CUDA",
            entry="moefuzz_targets.page_table.cuda_kernels:page_table_cuda_bug_trailing_entries",
            build=cuda.BUILD_TRAILING_ENTRIES,
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
