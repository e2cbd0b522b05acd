"""page_table: a decode batch's per-request page table over a paged KV cache, padded and flattened.

Files: ``contract.py`` (preconditions, output specs, comparison, explanations), ``oracle.py``
(``page_table_torch``), ``kernels.py`` (moefuzz's Triton kernel: the correct default and the
``bug-trailing-entries`` and ``bug-translate-page-ids`` models), ``strategy.py`` (cases from the
engine's paged KV cache strategy), ``shrink.py`` (passes that keep the paged layout).
"""

from moefuzz.model.target import KernelSpec, Target
from moefuzz_targets.page_table import contract, shrink
from moefuzz_targets.page_table.domain import DOMAIN
from moefuzz_targets.page_table.strategy import cases

TARGET = Target(
    name="page_table",
    summary="decode page table: strided req_to_token // page_size, SWA translation, safe trailing pages, "
    "kv_indptr/kv_indices",
    source="SGLang layers/attention trtllm_mha_backend.py + flashattention_backend.py (page_table), "
    "flashinfer_backend.py + utils.py create_flashinfer_kv_indices_triton (kv_indptr, kv_indices)",
    strategy=cases,
    check=contract.check,
    output_specs=contract.output_specs,
    oracle="moefuzz_targets.page_table.oracle:page_table_torch",
    compare=contract.compare,
    explain=contract.explain,
    kernels=(
        KernelSpec(
            "triton",
            "moefuzz_targets.page_table.kernels:page_table_triton",
            "moefuzz's correct Triton table: reads only table pages, translates token locations, pads with 0",
        ),
        KernelSpec(
            "bug-trailing-entries",
            "moefuzz_targets.page_table.kernels:page_table_bug_trailing_entries",
            "translates and stores the garbage cells of req_to_token past seq_len instead of page 0",
            models_bug="sglang trtllm_mha + hybrid SWA: page_table = req_to_token[req_pool_indices, :max_seq_len_k] "
            "keeps cells past cache_seqlens (seed sglang-trtllm-mha-page-table-oob, pyc96/sglang#3)",
        ),
        KernelSpec(
            "bug-translate-page-ids",
            "moefuzz_targets.page_table.kernels:page_table_bug_translate_page_ids",
            "SWA layer: full_to_swa_index_mapping[slot // page_size] instead of mapping[slot] // page_size",
            models_bug="sgl-project/sglang#16267: SWA page table translated page ids instead of token locations "
            "(identical only at page_size 1)",
        ),
    ),
    shrink_passes=shrink.passes(),
    size=shrink.size,
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
    explain_crash=contract.explain_crash,
    domain=DOMAIN,
)
