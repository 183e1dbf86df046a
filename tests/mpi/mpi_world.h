// The ranks the MPI suite runs on (mpirun -np 2): set up once by
// mpi_main.cpp, shared by every test case. Every rank runs every test case,
// in the same order, so that their collectives meet; a check that fails on
// one rank must not make it skip a collective the others enter (use CHECK,
// not REQUIRE, before a collective).
#pragma once

#include <memory>

#include <pixgrad/distributed/communicator.h>

namespace pixgrad::testing {

distributed::Communicator& mpi_world();
std::shared_ptr<distributed::Communicator> mpi_world_handle();

}  // namespace pixgrad::testing
