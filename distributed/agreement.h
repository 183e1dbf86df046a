// Agreeing, before ranks train together, that every rank is ready and was
// started alike. Without it a rank that fails alone leaves the others
// waiting in their next collective until the timeout, and ranks started
// with different options or data either crash inside MPI (their tensors
// differ in size) or, worse, train different replicas without a word.
//
// Both checks are collectives: every rank calls them at the same point.
// When one fails, every rank throws an AgreedError, so no rank is left
// waiting and none needs to abort the others.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/distributed/communicator.h>

namespace pixgrad::distributed {

// An error that every rank of the run has raised together. Only the ranks
// for which should_print() is true print it: the rank whose own error it
// is (unless rank 0 met the very same one), and rank 0 for the others.
class AgreedError : public Error {
 public:
  AgreedError(const std::string& message, bool should_print) : Error(message), should_print_(should_print) {}
  bool should_print() const { return should_print_; }

 private:
  bool should_print_;
};

// Each rank passes what went wrong with it (nullptr: nothing) while doing
// `what` ("start", "load its batch"). Returns when no rank failed; else
// throws AgreedError on every rank, the failed rank's carrying its own
// message and rank 0's naming the ranks that failed.
void agree_all_succeeded(Communicator& world, const std::exception_ptr& failure, const std::string& what);

// One property that must be alike on every rank: a name for the message
// ("--batch-size", "the training split's size") and a digest of its value.
struct Fingerprint {
  std::string name;
  uint64_t digest = 0;
};

// Every rank passes the same list of names, in the same order. Throws
// AgreedError on every rank, naming the properties that differ, when any
// digest is not alike on all ranks.
void agree_alike(Communicator& world, const std::vector<Fingerprint>& properties);

// Digests for fingerprints (fnv1a_words of core/fnv1a.h over the bytes; a
// tensor's shape, type and contents, copied to the host first if need be).
uint64_t digest_of(const std::string& text);
uint64_t digest_of(const Tensor& tensor, uint64_t seed = 0);

}  // namespace pixgrad::distributed
