// How a process learns from its environment that mpirun or srun started it,
// how many processes there are and which one it is (distributed/mpi_communicator.h).
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include <pixgrad/distributed/mpi_communicator.h>
#include "environment_scope.h"

using namespace pixgrad::distributed;

namespace {

// The launchers' variables: a check sees only those it sets.
const std::vector<std::string> kLauncherVariables = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS",
                                                     "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};

}  // namespace

TEST_CASE("the launcher's size and rank come from the first of its variables that holds one", "[distributed]") {
  struct Case {
    std::map<std::string, std::string> environment;
    int processes, rank;
    bool launched;
  };
  const Case cases[] = {
      {{}, 1, 0, false},
      {{{"OMPI_COMM_WORLD_SIZE", "3"}, {"OMPI_COMM_WORLD_RANK", "2"}}, 3, 2, true},
      {{{"PMI_SIZE", "1"}, {"PMI_RANK", "0"}}, 1, 0, true},  // mpirun -n 1: one process, still launched
      // A zero size, a word or a negative rank is passed over for the next launcher's.
      {{{"OMPI_COMM_WORLD_SIZE", "0"}, {"PMI_SIZE", "x"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"PMI_RANK", "-1"},
        {"SLURM_PROCID", "3"}},
       4, 3, true},
      {{{"SLURM_STEP_NUM_TASKS", "4"}, {"OMPI_COMM_WORLD_RANK", "abc"}, {"SLURM_PROCID", "0"}}, 4, 0, true},
  };
  for (const Case& c : cases) {
    const pixgrad::testing::EnvironmentScope environment(kLauncherVariables, c.environment);
    INFO(c.environment.size() << " variables set, " << c.processes << " processes expected");
    CHECK(launched_processes() == c.processes);
    CHECK(launched_rank() == c.rank);
    CHECK(started_by_launcher() == c.launched);
  }
}

TEST_CASE("ranks on one machine share its cores, never more than they are bound to", "[distributed]") {
  using pixgrad::distributed::threads_per_local_rank;
  // Two ranks on two cores, Open MPI binding one core each.
  CHECK(threads_per_local_rank(1, 2, 2) == 1);
  // Four ranks on 16 cores: bound to 4 cores each, to a socket of 8 each
  // (two ranks a socket), or not bound: 4 threads each.
  CHECK(threads_per_local_rank(4, 16, 4) == 4);
  CHECK(threads_per_local_rank(8, 16, 4) == 4);
  CHECK(threads_per_local_rank(16, 16, 4) == 4);
  // Bound to fewer cores than the share: those.
  CHECK(threads_per_local_rank(2, 16, 4) == 2);
  // More ranks than cores: one thread each.
  CHECK(threads_per_local_rank(4, 4, 8) == 1);
  CHECK(threads_per_local_rank(0, 0, 0) == 1);
}

TEST_CASE("CPU lists are counted, and anything else counts as none", "[distributed]") {
  using pixgrad::distributed::cpu_list_size;
  CHECK(cpu_list_size("0-3,8,10-11\n") == 7);
  CHECK(cpu_list_size("5") == 1);
  CHECK(cpu_list_size("0-63") == 64);
  for (const char* bad : {"", "\n", "3-1", "a", "0-3,x", "0-", "-3", "1,,2", "0-3,"}) {
    INFO("'" << bad << "'");
    CHECK(cpu_list_size(bad) == 0);
  }
  // This machine's, where there is a cpuset to read: at least one CPU.
  CHECK(pixgrad::distributed::cpuset_cpu_count() >= 0);
}
