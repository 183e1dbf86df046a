// CUDA graphs and queued pinned copies (core/cuda_graph.h).
//
// Capture mode: thread-local, so this thread's calls that cannot be captured
// (cudaMalloc aside, which the allocator allows explicitly) end the capture
// with an error instead of silently leaving the graph incomplete. The device
// has one stream, and the allocator's capture state is the device's: while
// one thread captures, other threads must leave that device alone (their
// work would be recorded into the graph, their memory would join its pool,
// and their copies to the host are refused).
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include <pixgrad/core/cuda_graph.h>
#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>
#include <pixgrad/kernels/cuda/runtime.cuh>

namespace pixgrad {

namespace {

int cuda_index(const Device& device, const char* what) {
  PIXGRAD_CHECK(device.is_cuda(), what, ": ", device.str(), " is not a CUDA device");
  PIXGRAD_CHECK(device.index() < cuda_device_count(), what, ": ", device.str(), " is not available");
  cuda_activate(device.index());
  return device.index();
}

}  // namespace

struct CudaGraph::Impl {
  int device = 0;
  int pool = 0;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
};

CudaGraph::CudaGraph(Device device) : impl_(std::make_unique<Impl>()) {
  impl_->device = cuda_index(device, "CudaGraph");
}

CudaGraph::~CudaGraph() {
  // Destructors do not throw: errors here are dropped.
  cudaSetDevice(impl_->device);
  cudaStreamSynchronize(cuda::current_stream());
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) cudaGraphDestroy(impl_->graph);
  if (impl_->pool) cuda::release_graph_pool(impl_->device, impl_->pool);
  cudaGetLastError();
}

void CudaGraph::capture(const std::function<void()>& body) {
  PIXGRAD_CHECK(!impl_->graph, "CudaGraph: captured already");
  cuda_activate(impl_->device);
  const cudaStream_t stream = cuda::current_stream();
  // Work queued before the capture must not be mistaken for the graph's.
  PIXGRAD_CUDA_CHECK(cudaStreamSynchronize(stream));
  impl_->pool = cuda::begin_graph_pool(impl_->device);
  cudaGraph_t graph = nullptr;
  const cudaError_t begun = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (begun != cudaSuccess) {
    cuda::end_graph_pool_capture(impl_->device);
    cudaGetLastError();
    fail("CudaGraph: cannot begin a capture (", cudaGetErrorString(begun), ")");
  }
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cuda::end_graph_pool_capture(impl_->device);
    cudaGetLastError();
    throw;
  }
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  cuda::end_graph_pool_capture(impl_->device);
  if (ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    fail("CudaGraph: the capture failed (", cudaGetErrorString(ended),
         "): the step made a call a graph cannot hold, such as a wait for the device");
  }
  impl_->graph = graph;
  PIXGRAD_CUDA_CHECK(cudaGraphInstantiate(&impl_->exec, graph, 0));
}

void CudaGraph::launch() {
  PIXGRAD_CHECK(impl_->exec, "CudaGraph: launch before capture");
  cuda_activate(impl_->device);
  PIXGRAD_CUDA_CHECK(cudaGraphLaunch(impl_->exec, cuda::current_stream()));
}

size_t CudaGraph::node_count() const {
  if (!impl_->graph) return 0;
  size_t count = 0;
  PIXGRAD_CUDA_CHECK(cudaGraphGetNodes(impl_->graph, nullptr, &count));
  return count;
}

struct PinnedTransfers::Impl {
  int device = 0;
  size_t slot_bytes = 0;
  std::vector<unsigned char*> slots;
  std::vector<cudaEvent_t> done;      // recorded after each slot's last copy
  std::vector<long long> tickets;     // the download each slot holds, -1 for none
  long long next = 0;                 // operations so far; operation k uses slot k % slots

  // The next slot, once its last copy has finished.
  int take() {
    const int slot = static_cast<int>(next++ % static_cast<long long>(slots.size()));
    PIXGRAD_CUDA_CHECK(cudaEventSynchronize(done[slot]));
    tickets[slot] = -1;
    return slot;
  }
};

PinnedTransfers::PinnedTransfers(Device device, size_t slot_bytes, int slots) : impl_(std::make_unique<Impl>()) {
  PIXGRAD_CHECK(slots >= 1 && slot_bytes > 0, "PinnedTransfers: ", slots, " slots of ", slot_bytes, " bytes");
  impl_->device = cuda_index(device, "PinnedTransfers");
  impl_->slot_bytes = slot_bytes;
  for (int i = 0; i < slots; ++i) {
    void* pinned = nullptr;
    PIXGRAD_CUDA_CHECK(cudaMallocHost(&pinned, slot_bytes));
    impl_->slots.push_back(static_cast<unsigned char*>(pinned));
    cudaEvent_t event = nullptr;
    PIXGRAD_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    PIXGRAD_CUDA_CHECK(cudaEventRecord(event, cuda::current_stream()));
    impl_->done.push_back(event);
    impl_->tickets.push_back(-1);
  }
}

PinnedTransfers::~PinnedTransfers() {
  cudaSetDevice(impl_->device);
  for (size_t i = 0; i < impl_->slots.size(); ++i) {
    cudaEventSynchronize(impl_->done[i]);
    cudaEventDestroy(impl_->done[i]);
    cudaFreeHost(impl_->slots[i]);
  }
  cudaGetLastError();
}

void PinnedTransfers::upload(void* device_destination, const void* host, size_t bytes) {
  PIXGRAD_CHECK(bytes <= impl_->slot_bytes, "PinnedTransfers: ", bytes, " bytes do not fit a slot of ",
                impl_->slot_bytes);
  cuda_activate(impl_->device);
  const int slot = impl_->take();
  std::memcpy(impl_->slots[slot], host, bytes);
  const cudaStream_t stream = cuda::current_stream();
  PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(device_destination, impl_->slots[slot], bytes, cudaMemcpyHostToDevice, stream));
  PIXGRAD_CUDA_CHECK(cudaEventRecord(impl_->done[slot], stream));
}

int PinnedTransfers::download(const void* device_source, size_t bytes) {
  PIXGRAD_CHECK(bytes <= impl_->slot_bytes, "PinnedTransfers: ", bytes, " bytes do not fit a slot of ",
                impl_->slot_bytes);
  cuda_activate(impl_->device);
  const int slot = impl_->take();
  const cudaStream_t stream = cuda::current_stream();
  PIXGRAD_CUDA_CHECK(cudaMemcpyAsync(impl_->slots[slot], device_source, bytes, cudaMemcpyDeviceToHost, stream));
  PIXGRAD_CUDA_CHECK(cudaEventRecord(impl_->done[slot], stream));
  impl_->tickets[slot] = impl_->next - 1;
  return static_cast<int>(impl_->next - 1);
}

void PinnedTransfers::collect(int ticket, void* host, size_t bytes) {
  const int slot = static_cast<int>(ticket % static_cast<long long>(impl_->slots.size()));
  PIXGRAD_CHECK(ticket >= 0 && impl_->tickets[slot] == ticket && bytes <= impl_->slot_bytes,
                "PinnedTransfers: download ", ticket, " is no longer held (collected too late, or never made)");
  PIXGRAD_CUDA_CHECK(cudaEventSynchronize(impl_->done[slot]));
  std::memcpy(host, impl_->slots[slot], bytes);
}

}  // namespace pixgrad
