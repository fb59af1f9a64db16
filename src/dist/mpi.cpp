// mpi.cpp — distributed.h through Open MPI (built with MPI=1; a build
// without MPI links single_process.cpp instead).
//
// Only the main thread calls MPI (MPI_THREAD_FUNNELED): the OpenMP threads
// compute, the main thread communicates between steps.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "byhand/distributed.h"

namespace byhand {
namespace dist {
namespace {

bool g_started = false;   // init() ran
bool g_mpi = false;       // ... and this process is part of an MPI job
int g_rank = 0, g_world = 1;
double g_seconds = 0;
int64_t g_bytes = 0;

// Was this process started by mpirun (or another MPI launcher)? A program
// run by hand stays a world of one and never touches MPI.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("MPI: ") + what + " failed: " + std::string(text, size_t(len)));
}

[[maybe_unused]] MPI_Datatype mpi_type(const float*) { return MPI_FLOAT; }
[[maybe_unused]] MPI_Datatype mpi_type(const double*) { return MPI_DOUBLE; }
MPI_Datatype mpi_type(const int64_t*) { return MPI_INT64_T; }
MPI_Datatype mpi_type(const uint64_t*) { return MPI_UINT64_T; }

// MPI counts are ints: a longer array goes in pieces of at most 2^30.
constexpr int64_t kPiece = int64_t(1) << 30;

template <class T>
void allreduce(T* x, int64_t n) {
  init();
  if (g_world == 1 || n == 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t at = 0; at < n; at += kPiece) {
    const int count = int(std::min(kPiece, n - at));
    check(MPI_Allreduce(MPI_IN_PLACE, x + at, count, mpi_type(x), MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
  g_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_bytes += n * int64_t(sizeof(T));
}

template <class T>
void bcast(T* x, int64_t n, int root) {
  init();
  if (root < 0 || root >= g_world)
    throw std::invalid_argument("dist::broadcast: root " + std::to_string(root) +
                                " is not a rank of this job of " + std::to_string(g_world));
  if (g_world == 1 || n == 0) return;
  for (int64_t at = 0; at < n; at += kPiece) {
    const int count = int(std::min(kPiece, n - at));
    check(MPI_Bcast(x + at, count, mpi_type(x), root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

}  // namespace

bool built() { return true; }

void init(int* argc, char*** argv) {
  if (g_started) return;
  g_started = true;
  if (!launched_by_mpirun()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    std::atexit(finalize_at_exit);
  }
  g_mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world);
}

int rank() { return init(), g_rank; }
int world_size() { return init(), g_world; }
bool is_main() { return rank() == 0; }

std::string status() {
  init();
  if (!g_mpi) return "one process (not started by mpirun)";
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string lib(version, size_t(len));
  lib = lib.substr(0, lib.find(','));  // "Open MPI v4.1.4"
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return "rank " + std::to_string(g_rank) + " of " + std::to_string(g_world) + " (" + lib +
         "), host " + host;
}

void allreduce_sum(real* x, int64_t n) { allreduce(x, n); }
#ifndef BYHAND_DOUBLE
void allreduce_sum(double* x, int64_t n) { allreduce(x, n); }
#endif
void allreduce_sum(int64_t* x, int64_t n) { allreduce(x, n); }
void broadcast(real* x, int64_t n, int root) { bcast(x, n, root); }
void broadcast(uint64_t* x, int64_t n, int root) { bcast(x, n, root); }

double allreduce_seconds() { return g_seconds; }
int64_t allreduce_bytes() { return g_bytes; }

void abort(int code) {
  if (g_mpi && g_world > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace dist
}  // namespace byhand
