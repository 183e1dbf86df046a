// The answer for builds without the CUDA backend; core/cuda_backend.cu gives
// the real one otherwise.
#include <pixgrad/core/cuda_info.h>

#include <pixgrad/core/cuda_graph.h>
#include <pixgrad/core/error.h>

#ifndef PIXGRAD_WITH_CUDA
namespace pixgrad {

bool built_with_cuda() { return false; }

int cuda_device_count(std::string* reason) {
  if (reason) *reason = "pixgrad was built without CUDA";
  return 0;
}

void synchronize(const Device&) {}

void cuda_activate(int) { fail("cuda: pixgrad was built without CUDA"); }

CudaMemoryStats cuda_memory_stats(int) { return {}; }

void cuda_empty_cache() {}

int64_t cuda_kernel_launches() { return 0; }

// Never constructed: the constructors raise.
struct CudaGraph::Impl {};
CudaGraph::CudaGraph(Device) { fail("CudaGraph: pixgrad was built without CUDA"); }
CudaGraph::~CudaGraph() = default;
void CudaGraph::capture(const std::function<void()>&) {}
void CudaGraph::launch() {}
size_t CudaGraph::node_count() const { return 0; }

struct PinnedTransfers::Impl {};
PinnedTransfers::PinnedTransfers(Device, size_t, int) { fail("PinnedTransfers: pixgrad was built without CUDA"); }
PinnedTransfers::~PinnedTransfers() = default;
void PinnedTransfers::upload(void*, const void*, size_t) {}
int PinnedTransfers::download(const void*, size_t) { return 0; }
void PinnedTransfers::collect(int, void*, size_t) {}

}  // namespace pixgrad
#endif
