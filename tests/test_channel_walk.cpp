// The walk of the CUDA batch-norm kernels over one channel of [N, C, S]
// (kernels/channel_walk.h), played on the host for every block and thread
// of a launch: each pack of each channel visited exactly once, by the
// block of its own channel, for plane sizes below, at and above the block
// size (where the incremental carry of the walk matters), several chunks
// per channel and more chunks than packs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <pixgrad/kernels/channel_walk.h>

using namespace pixgrad::kernels;

TEST_CASE("the batch-norm channel walk visits every pack of every channel once, in its own channel's blocks",
          "[cuda_host][batch_norm]") {
  struct Case {
    int64_t batch, channels, plane_packs, splits, threads;
  };
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 256},    {2, 3, 5, 1, 256},    {3, 2, 255, 2, 256},  {2, 2, 256, 3, 256},
      {2, 2, 257, 4, 256},  {1, 4, 1000, 7, 256}, {5, 3, 7, 40, 256},   {4, 1, 300, 1, 96},
      {7, 2, 13, 3, 1},     {1, 1, 65536, 64, 256}, {16, 2, 64, 5, 512},
  };
  for (const Case& k : cases) {
    INFO("batch " << k.batch << ", channels " << k.channels << ", plane packs " << k.plane_packs << ", splits "
                  << k.splits << ", threads " << k.threads);
    const ChannelPacks layout{k.batch, k.channels, k.plane_packs};
    const int64_t total = k.batch * k.channels * k.plane_packs;
    std::vector<int> visits(static_cast<size_t>(total), 0);
    int64_t foreign = 0, outside = 0;
    for (int64_t c = 0; c < k.channels; ++c)
      for (int64_t split = 0; split < k.splits; ++split)
        for (int64_t thread = 0; thread < k.threads; ++thread)
          for_each_pack_of_channel_chunk(layout, c, split, k.splits, thread, k.threads, [&](int64_t pack) {
            if (pack < 0 || pack >= total) {
              ++outside;
              return;
            }
            if ((pack / k.plane_packs) % k.channels != c) ++foreign;
            ++visits[static_cast<size_t>(pack)];
          });
    CHECK(outside == 0);
    CHECK(foreign == 0);
    int64_t wrong = 0;
    for (const int count : visits) wrong += count != 1;
    CHECK(wrong == 0);
  }
}
