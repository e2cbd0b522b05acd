// moefuzz's CUDA moe_align_block_size, written after the structure of vLLM's
// csrc/moe/moe_align_sum_kernels.cu (our code, their design):
//
//   numel < 1024 and E <= 64   small_batch_kernel    one block; per-thread counts in shared
//                                                    memory cnts[(tid + 1) * E + e], a scan over
//                                                    the threads, the padded cumsum, placement by
//                                                    each thread's own prefix
//   otherwise                  align_kernel          one block of 1024 threads: shared counts
//                                                    (atomics), a block scan of the padded counts
//                              sort_tokens_kernel    grid-stride: slot = atomicAdd(cursor[e], 1)
//
// Items: flat index i = t * K + k of topk_ids [M, K] int32; kept when 0 <= id < E and, with an
// expert_map, expert_map[id] != -1. sorted_token_ids is filled with numel first, expert_ids past
// the segments with -1 (the contract in contract.py).
//
// Bug models (compile-time):
//   -DMOEFUZZ_BUG_NEGATIVE_ID=1   upstream's only guard, `if (expert_id >= num_experts) continue;`:
//       a -1 id goes on as an index. In the per-thread table cnts[(tid + 1) * E - 1] is the previous
//       row's expert E - 1 counter, as upstream; the reads cumsum[-1] and cursor[-1] land on a zero
//       word this file keeps in front of those arrays (upstream reads whatever precedes them), so the
//       model is deterministic: the -1 item is written over slot 0 or the first slot past the
//       segments. With a map the -1 skips the lookup (expert_map[-1] would read another tensor).
//   -DMOEFUZZ_BUG_SMEM_EXPERTS=1  the small-batch kernel is taken for every numel < 1024 whatever E:
//       its shared memory, ((threads + 1) * E + E + 2) ints, passes the 48 KiB a launch gets without
//       opting in from E ~ 110 on, and the launch fails (a launch failure, raised as an error).
//
// A failed launch is returned to Python as its error text (the empty string: launched), which
// raises it: no C++ exception crosses into the interpreter for what the kernel under test does.

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <torch/extension.h>

#include <climits>
#include <string>
#include <cub/cub.cuh>

#ifndef MOEFUZZ_BUG_NEGATIVE_ID
#define MOEFUZZ_BUG_NEGATIVE_ID 0
#endif
#ifndef MOEFUZZ_BUG_SMEM_EXPERTS
#define MOEFUZZ_BUG_SMEM_EXPERTS 0
#endif

namespace {

constexpr int kAlignThreads = 1024;
constexpr int kSortThreads = 256;
constexpr int kSkip = INT_MIN;  // expert_of: the contract skips this item
constexpr int kWarp = 32;

__device__ __forceinline__ int ceil_to(int count, int block_size) {
  return (count + block_size - 1) / block_size * block_size;
}

// The expert (local with a map) of flat item i, or kSkip.
__device__ __forceinline__ int expert_of(const int* __restrict__ ids, const int* __restrict__ expert_map,
                                         bool has_map, int i, int num_experts) {
  int id = ids[i];
#if MOEFUZZ_BUG_NEGATIVE_ID
  if (id >= num_experts) return kSkip;  // upstream's only guard: -1 goes on
  if (has_map && id >= 0) {
    id = expert_map[id];
    if (id == -1) return kSkip;
  }
  return id;
#else
  if (id < 0 || id >= num_experts) return kSkip;
  if (has_map) {
    id = expert_map[id];
    if (id < 0) return kSkip;
  }
  return id;
#endif
}

// numel < 1024: one block of `threads` (>= E) threads. Shared memory, in ints:
//   [0]                    zero word (what cumsum[-1] reads under the bug model)
//   [1, E + 2)             cumsum[0..E]
//   [E + 2, ...)           cnts[(threads + 1) * E]; row r + 1 holds thread r's counts
__global__ void small_batch_kernel(const int* __restrict__ ids, const int* __restrict__ expert_map, bool has_map,
                                   int* __restrict__ sorted_ids, int* __restrict__ expert_ids,
                                   int* __restrict__ total_post_pad, int num_experts, int block_size, int numel,
                                   int num_slots, int num_expert_blocks) {
  extern __shared__ int shared[];
  int* cumsum = shared + 1;
  int* cnts = shared + num_experts + 2;
  const int tid = threadIdx.x;
  const int stride = blockDim.x;
  const int E = num_experts;
  for (int i = tid; i < num_slots; i += stride) sorted_ids[i] = numel;
  if (tid == 0) shared[0] = 0;
  for (int e = 0; e < E; ++e) cnts[(tid + 1) * E + e] = 0;
  __syncthreads();
  for (int i = tid; i < numel; i += stride) {
    const int e = expert_of(ids, expert_map, has_map, i, E);
    if (e != kSkip) ++cnts[(tid + 1) * E + e];
  }
  __syncthreads();
  if (tid < E) {  // column tid: row r becomes the count of threads < r
    cnts[tid] = 0;
    for (int r = 1; r <= stride; ++r) cnts[r * E + tid] += cnts[(r - 1) * E + tid];
  }
  __syncthreads();
  if (tid == 0) {
    cumsum[0] = 0;
    for (int e = 1; e <= E; ++e) cumsum[e] = cumsum[e - 1] + ceil_to(cnts[stride * E + e - 1], block_size);
    *total_post_pad = cumsum[E];
  }
  __syncthreads();
  if (tid < E) {
    for (int i = cumsum[tid]; i < cumsum[tid + 1]; i += block_size) expert_ids[i / block_size] = tid;
  }
  for (int j = cumsum[E] / block_size + tid; j < num_expert_blocks; j += stride) expert_ids[j] = -1;
  __syncthreads();
  for (int i = tid; i < numel; i += stride) {
    const int e = expert_of(ids, expert_map, has_map, i, E);
    if (e == kSkip) continue;
    const int slot = cnts[tid * E + e] + cumsum[e];
    sorted_ids[slot] = i;
    ++cnts[tid * E + e];
  }
}

// One block of kAlignThreads (E <= 1024): counts, the padded scan into cursor[0..E], expert_ids.
// Shared memory: [0] zero word (what counts[-1] hits under the bug model), then counts[E].
__global__ void align_kernel(const int* __restrict__ ids, const int* __restrict__ expert_map, bool has_map,
                             int* __restrict__ sorted_ids, int* __restrict__ expert_ids,
                             int* __restrict__ total_post_pad, int* __restrict__ cursor, int num_experts,
                             int block_size, int numel, int num_slots, int num_expert_blocks) {
  extern __shared__ int shared[];
  int* counts = shared + 1;
  using BlockScan = cub::BlockScan<int, kAlignThreads>;
  __shared__ typename BlockScan::TempStorage temp;
  const int tid = threadIdx.x;
  for (int i = tid; i < num_slots; i += kAlignThreads) sorted_ids[i] = numel;
  if (tid == 0) shared[0] = 0;
  for (int e = tid; e < num_experts; e += kAlignThreads) counts[e] = 0;
  __syncthreads();
  for (int i = tid; i < numel; i += kAlignThreads) {
    const int e = expert_of(ids, expert_map, has_map, i, num_experts);
    if (e != kSkip) atomicAdd(&counts[e], 1);
  }
  __syncthreads();
  const int padded = tid < num_experts ? ceil_to(counts[tid], block_size) : 0;
  int start = 0;
  int total = 0;
  BlockScan(temp).ExclusiveSum(padded, start, total);
  if (tid < num_experts) {
    cursor[tid] = start;
    for (int i = start; i < start + padded; i += block_size) expert_ids[i / block_size] = tid;
  }
  if (tid == 0) {
    cursor[num_experts] = total;
    *total_post_pad = total;
  }
  for (int j = total / block_size + tid; j < num_expert_blocks; j += kAlignThreads) expert_ids[j] = -1;
}

// Grid-stride placement: each kept item takes the next slot of its expert's segment.
__global__ void sort_tokens_kernel(const int* __restrict__ ids, const int* __restrict__ expert_map, bool has_map,
                                   int* __restrict__ sorted_ids, int* __restrict__ cursor, int num_experts,
                                   int numel) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < numel; i += gridDim.x * blockDim.x) {
    const int e = expert_of(ids, expert_map, has_map, i, num_experts);
    if (e == kSkip) continue;
    sorted_ids[atomicAdd(&cursor[e], 1)] = i;
  }
}

// The launch error of the kernel just launched as a message ("" when it launched).
std::string launch_error(const char* kernel, size_t shared_bytes) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return "";
  return std::string("CUDA kernel launch failed: ") + cudaGetErrorString(error) + " (" + kernel + " with " +
         std::to_string(shared_bytes) + " bytes of dynamic shared memory)";
}

}  // namespace

// topk_ids [M, K] int32; expert_map [E] int32 or empty; cursor: [E + 2] int32 scratch, zeroed by
// the caller (cursor[0] is the zero word in front of the per-expert cursors). Returns the launch
// error of the first kernel that failed to launch, "" when all launched.
std::string moe_align_block_size(torch::Tensor ids, torch::Tensor expert_map, torch::Tensor sorted_ids,
                          torch::Tensor expert_ids, torch::Tensor total_post_pad, torch::Tensor cursor,
                          int64_t num_experts, int64_t block_size) {
  TORCH_CHECK(ids.is_cuda() && ids.scalar_type() == torch::kInt32, "topk_ids: int32 on CUDA");
  TORCH_CHECK(num_experts >= 1 && num_experts <= kAlignThreads, "moe_align_block_size takes 1 <= E <= 1024");
  TORCH_CHECK(block_size >= 1, "block_size must be >= 1");
  const int numel = static_cast<int>(ids.numel());
  const int E = static_cast<int>(num_experts);
  const int B = static_cast<int>(block_size);
  const bool has_map = expert_map.numel() > 0;
  const int* map = has_map ? expert_map.data_ptr<int>() : nullptr;
  const int num_slots = static_cast<int>(sorted_ids.numel());
  const int num_expert_blocks = static_cast<int>(expert_ids.numel());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
#if MOEFUZZ_BUG_SMEM_EXPERTS
  const bool small_batch = numel < 1024;
#else
  const bool small_batch = numel < 1024 && E <= 64;
#endif
  if (small_batch) {
    const int threads = (std::max(E, kWarp) + kWarp - 1) / kWarp * kWarp;
    const size_t shared_bytes = (static_cast<size_t>(threads + 1) * E + E + 2) * sizeof(int);
    small_batch_kernel<<<1, threads, shared_bytes, stream>>>(ids.data_ptr<int>(), map, has_map,
                                                             sorted_ids.data_ptr<int>(), expert_ids.data_ptr<int>(),
                                                             total_post_pad.data_ptr<int>(), E, B, numel, num_slots,
                                                             num_expert_blocks);
    return launch_error("small_batch_kernel", shared_bytes);
  }
  const size_t shared_bytes = static_cast<size_t>(E + 1) * sizeof(int);
  int* cursors = cursor.data_ptr<int>() + 1;
  align_kernel<<<1, kAlignThreads, shared_bytes, stream>>>(ids.data_ptr<int>(), map, has_map,
                                                           sorted_ids.data_ptr<int>(), expert_ids.data_ptr<int>(),
                                                           total_post_pad.data_ptr<int>(), cursors, E, B, numel,
                                                           num_slots, num_expert_blocks);
  std::string error = launch_error("align_kernel", shared_bytes);
  if (!error.empty()) return error;
  const int blocks = std::min((numel + kSortThreads - 1) / kSortThreads, 65535);
  if (blocks > 0) {
    sort_tokens_kernel<<<blocks, kSortThreads, 0, stream>>>(ids.data_ptr<int>(), map, has_map,
                                                            sorted_ids.data_ptr<int>(), cursors, E, numel);
    return launch_error("sort_tokens_kernel", 0);
  }
  return "";
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("moe_align_block_size", &moe_align_block_size, "moefuzz's CUDA moe_align_block_size (see the header)");
}
