"""The CUDA source of moe_align_block_size's ``cuda`` kernels: one ``.cu`` file, its bug models
``-D`` defines of the same source (see the file's header)."""

from moefuzz.execute.cuda_build import CudaBuild

#: moefuzz's correct CUDA moe_align_block_size.
BUILD = CudaBuild.from_files("moe_align_block_size_cuda", "moe_align_block_size.cu", relative_to=__file__)
#: The same source with upstream's only guard, ``id >= num_experts``: a -1 id goes on as an index.
BUILD_NEGATIVE_ID = BUILD.with_defines(MOEFUZZ_BUG_NEGATIVE_ID=1)
#: The same source taking the per-thread-count kernel whatever E: its shared memory grows with E.
BUILD_SMEM_EXPERTS = BUILD.with_defines(MOEFUZZ_BUG_SMEM_EXPERTS=1)
