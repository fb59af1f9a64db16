// test_train.cpp — the training loop: it learns, it stops on NaN naming the
// layer, it writes the history CSV, and the same seed gives the same run.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "byhand/layers/activation.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/dropout.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "test_helpers.h"

using namespace byhand;

// A small, real classification task: 1,000 Fashion-MNIST training images.
static const Dataset& small_fashion() {
  static Dataset d = byhand_test::fashion_train().subset(1000);
  return d;
}

static std::unique_ptr<Sequential> small_mlp(uint64_t seed) {
  manual_seed(seed);
  auto net = std::make_unique<Sequential>();
  net->add<Flatten>();
  net->add_named<Linear>("fc1", 784, 32);
  net->add<ReLU>();
  net->add<Dropout>(0.1);
  net->add_named<Linear>("fc2", 32, 10);
  return net;
}

TEST_CASE("fit: the loss falls and accuracy beats chance on real images", "[train]") {
  auto net = small_mlp(1);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.1);
  DataLoader train(small_fashion(), 50, true, 1);
  FitOptions fo;
  fo.epochs = 5;
  fo.print = false;
  auto h = fit(*net, ce, opt, train, nullptr, fo);
  REQUIRE(h.size() == 5);
  REQUIRE(h.back().train_loss < 0.7 * h.front().train_loss);
  REQUIRE(std::isnan(h.back().val_acc));
  DataLoader eval_loader(small_fashion(), 200, false);
  EvalResult r = evaluate(*net, ce, eval_loader);
  REQUIRE(r.count == 1000);
  REQUIRE(r.accuracy > 0.6);
  REQUIRE(net->training());  // evaluate restores the mode
}

TEST_CASE("fit: one seed gives the same run, bit for bit", "[train]") {
  auto run = [](uint64_t seed) {
    auto net = small_mlp(seed);
    CrossEntropyLoss ce;
    Adam opt(net->params(), 1e-3);
    DataLoader train(small_fashion(), 64, true, seed);
    FitOptions fo;
    fo.epochs = 2;
    fo.print = false;
    fit(*net, ce, opt, train, nullptr, fo);
    return net->params()[0]->value.to_vector();
  };
  REQUIRE(run(7) == run(7));
  REQUIRE(run(7) != run(8));
}

TEST_CASE("fit: a NaN stops training and names the layer, step and lr", "[train]") {
  auto net = small_mlp(2);
  static_cast<Linear&>((*net)["fc2"]).weight.value[3] = real(NAN);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.1);
  DataLoader train(small_fashion(), 50, true, 1);
  FitOptions fo;
  fo.print = false;
  REQUIRE_THROWS_AS(fit(*net, ce, opt, train, nullptr, fo), TrainingDiverged);
  REQUIRE_THROWS_WITH(fit(*net, ce, opt, train, nullptr, fo),
                      Catch::Contains("NaN in the forward output of Linear(32, 10) 'fc2'") &&
                          Catch::Contains("parameter 'weight'") &&
                          Catch::Contains("step 1 (epoch 1, batch 1), learning rate 0.1"));
  REQUIRE(detail::active_guard == nullptr);  // disarmed on the way out
  // Without the guard (nan_guard.h), the loss check names the same layer.
  fo.nan_guard = false;
  REQUIRE_THROWS_WITH(fit(*net, ce, opt, train, nullptr, fo),
                      Catch::Contains("Linear(32, 10) 'fc2'") &&
                          Catch::Contains("fc2.weight") && Catch::Contains("epoch 1, batch 0"));
}

TEST_CASE("fit: the history CSV has a header and a row per epoch", "[train]") {
  auto net = small_mlp(3);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.05);
  DataLoader train(small_fashion(), 100, true, 1);
  DataLoader val(small_fashion(), 500, false);
  byhand_test::TempDir dir;
  const std::string path = dir / "history.csv";
  FitOptions fo;
  fo.epochs = 3;
  fo.print = false;
  fo.history_csv = path;
  auto h = fit(*net, ce, opt, train, &val, fo);
  std::ifstream f(path);
  REQUIRE(f.good());
  std::string line;
  std::getline(f, line);
  REQUIRE(line == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds");
  int rows = 0;
  while (std::getline(f, line)) ++rows;
  REQUIRE(rows == 3);
  REQUIRE(h[2].val_acc > 0.5);
  REQUIRE(dir.files() == std::vector<std::string>{"history.csv"});  // renamed: no temporary left
}

TEST_CASE("write_history_csv: a failure names the path and keeps the previous file", "[train]") {
  byhand_test::TempDir dir;
  std::vector<EpochStats> history(1);
  history[0].epoch = 1;
  const std::string nowhere = dir / "no/such/folder/history.csv";
  REQUIRE_THROWS_WITH(write_history_csv(nowhere, history),
                      Catch::Contains("write_history_csv: cannot write '" + nowhere + "'") &&
                          Catch::Contains("does not exist"));
  // The target is a folder: the rename fails, the temporary is removed.
  std::filesystem::create_directories(dir / "taken.csv");
  REQUIRE_THROWS_WITH(write_history_csv(dir / "taken.csv", history),
                      Catch::Contains("cannot rename") && Catch::Contains("it is a folder"));
  REQUIRE(dir.files() == std::vector<std::string>{"taken.csv"});
}

TEST_CASE("count_correct takes the argmax of each row", "[train]") {
  Tensor logits({3, 3}, {0.1, 0.9, 0.0, 2.0, 1.0, 0.5, 0.0, 0.0, 3.0});
  REQUIRE(count_correct(logits, {1, 0, 1}) == 2);
}

TEST_CASE("fit: after_backward and after_step run once per batch, around the step", "[train]") {
  auto net = small_mlp(4);
  CrossEntropyLoss ce;
  SGD opt(net->params(), 0.1);
  DataLoader train(small_fashion(), 300, true, 1);  // 1000 images: 4 batches
  int backwards = 0, steps = 0;
  FitOptions fo;
  fo.epochs = 2;
  fo.print = false;
  fo.after_backward = [&] {
    REQUIRE(opt.steps() == steps);  // before this batch's step
    ++backwards;
  };
  fo.after_step = [&] {
    ++steps;
    REQUIRE(opt.steps() == steps);  // after it
  };
  fit(*net, ce, opt, train, nullptr, fo);
  REQUIRE(backwards == 8);
  REQUIRE(steps == 8);
}
