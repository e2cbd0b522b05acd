"""alloc_extend: SGLang's paged token-slot allocator (extend and decode steps).

Files: ``contract.py`` (preconditions, output size, the slot properties and the comparison,
explanations), ``oracle.py`` (``alloc_extend_torch``), ``kernels.py`` (moefuzz's Triton extend
and decode kernels: the correct default and the ``bug-page-past-capacity`` model), ``strategy.py``
(cases from the engine's paged KV cache states, the free list with a poisoned tail),
``shrink.py`` (passes that keep the batch and its free list consistent).
"""

from moefuzz.model.convention import conventional_target, kernel

TARGET = conventional_target(
    __name__,
    summary="Paged KV token slots for an extend or decode batch: finish the last prefix page, then free pages in order",
    source="sglang python/sglang/srt/mem_cache/allocator.py PagedTokenToKVPoolAllocator "
    "(alloc_extend_kernel, alloc_decode_kernel)",
    kernels=(
        kernel(
            "triton",
            "moefuzz's correct Triton allocator: extend kernel, decode kernel for one-token batches",
        ),
        kernel(
            "bug-page-past-capacity",
            "decode: a prefix ending on a page boundary 'has room', its token goes to the next page, "
            "past the cache when its last page is the final one",
            models_bug="SGLang trtllm_mha page-table OOB (pyc96/sglang#3): the allocator emits page index "
            "num_pages, one past the cache",
        ),
    ),
    launch_knobs={"num_warps": (1, 2, 4, 8, 16)},
)
