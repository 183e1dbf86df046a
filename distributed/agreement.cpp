#include <pixgrad/distributed/agreement.h>

#include <algorithm>

#include <pixgrad/core/device.h>
#include <pixgrad/core/fnv1a.h>
#include <pixgrad/core/shape.h>

namespace pixgrad::distributed {

namespace {

// A digest as a double that a reduction carries exactly: 52 bits of it,
// plus one, so that 0 can stand for "nothing from this rank". The bits are
// mixed first (splitmix64's finaliser), so that values which differ only in
// their low bits, as small counts do, stay apart.
double as_exact_double(uint64_t digest) {
  digest = (digest ^ (digest >> 30)) * 0xBF58476D1CE4E5B9ull;
  digest = (digest ^ (digest >> 27)) * 0x94D049BB133111EBull;
  digest ^= digest >> 31;
  return static_cast<double>((digest >> 12) + 1);
}

// "rank 3", "ranks 1, 2 and 5", at most eight named.
std::string rank_list(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  const size_t shown = std::min<size_t>(ranks.size(), 8);
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) text += i + 1 == ranks.size() ? " and " : ", ";
    text += std::to_string(ranks[i]);
  }
  if (shown < ranks.size()) text += " and " + std::to_string(ranks.size() - shown) + " more";
  return text;
}

std::string message_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "an unknown error";
  }
}

}  // namespace

uint64_t digest_of(const std::string& text) { return fnv1a_words(text.data(), text.size()); }

uint64_t digest_of(const Tensor& tensor, uint64_t seed) {
  uint64_t hash = fnv1a_words(&seed, sizeof seed);
  const std::string header = shape_str(tensor.shape()) + " " + to_string(tensor.dtype());
  hash = fnv1a_words(header.data(), header.size(), hash);
  const Tensor host = tensor.to(Device::cpu());
  return fnv1a_words(host.raw_data(), host.nbytes(), hash);
}

void agree_all_succeeded(Communicator& world, const std::exception_ptr& failure, const std::string& what) {
  if (world.size() == 1) {
    if (failure) std::rethrow_exception(failure);
    return;
  }
  // Per rank: whether it failed, and its message's digest (to print a
  // message that every rank met alike only once, on rank 0).
  const size_t ranks = static_cast<size_t>(world.size());
  const std::string message = failure ? message_of(failure) : std::string();
  std::vector<double> reports(2 * ranks, 0.0);
  if (failure) {
    reports[static_cast<size_t>(world.rank())] = 1;
    reports[ranks + static_cast<size_t>(world.rank())] = as_exact_double(digest_of(message));
  }
  world.all_reduce(reports, ReduceOp::Max, "whether every rank could " + what);
  std::vector<int> failed;
  for (size_t rank = 0; rank < ranks; ++rank)
    if (reports[rank] > 0) failed.push_back(static_cast<int>(rank));
  if (failed.empty()) return;

  const bool root_failed = reports[0] > 0;
  if (failure) {
    // Rank 0 prints its own message; another rank prints its own unless rank 0 met the same.
    const bool same_as_root = root_failed && reports[ranks] == reports[ranks + static_cast<size_t>(world.rank())];
    throw AgreedError(message, world.is_root() || !same_as_root);
  }
  throw AgreedError(rank_list(failed) + " could not " + what + " (see " + (failed.size() == 1 ? "its" : "their") +
                        " own message), so no rank goes on",
                    world.is_root());
}

void agree_alike(Communicator& world, const std::vector<Fingerprint>& properties) {
  if (world.size() == 1) return;
  // The largest digest and the largest negated one (the smallest): alike
  // on every rank exactly when the two agree.
  const size_t count = properties.size();
  std::vector<double> extremes(2 * count);
  for (size_t i = 0; i < count; ++i) {
    extremes[i] = as_exact_double(properties[i].digest);
    extremes[count + i] = -extremes[i];
  }
  world.all_reduce(extremes, ReduceOp::Max, "the check that every rank was started alike");
  std::string differing;
  for (size_t i = 0; i < count; ++i)
    if (extremes[i] != -extremes[count + i]) differing += (differing.empty() ? "" : ", ") + properties[i].name;
  if (differing.empty()) return;
  throw AgreedError("the ranks were not started alike: they differ in " + differing +
                        "; start every rank with the same command line, dataset and checkpoint",
                    world.is_root());
}

}  // namespace pixgrad::distributed
