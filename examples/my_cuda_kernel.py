"""Fuzz my own CUDA kernel (load_inline) against moefuzz's three_step_sort contract.

moefuzz run --targets examples/my_cuda_kernel.py --target three_step_sort --kernel my-cuda-sort --time 2m
"""

import torch

from moefuzz.execute.cuda_build import CudaBuild
from moefuzz.execute.cuda_compile import load_extension
from moefuzz_targets.three_step_sort import TARGET as THREE_STEP_SORT

CUDA = r"""#define P(x) x.data_ptr<int>()
__global__ void place(const int* ids, int T, int K, int s, int E, int64_t* off, int* p2u, int* u2p, int* pe, bool n) {
  int e = blockIdx.x * blockDim.x + threadIdx.x;  // one thread per local expert, items in (t, k) order
  if (e >= E) return;
  int64_t p = n ? 0 : off[e];
  for (int i = 0; i < T * K; ++i) {
    if (ids[i] - s != e) continue;
    if (!n) { int u = (i % K) * T + i / K; p2u[p] = u; u2p[u] = p; pe[p] = e; }
    ++p; }
  if (n) off[e + 1] = p; }  // n: only count
void sort(at::Tensor ids, at::Tensor off, at::Tensor a, at::Tensor b, at::Tensor c, int64_t s, bool n) {
  int E = off.numel() - 1;
  place<<<(E + 127) / 128, 128>>>(P(ids), ids.size(0), ids.size(1), s, E, off.data_ptr<int64_t>(), P(a), P(b), P(c), n);
}"""
BUILD = CudaBuild.inline("my_cuda_sort", CUDA[CUDA.index("void sort") :].split("{")[0] + ";", CUDA, ("sort",))
MAPS = ("permuted_row_to_unpermuted_row", "unpermuted_row_to_permuted_row", "permuted_token_selected_experts")


def my_cuda_sort(ctx):
    """My kernel: count each local expert's items, prefix-sum the counts in torch, place the items."""
    ids, start = ctx.inputs["token_selected_experts"].contiguous(), int(ctx.params["start_expert"])
    off, maps = ctx.outputs["expert_first_token_offset"].zero_(), [ctx.outputs[name] for name in MAPS]
    if ids.numel() and off.numel() > 1:
        load_extension(BUILD).sort(ids, off, *maps, start, True)
        off[1:] = torch.cumsum(off[1:], 0)
        load_extension(BUILD).sort(ids, off, *maps, start, False)


TARGET = THREE_STEP_SORT.with_kernel("my-cuda-sort", my_cuda_sort, "my CUDA sort (load_inline)", build=BUILD)
