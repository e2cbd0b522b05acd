"""paged_decode: one decode step of paged attention with GQA and a sliding window.

Files: ``contract.py`` (preconditions, output spec, tolerance comparison, explanations),
``oracle.py`` (``paged_decode_torch``), ``kernels.py`` (moefuzz's Triton kernel: the correct
default and the ``bug-window-off-by-one`` and ``bug-trailing-pages`` models), ``strategy.py``
(cases from the engine's paged KV cache strategy, garbage past each request's pages),
``shrink.py`` (passes over requests, heads, lengths, window, head dim and page layout).
"""

from moefuzz.model.convention import conventional_target, kernel

TARGET = conventional_target(
    __name__,
    summary="paged decode attention: GQA, sliding window, page_table rows with garbage past each request's pages",
    source="FlashInfer decode.py trtllm_batch_decode_with_kv_cache; FA3 flash_attn_with_kvcache(page_table=, "
    "cache_seqlens=, window_size=(W-1, 0)) as SGLang's trtllm_mha and fa3 backends call them",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton decode: online softmax over the attended positions, page ids loaded masked",
        ),
        kernel(
            "bug-window-off-by-one",
            "window start L - W - 1: attends W + 1 positions (window_left = W where W - 1 was meant)",
            models_bug="inclusive/exclusive sliding-window confusion: FA window_size=(W-1, 0) and FlashInfer "
            "window_left=W-1 mean the last W positions; SGLang passes config.sliding_window - 1",
        ),
        kernel(
            "bug-trailing-pages",
            "page ids of a whole block dereferenced past ceil(L / page_size), masked only at the softmax",
            models_bug="sglang-trtllm-mha-page-table-oob: trtllm decode read page_table entries past a request's "
            "pages (garbage from req_to_token) and hit an illegal memory access",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
