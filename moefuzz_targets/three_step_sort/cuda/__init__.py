"""The CUDA source of three_step_sort's ``cuda`` kernels: one ``.cu`` file, its bug model a ``-D``
define of the same source (see the file's header)."""

from moefuzz.execute.cuda_build import CudaBuild

#: moefuzz's correct CUDA three-step sort.
BUILD = CudaBuild.from_files("three_step_sort_cuda", "three_step_sort.cu", relative_to=__file__)
#: The same source with a token's top-k loop stopping at the first matching slot.
BUILD_FIRST_MATCH = BUILD.with_defines(MOEFUZZ_BUG_FIRST_MATCH=1)
