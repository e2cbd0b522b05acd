"""The CUDA source of page_table's ``cuda`` kernels: one ``.cu`` file, its bug model a ``-D``
define of the same source (see the file's header)."""

from moefuzz.execute.cuda_build import CudaBuild

#: moefuzz's correct CUDA page table.
BUILD = CudaBuild.from_files("page_table_cuda", "page_table.cu", relative_to=__file__)
#: The same source reading and translating the cells past seq_len.
BUILD_TRAILING_ENTRIES = BUILD.with_defines(MOEFUZZ_BUG_TRAILING_ENTRIES=1)
