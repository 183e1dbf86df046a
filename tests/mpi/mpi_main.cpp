// The MPI suite's main: every rank runs the Catch session; the run passes
// only if it passed on every rank. Started alone (not under mpirun with two
// or more processes) it says how to run it and exits with 77, which CTest
// reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <vector>

#include <pixgrad/distributed/mpi_communicator.h>

#include "mpi_world.h"

namespace {
std::shared_ptr<pixgrad::distributed::Communicator> world;
}

namespace pixgrad::testing {
distributed::Communicator& mpi_world() { return *world; }
std::shared_ptr<distributed::Communicator> mpi_world_handle() { return world; }
}  // namespace pixgrad::testing

int main(int argc, char** argv) {
  Catch::Session session;
  const int parse_status = session.applyCommandLine(argc, argv);
  if (parse_status != 0) return parse_status;
  const Catch::ConfigData& config = session.configData();
  if (config.showHelp || config.listTests || config.listTags || config.listTestNamesOnly) {
    session.run();
    return 0;
  }
  if (pixgrad::distributed::launched_processes() < 2) {
    std::printf("SKIPPED: the MPI tests run as several processes: mpirun -np 2 %s\n", argv[0]);
    return 77;
  }
  pixgrad::distributed::WorldOptions options;
  options.timeout_seconds = 120;  // a test that leaves one rank behind fails in minutes, not never
  world = pixgrad::distributed::join_world(options);
  const int failed = session.run();
  std::vector<double> failures = {static_cast<double>(failed)};
  world->all_reduce(failures, pixgrad::distributed::ReduceOp::Sum, "the tests' results");
  if (world->is_root())
    std::printf("MPI suite: %d rank(s), %.0f failed assertion(s) over all ranks\n", world->size(), failures[0]);
  world->barrier("the end of the tests");
  world.reset();
  return failures[0] == 0 ? 0 : 1;
}
