#include <pixgrad/core/replay_values.h>

#include <cstring>

#include <pixgrad/core/error.h>
#include <pixgrad/core/generator.h>
#include <pixgrad/core/storage.h>

namespace pixgrad {

namespace {

thread_local CaptureSession* current_session = nullptr;

// A generator's offset. Each replay draws the blocks the captured step drew,
// `blocks` on from where the previous one ended; its kernels add the shift
// (offset now - offset at the capture) to the offsets they were captured with.
class GeneratorCounter : public ReplayCounter {
 public:
  explicit GeneratorCounter(Generator& generator) : generator_(generator) {}
  size_t value_bytes() const override { return sizeof(uint64_t); }
  std::vector<uint64_t> position() const override { return {generator_.seed(), generator_.offset()}; }
  void set_position(const std::vector<uint64_t>& p) override { generator_.set_state(p[0], p[1]); }
  void end_capture(const std::vector<uint64_t>& start) override { blocks_ = generator_.offset() - start[1]; }
  void advance(const std::vector<uint64_t>& start, void* value) override {
    // The seed is baked into the captured kernels.
    PIXGRAD_CHECK(generator_.seed() == start[0], "replaying a captured step: its generator was seeded again (seed ",
                  generator_.seed(), ", captured with ", start[0],
                  "); seed before the capture, or capture again (a new GraphedTrainStep)");
    const uint64_t shift = generator_.offset() - start[1];  // modulo 2^64, as the kernels add it
    std::memcpy(value, &shift, sizeof shift);
    generator_.reserve(blocks_);
  }

 private:
  Generator& generator_;
  uint64_t blocks_ = 0;
};

}  // namespace

CaptureSession::CaptureSession(Device device) : device_(device), host_values_(kCapacity, 0) {
  if (device_.is_cuda()) device_block_ = std::make_unique<Storage>(kCapacity, device_);
}

CaptureSession::~CaptureSession() = default;

CaptureSession* CaptureSession::current() { return current_session; }

CaptureSession::Scope::Scope(CaptureSession& session) : previous_(current_session) { current_session = &session; }

CaptureSession::Scope::~Scope() { current_session = previous_; }

CaptureSession::Entry* CaptureSession::find(const void* owner, bool shared) {
  for (Entry& entry : entries_) {
    if (entry.owner != owner) continue;
    PIXGRAD_CHECK(shared || !entry.found,
                  "capturing a step: an optimiser stepped twice in it; a captured step may step each once");
    entry.found = true;
    return &entry;
  }
  PIXGRAD_CHECK(capturing_, "replaying a captured step: it asked for a value its capture did not (the step must "
                            "run the same ops every time)");
  return nullptr;
}

CaptureSession::Entry& CaptureSession::add(const void* owner, std::unique_ptr<ReplayCounter> counter) {
  const size_t bytes = counter->value_bytes();
  PIXGRAD_CHECK(bytes > 0 && bytes <= kValueBytes, "capturing a step: a value of ", bytes, " bytes");
  const size_t offset = (used_ + 15) / 16 * 16;  // each value 16-byte aligned
  PIXGRAD_CHECK(offset + bytes <= kCapacity, "capturing a step: more than ", kCapacity,
                " bytes of values that change between replays");
  used_ = offset + bytes;
  std::vector<uint64_t> start = counter->position();
  // The value of the capture's own step, for the CPU stand-in, whose capture
  // runs the step (a CUDA capture runs nothing; its replays upload values).
  counter->advance(start, host_values_.data() + offset);
  counter->set_position(start);
  entries_.push_back({owner, std::move(counter), std::move(start), offset, true});
  return entries_.back();
}

void* CaptureSession::device_values() const {
  return device_block_ ? device_block_->data() : const_cast<unsigned char*>(host_values_.data());
}

void* CaptureSession::device_value(const Entry& entry) const {
  return static_cast<unsigned char*>(device_values()) + entry.offset;
}

void CaptureSession::end_capture() {
  capturing_ = false;
  for (Entry& entry : entries_) entry.counter->end_capture(entry.start);
  rewind_to_capture();
}

void CaptureSession::advance() {
  for (Entry& entry : entries_) entry.counter->advance(entry.start, host_values_.data() + entry.offset);
}

bool CaptureSession::still_fits() const {
  for (const Entry& entry : entries_)
    if (!entry.counter->still_fits()) return false;
  return true;
}

std::vector<std::vector<uint64_t>> CaptureSession::positions() const {
  std::vector<std::vector<uint64_t>> all;
  for (const Entry& entry : entries_) all.push_back(entry.counter->position());
  return all;
}

void CaptureSession::set_positions(const std::vector<std::vector<uint64_t>>& positions) {
  for (size_t i = 0; i < entries_.size(); ++i) entries_[i].counter->set_position(positions[i]);
}

void CaptureSession::rewind_to_capture() {
  for (Entry& entry : entries_) entry.counter->set_position(entry.start);
}

void CaptureSession::start_rerun() {
  for (Entry& entry : entries_) entry.found = false;
}

PhiloxStart reserve_philox(Generator& generator, uint64_t blocks) {
  const uint64_t* shift = nullptr;
  if (CaptureSession* session = CaptureSession::current())
    shift = static_cast<const uint64_t*>(
        session->value_for(&generator, /*shared=*/true, [&] { return std::make_unique<GeneratorCounter>(generator); }));
  const uint64_t seed = generator.seed();
  return {seed, generator.reserve(blocks), shift};
}

}  // namespace pixgrad
