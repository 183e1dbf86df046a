// Per-channel moments written by the kernel that produces a tensor, so that
// a batch norm reading it next finds its statistics without passes of its
// own over the tensor (two of its three, on a GPU two of its launches).
//
// The producer writes records [channels][R]: each summarises a disjoint set
// of at most kMomentValues of channel c's values (count, sum, and the sum of
// squares about their own mean), together they cover all of them, and a
// record of no values is all zeros. The reader combines them with Chan,
// Golub and LeVeque's pairwise formula, in two passes over the records:
//
//   mean = sum(sum_r) / sum(count_r)
//   M2   = sum(m2_r + count_r * (sum_r / count_r - mean)^2)
//
// which is as stable as the two-pass variance over the values themselves
// (each record's m2 is a two-pass sum of at most 32 values, in double), and
// fixed in order, so a given layout gives the same bits every run.
#pragma once

#include <cstdint>

#include <pixgrad/kernels/elementwise_ops.h>  // PIXGRAD_HOST_DEVICE

namespace pixgrad::kernels {

struct MomentRecord {
  double count, sum, m2;
};
static_assert(sizeof(MomentRecord) == 3 * sizeof(double), "records are read as [channels][R][3] doubles");

// Values per record: a multiple of every column tile of the CUDA
// convolution, so that a block's tile holds whole records.
constexpr int kMomentValues = 32;

// The records that hold `values` values, kMomentValues to a record.
PIXGRAD_HOST_DEVICE int64_t records_for(int64_t values) { return (values + kMomentValues - 1) / kMomentValues; }

// The record of value(0) .. value(count - 1), 0 < count <= kMomentValues.
template <class Value>
PIXGRAD_HOST_DEVICE MomentRecord moment_record(int count, const Value& value) {
  double sum = 0;
  for (int j = 0; j < count; ++j) sum += value(j);
  const double mean = sum / count;
  double m2 = 0;
  for (int j = 0; j < count; ++j) {
    const double centred = value(j) - mean;
    m2 += centred * centred;
  }
  return {static_cast<double>(count), sum, m2};
}

// A record's share of M2 about the channel's mean (0 for an empty record).
PIXGRAD_HOST_DEVICE double centred_share(const MomentRecord& r, double mean) {
  if (r.count == 0) return 0;
  const double offset = r.sum / r.count - mean;
  return r.m2 + r.count * offset * offset;
}

struct ChannelMoments {
  double count, mean, m2;  // m2: the sum of squares about the mean
};

// A channel's moments from its `n` records, in order.
PIXGRAD_HOST_DEVICE ChannelMoments combine_records(const MomentRecord* records, int64_t n) {
  double count = 0, sum = 0;
  for (int64_t r = 0; r < n; ++r) {
    count += records[r].count;
    sum += records[r].sum;
  }
  const double mean = count > 0 ? sum / count : 0.0;
  double m2 = 0;
  for (int64_t r = 0; r < n; ++r) m2 += centred_share(records[r], mean);
  return {count, mean, m2};
}

// Records handed to a batch norm: [channels][per_channel] (none: null).
struct GivenMoments {
  const MomentRecord* records = nullptr;
  int64_t per_channel = 0;
};

}  // namespace pixgrad::kernels
