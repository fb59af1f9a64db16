// test_distributed.cpp — data parallelism (distributed.h, data_parallel.h):
// the DataLoader's shares of a batch, the gradient averaging in one process,
// and, where the library has MPI and mpirun is installed, two ranks under
// `mpirun -np 2` ending with identical weights, equal to one process's.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <omp.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/data_parallel.h"
#include "byhand/distributed.h"
#include "byhand/layers/linear.h"
#include "byhand/ops.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;
namespace fs = std::filesystem;

namespace {

const Dataset& small_fashion() {
  static Dataset d = byhand_test::fashion_train().subset(203);
  return d;
}

// Runs a shell command; its exit status, and its stdout and stderr together.
int shell(const std::string& cmd, std::string& output) {
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, got);
  const int status = ::pclose(pipe);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// byhand_dp_check is a program of the float build, whichever test binary
// reads its weights.
std::vector<float> read_weights(const std::string& path) {
  const std::string bytes = byhand_test::read_bytes(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// The command that starts 2 ranks here, or "" with the reason in `why` when
// this machine cannot: no MPI in the library, no mpirun, or an mpirun that
// cannot start two trivial processes (a container can lack what Open MPI
// needs). As root Open MPI wants to be told; --oversubscribe lets 2 ranks run
// on a 1-core machine.
std::string mpirun_2_ranks(std::string& why) {
  std::string out;
  if (!dist::built()) why = "this library has no MPI (make MPI=1 with libopenmpi-dev)";
  else if (shell("command -v mpirun", out) != 0) why = "mpirun not found (apt-get install openmpi-bin)";
  if (!why.empty()) return "";
  const std::string mpirun = std::string("timeout 300 mpirun -np 2 --oversubscribe") +
                             (::geteuid() == 0 ? " --allow-run-as-root" : "");
  if (shell(mpirun + " true", out) != 0) {
    why = "mpirun cannot start 2 processes on this machine:\n" + out;
    return "";
  }
  return mpirun;
}

fs::path dp_check_binary() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return exe.parent_path() / "byhand_dp_check";
}

}  // namespace

TEST_CASE("DataLoader::set_shard: the ranks' shares are exactly each global batch", "[dist]") {
  for (int world : {2, 3, 5}) {
    DYNAMIC_SECTION("world " << world) {
      DataLoader whole(small_fashion(), 32, true, 4);
      std::vector<DataLoader> ranks;
      for (int r = 0; r < world; ++r) {
        ranks.emplace_back(small_fashion(), 32, true, 4);
        ranks.back().set_shard(r, world);
        REQUIRE(ranks.back().num_batches() == whole.num_batches());  // the job's batches
      }
      Batch all, part;
      int batches = 0;
      std::vector<int64_t> served(size_t(world), 0);
      while (whole.next(all)) {
        std::vector<int64_t> joined;
        std::vector<real> joined_x;
        for (int r = 0; r < world; ++r) {
          REQUIRE(ranks[size_t(r)].next(part));
          REQUIRE(part.global_size == all.size());
          served[size_t(r)] += part.size();
          // Shares differ by at most one example.
          REQUIRE(std::abs(double(part.size()) - double(all.size()) / world) < 1.0);
          joined.insert(joined.end(), part.indices.begin(), part.indices.end());
          const std::vector<real> x = part.x.to_vector();
          joined_x.insert(joined_x.end(), x.begin(), x.end());
        }
        REQUIRE(joined == all.indices);
        REQUIRE(joined_x == all.x.to_vector());
        ++batches;
      }
      REQUIRE(batches == 7);  // 203 = 6 x 32 + 11: the last batch shared out too
      for (DataLoader& l : ranks) REQUIRE_FALSE(l.next(part));
      for (int r = 0; r < world; ++r) REQUIRE(ranks[size_t(r)].shard_size() == served[size_t(r)]);
    }
  }
  DataLoader l(small_fashion(), 32, false);
  Batch b;
  REQUIRE(l.next(b));
  REQUIRE(b.global_size == 32);  // one process: the batch is all of it
  REQUIRE(l.shard_size() == l.size());
  REQUIRE_THROWS_WITH(l.set_shard(2, 2), Catch::Contains("rank 2 of 2"));
  REQUIRE_THROWS_WITH(l.set_shard(0, 0), Catch::Contains("0 <= rank < world"));
  REQUIRE_THROWS_WITH(l.set_shard(-1, 4), Catch::Contains("rank -1"));
}

TEST_CASE("dist: a process not started by mpirun is a world of one", "[dist]") {
  dist::init();
  REQUIRE(dist::rank() == 0);
  REQUIRE(dist::world_size() == 1);
  REQUIRE(dist::is_main());
  REQUIRE_THAT(dist::status(), Catch::Contains("one process"));
  std::vector<real> x{1, 2, 3};
  dist::allreduce_sum(x.data(), 3);  // a world of one: the sum is x
  REQUIRE(x == std::vector<real>{1, 2, 3});
  REQUIRE_THROWS_WITH(dist::broadcast(x.data(), 3, 1), Catch::Contains("root 1"));
}

// Ranks started on one machine by mpirun share its cores: the launcher's
// count of them divides set_num_threads(0)'s "every core".
TEST_CASE("set_num_threads(0): this machine's cores shared among its mpirun ranks", "[dist]") {
  const int before = num_threads();
  {
    byhand_test::SetEnv no_byhand("BYHAND_NUM_THREADS", nullptr);
    byhand_test::SetEnv no_omp("OMP_NUM_THREADS", nullptr);
    byhand_test::SetEnv ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
    set_num_threads(0);
    REQUIRE(num_threads() == std::max(1, omp_get_num_procs() / 2));
    byhand_test::SetEnv more("OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(4 * omp_get_num_procs()));
    set_num_threads(0);
    REQUIRE(num_threads() == 1);  // never none
  }
  set_num_threads(before);
}

TEST_CASE("DataParallel: buckets cover every gradient; one process scales by its share",
          "[dist]") {
  Sequential model;
  model.add("fc1", std::make_unique<Linear>(10, 6));  // 60 + 6 numbers
  model.add("fc2", std::make_unique<Linear>(6, 3));   // 18 + 3
  for (Param* p : model.params())
    for (int64_t i = 0; i < p->grad.numel(); ++i) p->grad[i] = real(i + 1);
  // 24 numbers per bucket: fc2's bias and weight (21) share one, fc1's bias
  // (6) one, fc1's weight (60, too big for any) one of its own.
  DataParallel small(model, 24 * int64_t(sizeof(real)));
  REQUIRE(small.buckets() == 3);
  REQUIRE(small.gradient_numbers() == 87);
  DataParallel big(model);
  REQUIRE(big.buckets() == 1);

  small.average_gradients(32, 32);  // the whole batch: unchanged
  for (Param* p : model.params()) REQUIRE(p->grad[0] == real(1));
  small.average_gradients(8, 32);  // a quarter of it: a quarter of the weight
  for (Param* p : model.params()) {
    REQUIRE(p->grad[0] == real(0.25));
    REQUIRE(p->grad[p->grad.numel() - 1] == real(0.25) * real(p->grad.numel()));
  }
  REQUIRE_THROWS_WITH(small.average_gradients(5, 4), Catch::Contains("5 of 4"));
  REQUIRE_THROWS_WITH(small.average_gradients(0, 0), Catch::Contains("global >= 1"));
  REQUIRE_THROWS_WITH(DataParallel(model, 1), Catch::Contains("bucket_bytes"));
  REQUIRE_NOTHROW(small.check_in_sync());  // one rank: in sync with itself
  REQUIRE_NOTHROW(small.broadcast_from_main());
}

// The acceptance test of data parallelism: rank 1 starts from other weights
// (another seed), fit() broadcasts rank 0's, both train on their halves of
// the same global batches for 12 steps (the last batch uneven), and then:
// the two ranks hold the same weights, bit for bit, and those equal a single
// process's on the whole batches up to float rounding (relative 1e-5).
TEST_CASE("data parallel: 2 ranks under mpirun end as one process does", "[dist]") {
  std::string why, out;
  const std::string mpirun = mpirun_2_ranks(why);
  if (mpirun.empty()) {
    WARN("skipped: " << why);
    return;
  }
  const fs::path bin = dp_check_binary();
  REQUIRE(fs::is_regular_file(bin));
  byhand_test::TempDir dir("dist");
  for (const std::string model : {"mlp", "lenet"}) {
    DYNAMIC_SECTION(model) {
      out.clear();
      const std::string args = " " + dir.path.string() + " --model " + model;
      int rc = shell("timeout 300 " + bin.string() + args, out);
      INFO(out);
      REQUIRE(rc == 0);
      rc = shell(mpirun + " " + bin.string() + args, out);
      REQUIRE(rc == 0);
      REQUIRE_THAT(out, Catch::Contains("rank 1 of 2: 12 steps"));
      const std::vector<float> one = read_weights(dir / "weights_1_0.bin");
      const std::vector<float> r0 = read_weights(dir / "weights_2_0.bin");
      const std::vector<float> r1 = read_weights(dir / "weights_2_1.bin");
      REQUIRE(!one.empty());
      REQUIRE(r0.size() == one.size());
      REQUIRE(r0 == r1);  // one model on both ranks, bit for bit
      if (model == "lenet") continue;  // batch norm: per-rank statistics (data_parallel.h)
      double worst = 0;
      for (size_t i = 0; i < one.size(); ++i)
        worst = std::max(worst, std::abs(double(r0[i]) - double(one[i])) /
                                    std::max(1.0, std::abs(double(one[i]))));
      INFO("largest relative difference from one process: " << worst);
      REQUIRE(worst <= 1e-5);
    }
  }
}

// Crash-safe training across ranks: rank 0 writes the checkpoints (with the
// whole job's running sums), a job stopped at step 7 and resumed from step
// 5's checkpoint on both ranks ends with the uninterrupted job's weights, bit
// for bit, on both ranks.
TEST_CASE("data parallel: a 2-rank job stopped and resumed ends as one never stopped", "[dist]") {
  std::string why, out;
  const std::string mpirun = mpirun_2_ranks(why);
  if (mpirun.empty()) {
    WARN("skipped: " << why);
    return;
  }
  byhand_test::TempDir dir("dist_resume");
  const std::string run = mpirun + " " + dp_check_binary().string() + " " + dir.path.string();
  INFO(out);
  REQUIRE(shell(run + " --tag straight --checkpoint " + (dir / "a"), out) == 0);
  REQUIRE(shell(run + " --tag stopped --checkpoint " + (dir / "b") + " --stop-at 7", out) != 0);
  REQUIRE_THAT(out, Catch::Contains("stopped at step 7"));
  REQUIRE_FALSE(fs::exists(dir / "weights_stopped2_0.bin"));
  // Built from another seed: only what the checkpoint holds can bring it back.
  REQUIRE(shell(run + " --tag resumed --seed 99 --checkpoint " + (dir / "b") + " --resume", out) ==
          0);
  const std::vector<float> straight = read_weights(dir / "weights_straight2_0.bin");
  REQUIRE(!straight.empty());
  REQUIRE(read_weights(dir / "weights_straight2_1.bin") == straight);
  REQUIRE(read_weights(dir / "weights_resumed2_0.bin") == straight);
  REQUIRE(read_weights(dir / "weights_resumed2_1.bin") == straight);
  REQUIRE(fs::exists(dir / "b/final.safetensors"));
}
