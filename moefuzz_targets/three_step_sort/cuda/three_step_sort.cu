// moefuzz's CUDA three-step sort: the MoE permutation prologue of TensorRT-LLM / FlashInfer
// cutlass_fused_moe_kernels.cuh, written after its design (our code):
//
//   T <= 256   fused_sort_kernel                  one block: a stable block radix sort of the
//                                                 (local expert, t, k) items
//   T >  256   block_expert_prefix_sum_kernel     grid (E_local, NB): per block of 256 tokens and
//                                                 expert, each token's matches, a block scan ->
//                                                 counts[e * NB + b] and each item's rank
//              global_expert_prefix_sum_kernel    one block: the exclusive scan of the counts in
//                                                 (expert, block) order -> base, offsets
//              merge_expert_prefix_sum_kernel     grid (NB): p = base[e * NB + b] + rank[u]
//
// Bug model (compile-time): -DMOEFUZZ_BUG_FIRST_MATCH=1 makes a token's loop over its top-k stop
// at the first slot that matches the expert (upstream's `break` in blockExpertPrefixSumKernel,
// flashinfer-ai/flashinfer#3011): a repeated expert is counted once, its later slots get no row.
// Like upstream, the fused path (T <= 256) is correct either way.
//
// Layout: token_selected_experts [T, K] int32; an item is (t, k), its unpermuted row u = k*T + t.

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <torch/extension.h>

#include <cub/cub.cuh>

#ifndef MOEFUZZ_BUG_FIRST_MATCH
#define MOEFUZZ_BUG_FIRST_MATCH 0
#endif

namespace {

constexpr int kTokensPerBlock = 256;  // upstream's BLOCK_SIZE of the fused path and of step 1
constexpr int kMaxTopK = 8;
constexpr int kScanThreads = 1024;

// Matches of local expert `expert` in token t's top-k (at most the first with the bug model).
__device__ __forceinline__ int count_matches(const int* ids, int t, int K, int start, int expert) {
  int matches = 0;
  for (int k = 0; k < K; ++k) {
    if (ids[t * K + k] - start == expert) {
      ++matches;
#if MOEFUZZ_BUG_FIRST_MATCH
      break;
#endif
    }
  }
  return matches;
}

// Whether slot k of token t is an item of its own (with the bug model: not a repeat).
__device__ __forceinline__ bool counted_slot(const int* ids, int t, int K, int k) {
#if MOEFUZZ_BUG_FIRST_MATCH
  for (int j = 0; j < k; ++j) {
    if (ids[t * K + j] == ids[t * K + k]) return false;
  }
#endif
  return true;
}

// Step 1, block (e, b): counts[e * NB + b] = items of expert e among the block's tokens;
// rank[u] = position of item u among them, in (t, k) order.
__global__ void block_expert_prefix_sum_kernel(const int* __restrict__ ids, int* __restrict__ counts,
                                               int* __restrict__ rank, int T, int K, int start) {
  using BlockScan = cub::BlockScan<int, kTokensPerBlock>;
  __shared__ typename BlockScan::TempStorage temp;
  const int expert = blockIdx.x;
  const int block = blockIdx.y;
  const int t = block * kTokensPerBlock + threadIdx.x;
  const int matches = t < T ? count_matches(ids, t, K, start, expert) : 0;
  int index = 0;
  int total = 0;
  BlockScan(temp).ExclusiveSum(matches, index, total);
  for (int k = 0, j = 0; k < K && j < matches; ++k) {
    if (ids[t * K + k] - start == expert) {
      rank[k * T + t] = index + j;
      ++j;
    }
  }
  if (threadIdx.x == 0) counts[expert * gridDim.y + block] = total;
}

// Step 2, one block: base[i] = sum of counts[< i] in (expert, block) order; offsets[e] =
// base[e * NB], offsets[E_local] = N.
__global__ void __launch_bounds__(kScanThreads) global_expert_prefix_sum_kernel(const int* __restrict__ counts, int* __restrict__ base,
                                                int64_t* __restrict__ offsets, int e_local, int num_blocks) {
  using BlockScan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename BlockScan::TempStorage temp;
  __shared__ int carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  const int n = e_local * num_blocks;
  for (int tile = 0; tile < n; tile += kScanThreads) {
    const int i = tile + threadIdx.x;
    const int count = i < n ? counts[i] : 0;
    int prefix = 0;
    int tile_total = 0;
    BlockScan(temp).ExclusiveSum(count, prefix, tile_total);
    const int running = carry;
    if (i < n) {
      base[i] = running + prefix;
      if (i % num_blocks == 0) offsets[i / num_blocks] = running + prefix;
    }
    __syncthreads();
    if (threadIdx.x == 0) carry = running + tile_total;
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[e_local] = carry;
}

// Step 3, block b: each local item u of the block's tokens goes to p = base[e * NB + b] + rank[u].
__global__ void merge_expert_prefix_sum_kernel(const int* __restrict__ ids, const int* __restrict__ rank,
                                               const int* __restrict__ base, int* __restrict__ p2u,
                                               int* __restrict__ u2p, int* __restrict__ pexp, int T, int K,
                                               int start, int e_local) {
  const int t = blockIdx.x * kTokensPerBlock + threadIdx.x;
  if (t >= T) return;
  for (int k = 0; k < K; ++k) {
    const int expert = ids[t * K + k] - start;
    if (expert < 0 || expert >= e_local || !counted_slot(ids, t, K, k)) continue;
    const int u = k * T + t;
    const int p = base[expert * gridDim.x + blockIdx.x] + rank[u];
    p2u[p] = u;
    u2p[u] = p;
    pexp[p] = expert;
  }
}

// T <= 256, one block: a stable radix sort of the items by local expert (non-local last) keeps
// (t, k) order inside each expert; offsets by binary search over the sorted keys.
__global__ void fused_sort_kernel(const int* __restrict__ ids, int64_t* __restrict__ offsets, int* __restrict__ p2u,
                                  int* __restrict__ u2p, int* __restrict__ pexp, int T, int K, int start,
                                  int e_local, int end_bit) {
  using BlockSort = cub::BlockRadixSort<int, kTokensPerBlock, kMaxTopK, int>;
  __shared__ union {
    typename BlockSort::TempStorage sort;
    int keys[kTokensPerBlock * kMaxTopK];
  } shared;
  const int t = threadIdx.x;
  int keys[kMaxTopK];
  int rows[kMaxTopK];
  for (int k = 0; k < kMaxTopK; ++k) {
    const int expert = (t < T && k < K) ? ids[t * K + k] - start : -1;
    const bool local = expert >= 0 && expert < e_local;
    keys[k] = local ? expert : e_local;
    rows[k] = k * T + t;
  }
  BlockSort(shared.sort).Sort(keys, rows, 0, end_bit);
  __syncthreads();
  for (int j = 0; j < kMaxTopK; ++j) {
    const int p = t * kMaxTopK + j;
    shared.keys[p] = keys[j];
    if (keys[j] < e_local) {
      p2u[p] = rows[j];
      u2p[rows[j]] = p;
      pexp[p] = keys[j];
    }
  }
  __syncthreads();
  for (int e = t; e <= e_local; e += kTokensPerBlock) {
    int lo = 0;
    int hi = kTokensPerBlock * kMaxTopK;
    while (lo < hi) {  // first sorted position whose key is >= e
      const int mid = (lo + hi) / 2;
      if (shared.keys[mid] < e) lo = mid + 1; else hi = mid;
    }
    offsets[e] = lo;
  }
}

}  // namespace

// Fills the four outputs of the contract for token_selected_experts [T, K] int32 (K <= 8).
// counts, base: [E_local * NB] int32 scratch; rank: [T * K] int32 scratch (unused for T <= 256).
void three_step_sort(torch::Tensor ids, torch::Tensor offsets, torch::Tensor p2u, torch::Tensor u2p,
                     torch::Tensor pexp, torch::Tensor counts, torch::Tensor base, torch::Tensor rank,
                     int64_t start, int64_t e_local) {
  TORCH_CHECK(ids.is_cuda() && ids.dim() == 2 && ids.scalar_type() == torch::kInt32, "ids: [T, K] int32 on CUDA");
  const int T = static_cast<int>(ids.size(0));
  const int K = static_cast<int>(ids.size(1));
  TORCH_CHECK(K >= 1 && K <= kMaxTopK, "three_step_sort takes 1 <= K <= 8, got K=", K);
  TORCH_CHECK(e_local >= 1 && e_local <= 1024, "three_step_sort takes 1 <= E_local <= 1024, got ", e_local);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int experts = static_cast<int>(e_local);
  const int begin = static_cast<int>(start);
  if (T <= kTokensPerBlock) {
    const int end_bit = 32 - __builtin_clz(static_cast<unsigned>(experts));
    fused_sort_kernel<<<1, kTokensPerBlock, 0, stream>>>(ids.data_ptr<int>(), offsets.data_ptr<int64_t>(),
                                                         p2u.data_ptr<int>(), u2p.data_ptr<int>(),
                                                         pexp.data_ptr<int>(), T, K, begin, experts, end_bit);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int num_blocks = (T + kTokensPerBlock - 1) / kTokensPerBlock;
  block_expert_prefix_sum_kernel<<<dim3(experts, num_blocks), kTokensPerBlock, 0, stream>>>(
      ids.data_ptr<int>(), counts.data_ptr<int>(), rank.data_ptr<int>(), T, K, begin);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  global_expert_prefix_sum_kernel<<<1, kScanThreads, 0, stream>>>(counts.data_ptr<int>(), base.data_ptr<int>(),
                                                                   offsets.data_ptr<int64_t>(), experts, num_blocks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  merge_expert_prefix_sum_kernel<<<num_blocks, kTokensPerBlock, 0, stream>>>(
      ids.data_ptr<int>(), rank.data_ptr<int>(), base.data_ptr<int>(), p2u.data_ptr<int>(), u2p.data_ptr<int>(),
      pexp.data_ptr<int>(), T, K, begin, experts);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("three_step_sort", &three_step_sort, "moefuzz's CUDA three-step sort (see the file's header)");
}
