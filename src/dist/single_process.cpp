// single_process.cpp — distributed.h in a library built without MPI: a world
// of one process, where every reduction leaves its numbers as they are. (With
// MPI=1, src/dist/mpi.cpp is built instead.)
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "byhand/distributed.h"

namespace byhand {
namespace dist {

bool built() { return false; }
void init(int*, char***) {}
int rank() { return 0; }
int world_size() { return 1; }
bool is_main() { return true; }

std::string status() {
  const bool under_mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK");
  return std::string("one process (this library has no MPI: make MPI=1 with Open MPI)") +
         (under_mpirun ? "; started by mpirun, every rank trains alone" : "");
}

void allreduce_sum(real*, int64_t) {}
#ifndef BYHAND_DOUBLE
void allreduce_sum(double*, int64_t) {}
#endif
void allreduce_sum(int64_t*, int64_t) {}
void broadcast(real*, int64_t, int root) {
  if (root != 0) throw std::invalid_argument("dist::broadcast: root " + std::to_string(root) +
                                             " is not a rank of this job of 1");
}
void broadcast(uint64_t*, int64_t, int root) { broadcast(static_cast<real*>(nullptr), 0, root); }
double allreduce_seconds() { return 0; }
int64_t allreduce_bytes() { return 0; }
void abort(int code) { std::exit(code); }

}  // namespace dist
}  // namespace byhand
