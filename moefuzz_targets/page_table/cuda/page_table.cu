// moefuzz's CUDA decode page table, after SGLang's trtllm_mha / FA3 page-table build
// (req_to_token[req_pool_indices, :max_seq_len] every page_size-th column, // page_size, token
// locations through full_to_swa_index_mapping on a sliding-window layer) and FlashInfer's
// kv_indptr / kv_indices (our code, their design):
//
//   page_table_kernel   grid (B, NB)  request i, page j < max_pages: j in [first, num) reads
//                                     slot = req_to_token[row, j * page_size], translates it
//                                     (SWA), divides; every other j gets the safe page 0
//   kv_indptr_kernel    one block     exclusive scan of num - first over the requests
//   kv_indices_kernel   grid (B, NB)  kv_indices[kv_indptr[i] + k] = page_table[i, first + k]
//
// Bug model (compile-time): -DMOEFUZZ_BUG_TRAILING_ENTRIES=1 reads and translates every column
// j >= first of the row, the garbage cells past seq_len included (seed
// sglang-trtllm-mha-page-table-oob): a wild cell is a wrong page id, or on a sliding-window layer
// a read far outside full_to_swa_index_mapping (an illegal memory access).

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <torch/extension.h>

#include <cub/cub.cuh>

#ifndef MOEFUZZ_BUG_TRAILING_ENTRIES
#define MOEFUZZ_BUG_TRAILING_ENTRIES 0
#endif

namespace {

constexpr int kPagesPerBlock = 256;
constexpr int kScanThreads = 1024;

// (first, num) of a request: its first page in the table and its page count.
__device__ __forceinline__ void table_span(int64_t seq_len, int64_t page_size, int64_t window, bool has_swa,
                                           int64_t* first, int64_t* num) {
  *num = (seq_len + page_size - 1) / page_size;
  *first = has_swa ? (seq_len > window ? seq_len - window : 0) / page_size : 0;
}

__global__ void page_table_kernel(const int* __restrict__ req_to_token, const int64_t* __restrict__ req_pool_indices,
                                  const int64_t* __restrict__ seq_lens, const int64_t* __restrict__ mapping,
                                  bool has_swa, int* __restrict__ page_table, int64_t row_stride, int64_t page_size,
                                  int64_t max_pages, int64_t window) {
  const int64_t request = blockIdx.x;
  const int64_t page = static_cast<int64_t>(blockIdx.y) * kPagesPerBlock + threadIdx.x;
  if (page >= max_pages) return;
  int64_t first = 0;
  int64_t num = 0;
  table_span(seq_lens[request], page_size, window, has_swa, &first, &num);
#if MOEFUZZ_BUG_TRAILING_ENTRIES
  const bool live = page >= first;
#else
  const bool live = page >= first && page < num;
#endif
  int64_t id = 0;
  if (live) {
    const int64_t row = req_pool_indices[request];
    const int64_t slot = req_to_token[row * row_stride + page * page_size];
    id = has_swa ? mapping[slot] / page_size : slot / page_size;
  }
  page_table[request * max_pages + page] = static_cast<int>(id);
}

__global__ void __launch_bounds__(kScanThreads) kv_indptr_kernel(const int64_t* __restrict__ seq_lens, int* __restrict__ kv_indptr, int batch,
                                 int64_t page_size, int64_t window, bool has_swa) {
  using BlockScan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename BlockScan::TempStorage temp;
  __shared__ int64_t carry;
  if (threadIdx.x == 0) {
    carry = 0;
    kv_indptr[0] = 0;
  }
  __syncthreads();
  for (int tile = 0; tile < batch; tile += kScanThreads) {
    const int i = tile + threadIdx.x;
    int64_t count = 0;
    if (i < batch) {
      int64_t first = 0;
      int64_t num = 0;
      table_span(seq_lens[i], page_size, window, has_swa, &first, &num);
      count = num - first;
    }
    int64_t inclusive = 0;
    int64_t tile_total = 0;
    BlockScan(temp).InclusiveSum(count, inclusive, tile_total);
    const int64_t running = carry;
    if (i < batch) kv_indptr[i + 1] = static_cast<int>(running + inclusive);
    __syncthreads();
    if (threadIdx.x == 0) carry = running + tile_total;
    __syncthreads();
  }
}

__global__ void kv_indices_kernel(const int64_t* __restrict__ seq_lens, const int* __restrict__ page_table,
                                  const int* __restrict__ kv_indptr, int* __restrict__ kv_indices, int64_t page_size,
                                  int64_t max_pages, int64_t window, bool has_swa) {
  const int64_t request = blockIdx.x;
  const int64_t k = static_cast<int64_t>(blockIdx.y) * kPagesPerBlock + threadIdx.x;
  int64_t first = 0;
  int64_t num = 0;
  table_span(seq_lens[request], page_size, window, has_swa, &first, &num);
  if (k >= num - first) return;
  kv_indices[kv_indptr[request] + k] = page_table[request * max_pages + first + k];
}

}  // namespace

// req_to_token [R, C] int32; req_pool_indices, seq_lens [B] int64; mapping [num_pages * page_size]
// int64 or empty (a full-attention layer); page_table [B, max_pages], kv_indptr [B + 1],
// kv_indices [sum of table pages] int32.
void page_table(torch::Tensor req_to_token, torch::Tensor req_pool_indices, torch::Tensor seq_lens,
                torch::Tensor mapping, torch::Tensor page_table_out, torch::Tensor kv_indptr, torch::Tensor kv_indices,
                int64_t page_size, int64_t max_pages, int64_t sliding_window) {
  TORCH_CHECK(req_to_token.is_cuda() && req_to_token.scalar_type() == torch::kInt32, "req_to_token: int32 on CUDA");
  const int batch = static_cast<int>(seq_lens.numel());
  const bool has_swa = mapping.numel() > 0;
  const int64_t* map = has_swa ? mapping.data_ptr<int64_t>() : nullptr;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int blocks = static_cast<int>((max_pages + kPagesPerBlock - 1) / kPagesPerBlock);
  if (batch > 0 && blocks > 0) {
    page_table_kernel<<<dim3(batch, blocks), kPagesPerBlock, 0, stream>>>(
        req_to_token.data_ptr<int>(), req_pool_indices.data_ptr<int64_t>(), seq_lens.data_ptr<int64_t>(), map,
        has_swa, page_table_out.data_ptr<int>(), req_to_token.stride(0), page_size, max_pages, sliding_window);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  kv_indptr_kernel<<<1, kScanThreads, 0, stream>>>(seq_lens.data_ptr<int64_t>(), kv_indptr.data_ptr<int>(), batch,
                                                   page_size, sliding_window, has_swa);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (batch > 0 && blocks > 0 && kv_indices.numel() > 0) {
    kv_indices_kernel<<<dim3(batch, blocks), kPagesPerBlock, 0, stream>>>(
        seq_lens.data_ptr<int64_t>(), page_table_out.data_ptr<int>(), kv_indptr.data_ptr<int>(),
        kv_indices.data_ptr<int>(), page_size, max_pages, sliding_window, has_swa);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("page_table", &page_table, "moefuzz's CUDA decode page table (see the file's header)");
}
