// test_schedule.cpp — the learning-rate schedules against PyTorch 1.13.
//
// Every test drives an SGD with two parameter groups, base lrs 0.1 and 0.01,
// and reads the lrs of epochs 0..12 (before each step()). The reference
// numbers come from this script (PyTorch's own recursive get_lr(), which the
// closed forms here must agree with):
//
//   import torch
//   from torch.optim import lr_scheduler as S
//   def lrs(make, epochs=13):
//       p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
//       opt = torch.optim.SGD([{'params': [p]}, {'params': [q], 'lr': 0.01}], lr=0.1)
//       s = make(opt)
//       out = []
//       for e in range(epochs):
//           out.append(s.get_last_lr())
//           opt.step(); s.step()
//       for g in range(2): print(", ".join(f"{lr[g]:.17g}" for lr in out))
//   lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5))   # and so on, per test
//
// Schedules compute in double whatever `real` is, so both builds use one
// tight tolerance.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "byhand/data.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/schedule.h"
#include "byhand/sequential.h"
#include "byhand/train.h"

using namespace byhand;

namespace {

constexpr double kTol = 1e-12;

// Two one-number parameters in two groups: lr 0.1 and lr 0.01.
struct TwoGroups {
  Param p{"p"}, q{"q"};
  SGD opt;
  TwoGroups() : opt(make_groups(p, q)) {}
  static std::vector<ParamGroup> make_groups(Param& p, Param& q) {
    p.init({1});
    q.init({1});
    return {{{&p}, 0.1}, {{&q}, 0.01}};
  }
};

// The lrs of epochs 0..epochs-1 of group `group`, read before each step(),
// checking on the way that the optimizer got what the scheduler reports.
std::vector<double> lrs(LRScheduler& s, size_t group, int epochs = 13) {
  std::vector<double> out;
  for (int e = 0; e < epochs; ++e) {
    REQUIRE(s.optimizer().lr(group) == s.get_last_lr()[group]);
    out.push_back(s.get_last_lr()[group]);
    s.step();
  }
  return out;
}

void require_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("epoch " << i);
    REQUIRE(got[i] == Approx(want[i]).epsilon(kTol).margin(1e-15));
  }
}

}  // namespace

TEST_CASE("StepLR matches PyTorch", "[schedule]") {
  TwoGroups t;
  StepLR s(t.opt, 3, 0.5);
  REQUIRE(s.name() == "StepLR(step_size=3, gamma=0.5)");
  REQUIRE(s.base_lrs() == std::vector<double>{0.1, 0.01});
  REQUIRE(s.last_epoch() == 0);
  // S.StepLR(o, step_size=3, gamma=0.5)
  require_close(lrs(s, 0), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125,
                            0.0125, 0.00625});
  REQUIRE(s.last_epoch() == 13);
  TwoGroups u;
  StepLR s2(u.opt, 3, 0.5);
  require_close(lrs(s2, 1), {0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025, 0.0025,
                             0.00125, 0.00125, 0.00125, 0.000625});
}

TEST_CASE("MultiStepLR matches PyTorch, milestones in any order, repeats counted", "[schedule]") {
  TwoGroups t;
  MultiStepLR s(t.opt, {5, 2, 5}, 0.1);
  REQUIRE(s.name() == "MultiStepLR(milestones=[2, 5, 5], gamma=0.1)");
  // S.MultiStepLR(o, milestones=[5, 2, 5], gamma=0.1): x0.1 at 2, x0.01 at 5
  require_close(lrs(s, 0), {0.10000000000000001, 0.10000000000000001, 0.010000000000000002,
                            0.010000000000000002, 0.010000000000000002, 0.00010000000000000005,
                            0.00010000000000000005, 0.00010000000000000005, 0.00010000000000000005,
                            0.00010000000000000005, 0.00010000000000000005, 0.00010000000000000005,
                            0.00010000000000000005});
  TwoGroups u;
  MultiStepLR s2(u.opt, {5, 2, 5}, 0.1);
  require_close(lrs(s2, 1), {0.01, 0.01, 0.001, 0.001, 0.001, 1.0000000000000003e-05,
                             1.0000000000000003e-05, 1.0000000000000003e-05, 1.0000000000000003e-05,
                             1.0000000000000003e-05, 1.0000000000000003e-05, 1.0000000000000003e-05,
                             1.0000000000000003e-05});
}

TEST_CASE("CosineAnnealingLR matches PyTorch, down to eta_min at T_max and back up", "[schedule]") {
  TwoGroups t;
  CosineAnnealingLR s(t.opt, 10, 0.001);
  REQUIRE(s.name() == "CosineAnnealingLR(T_max=10, eta_min=0.001)");
  // By hand, halfway: lr = eta_min + (base - eta_min) * (1 + cos(pi/2)) / 2 = 0.001 + 0.099 / 2.
  REQUIRE(s.lr_at(5, 0.1) == Approx(0.0505).epsilon(kTol));
  // S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)
  require_close(lrs(s, 0), {0.10000000000000001, 0.097577297556610113, 0.090546341221559898,
                            0.079595369988477424, 0.065796341221559904, 0.050500000000000003,
                            0.03520365877844011, 0.021404630011522589, 0.010453658778440109,
                            0.0034227024433899004, 0.001, 0.0034227024433899004,
                            0.01045365877844014});
  TwoGroups u;
  CosineAnnealingLR s2(u.opt, 10, 0.001);
  require_close(lrs(s2, 1), {0.01, 0.0097797543233281922, 0.0091405764746872627,
                             0.008145033635316129, 0.0068905764746872633, 0.0054999999999999997,
                             0.004109423525312737, 0.0028549663646838712, 0.0018594235253127369,
                             0.0012202456766718091, 0.001, 0.0012202456766718091,
                             0.0018594235253127397});
}

TEST_CASE("LinearLR warm-up matches PyTorch and sets epoch 0's lr at once", "[schedule]") {
  TwoGroups t;
  LinearLR s(t.opt, 0.25, 1.0, 4);
  REQUIRE(s.name() == "LinearLR(start_factor=0.25, end_factor=1, total_iters=4)");
  REQUIRE(t.opt.lr(0) == Approx(0.025).epsilon(kTol));  // 0.1 * start_factor, before any step
  REQUIRE(s.base_lrs() == std::vector<double>{0.1, 0.01});
  // S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4)
  require_close(lrs(s, 0), {0.025000000000000001, 0.043750000000000004, 0.062500000000000014,
                            0.081250000000000017, 0.10000000000000002, 0.10000000000000002,
                            0.10000000000000002, 0.10000000000000002, 0.10000000000000002,
                            0.10000000000000002, 0.10000000000000002, 0.10000000000000002,
                            0.10000000000000002});
  TwoGroups u;
  LinearLR s2(u.opt, 0.25, 1.0, 4);
  require_close(lrs(s2, 1), {0.0025, 0.004375, 0.00625, 0.008125, 0.01, 0.01, 0.01, 0.01, 0.01,
                             0.01, 0.01, 0.01, 0.01});
}

TEST_CASE("SequentialLR: warm-up then cosine matches PyTorch", "[schedule]") {
  TwoGroups t;
  LinearLR warmup(t.opt, 0.1, 1.0, 3);
  CosineAnnealingLR cosine(t.opt, 8);
  SequentialLR s(t.opt, {&warmup, &cosine}, {3});
  REQUIRE(s.name() ==
          "SequentialLR([LinearLR(start_factor=0.1, end_factor=1, total_iters=3), "
          "CosineAnnealingLR(T_max=8, eta_min=0)], milestones=[3])");
  // The chain's base is the first schedule's, the lrs before any was built.
  REQUIRE(s.base_lrs() == std::vector<double>{0.1, 0.01});
  // S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
  //                    S.CosineAnnealingLR(o, T_max=8, eta_min=0.0)], milestones=[3])
  require_close(lrs(s, 0), {0.010000000000000002, 0.040000000000000001, 0.070000000000000007,
                            0.10000000000000001, 0.096193976625564337, 0.085355339059327379,
                            0.069134171618254497, 0.050000000000000003, 0.030865828381745515,
                            0.014644660940672627, 0.0038060233744356634, 0, 0.0038060233744356634});
  TwoGroups u;
  LinearLR warmup2(u.opt, 0.1, 1.0, 3);
  CosineAnnealingLR cosine2(u.opt, 8);
  SequentialLR s2(u.opt, {&warmup2, &cosine2}, {3});
  require_close(lrs(s2, 1), {0.001, 0.0039999999999999992, 0.0069999999999999984, 0.01,
                             0.0096193976625564333, 0.0085355339059327365, 0.0069134171618254487,
                             0.0049999999999999992, 0.0030865828381745511, 0.0014644660940672624,
                             0.00038060233744356627, 0, 0.00038060233744356632});
}

TEST_CASE("set_last_epoch jumps to the lr that stepping reaches (resuming)", "[schedule]") {
  TwoGroups stepped, jumped;
  CosineAnnealingLR a(stepped.opt, 10);
  CosineAnnealingLR b(jumped.opt, 10);
  for (int e = 0; e < 7; ++e) a.step();
  b.set_last_epoch(7);
  REQUIRE(b.last_epoch() == 7);
  REQUIRE(b.get_last_lr() == a.get_last_lr());
  REQUIRE(jumped.opt.lr(1) == stepped.opt.lr(1));
  b.step();
  a.step();
  REQUIRE(b.lr() == a.lr());
  REQUIRE_THROWS_WITH(b.set_last_epoch(-1), Catch::Contains("invalid epoch"));
  REQUIRE_THROWS_WITH(b.set_last_epoch(-1),
                      "CosineAnnealingLR(T_max=10, eta_min=0): invalid epoch -1");
  REQUIRE(b.last_epoch() == 8);  // a refused epoch changes nothing
}

TEST_CASE("Schedules refuse bad settings with a clear message", "[schedule]") {
  TwoGroups t;
  REQUIRE_THROWS_WITH(StepLR(t.opt, 0), Catch::Contains("step_size must be positive"));
  REQUIRE_THROWS_WITH(StepLR(t.opt, 2, -0.5), Catch::Contains("gamma must be positive"));
  REQUIRE_THROWS_WITH(MultiStepLR(t.opt, {3, -1}), Catch::Contains("must not be negative"));
  REQUIRE_THROWS_WITH(CosineAnnealingLR(t.opt, 0), Catch::Contains("T_max must be positive"));
  REQUIRE_THROWS_WITH(CosineAnnealingLR(t.opt, 5, -1), Catch::Contains("eta_min"));
  REQUIRE_THROWS_WITH(LinearLR(t.opt, 0.0), Catch::Contains("start_factor must be in (0, 1]"));
  REQUIRE_THROWS_WITH(LinearLR(t.opt, 0.5, 1.5), Catch::Contains("end_factor must be in [0, 1]"));
  REQUIRE_THROWS_WITH(LinearLR(t.opt, 0.5, 1.0, 0), Catch::Contains("total_iters"));
  // Word for word, as before the checks stopped building their messages up front.
  REQUIRE_THROWS_WITH(StepLR(t.opt, 0), "StepLR: step_size must be positive, got 0");
  REQUIRE_THROWS_WITH(MultiStepLR(t.opt, {3, -1}),
                      "MultiStepLR: milestones must not be negative, got [-1, 3]");
  REQUIRE_THROWS_WITH(CosineAnnealingLR(t.opt, 5, -1),
                      "CosineAnnealingLR: eta_min must not be negative, got -1");
  REQUIRE_THROWS_WITH(LinearLR(t.opt, 0.5, 1.0, 0),
                      "LinearLR: total_iters must be positive, got 0");

  LinearLR warmup(t.opt, 0.5, 1.0, 2);
  CosineAnnealingLR cosine(t.opt, 4);
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {&warmup, &cosine}, {}),
                      Catch::Contains("one milestone fewer than schedules"));
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {&warmup, &cosine, &warmup}, {3, 3}),
                      Catch::Contains("positive and increasing"));
  TwoGroups other;
  StepLR elsewhere(other.opt, 2);
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {&warmup, &elsewhere}, {2}),
                      Catch::Contains("belongs to another optimizer"));
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {&warmup, &elsewhere}, {2}),
                      "SequentialLR: StepLR(step_size=2, gamma=0.1) belongs to another optimizer");
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {}, {}), "SequentialLR: needs at least one schedule");
  REQUIRE_THROWS_WITH(SequentialLR(t.opt, {&warmup, nullptr}, {2}), "SequentialLR: null schedule");
}

TEST_CASE("A schedule drives fit() through on_epoch", "[schedule]") {
  // 40 random 2x2 "images" in 2 classes: enough for fit() to run three epochs.
  Dataset data;
  data.images = Tensor({40, 1, 2, 2});
  for (int64_t i = 0; i < data.images.numel(); ++i) data.images[i] = real(i % 7) / 7;
  for (int i = 0; i < 40; ++i) data.labels.push_back(i % 2);
  data.num_classes = 2;
  data.classes = {"a", "b"};
  DataLoader loader(data, 10, false);

  manual_seed(3);
  Sequential net;
  net.add<Flatten>();
  net.add<Linear>(4, 2);
  CrossEntropyLoss ce;
  SGD opt(net.params(), 0.1);
  StepLR schedule(opt, 1, 0.5);
  FitOptions fo;
  fo.epochs = 3;
  fo.print = false;
  fo.progress = false;
  fo.on_epoch = [&](const EpochStats&) { schedule.step(); };
  const std::vector<EpochStats> history = fit(net, ce, opt, loader, nullptr, fo);
  REQUIRE(history.size() == 3);
  REQUIRE(history[0].lr == Approx(0.1).epsilon(kTol));  // the lr each epoch trained with
  REQUIRE(history[1].lr == Approx(0.05).epsilon(kTol));
  REQUIRE(history[2].lr == Approx(0.025).epsilon(kTol));
  REQUIRE(opt.lr() == Approx(0.0125).epsilon(kTol));  // ready for a fourth epoch
}
