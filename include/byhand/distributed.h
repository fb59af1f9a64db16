// distributed.h — several processes training one model together (data
// parallelism), through Open MPI. The idea, the allreduce and its cost are
// told in tutorials/15_data_parallel.cpp; this header is the small seam.
//
//   mpirun -np 2 build/tutorials/15_data_parallel        two processes, one machine
//   mpirun -np 8 --hostfile hosts build/tutorials/05_lenet   eight, on the hosts listed
//
// Each process ("rank" 0 .. world_size()-1) holds a whole copy of the model,
// reads its own share of every batch, runs forward and backward on it, and
// then all ranks average their gradients (allreduce) so that every copy
// takes the same optimizer step and the copies stay identical. fit() does all
// of it by itself when world_size() > 1 (train.h); DataParallel
// (data_parallel.h) is the part that averages the gradients.
//
// Built with `make MPI=1` (the default when mpicxx is found), these functions
// talk to MPI. A process started without mpirun, or a library built without
// MPI, is a world of one: rank 0 of 1, every reduction a no-op, so code
// written for many processes runs unchanged in one.
#pragma once

#include <cstdint>
#include <string>

#include "byhand/tensor.h"

namespace byhand {
namespace dist {

// This library was compiled with MPI.
bool built();

// Joins the job this process was started in by mpirun (MPI_Init_thread),
// once; later calls do nothing. Without mpirun, or without MPI, the world is
// this process alone. MPI is finalized at exit. (Each rank's default thread
// count, the machine's cores shared among its ranks, is set_num_threads'
// (ops.h).) The lessons call it first
// thing (lesson.cpp); so does fit(), in case nobody did.
void init(int* argc = nullptr, char*** argv = nullptr);

int rank();         // this process, 0 .. world_size() - 1
int world_size();   // processes in the job
bool is_main();     // rank() == 0: the one that prints, plots and saves

// One line: "rank 1 of 2 (Open MPI 4.1.4), host node7", or "one process
// (this library has no MPI: make MPI=1)".
std::string status();

// In place, over all ranks: x = the elementwise sum of every rank's x. The
// time spent is added to allreduce_seconds(), the bytes to
// allreduce_bytes().
void allreduce_sum(real* x, int64_t n);
void allreduce_sum(double* x, int64_t n);
void allreduce_sum(int64_t* x, int64_t n);
// Rank root's x, copied into every rank's x.
void broadcast(real* x, int64_t n, int root = 0);
void broadcast(uint64_t* x, int64_t n, int root = 0);

double allreduce_seconds();   // since the process began
int64_t allreduce_bytes();    // bytes this rank handed to allreduce

// Ends the job on every rank with this exit code (MPI_Abort): what a rank
// that failed does, so that the others do not wait for it forever.
[[noreturn]] void abort(int code);

}  // namespace dist
}  // namespace byhand
