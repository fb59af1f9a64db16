// Lesson 5 — LeNet-5 with batch norm, by hand, on Fashion-MNIST.
//
// What you will learn
//   * how a convolutional network is put together: convolution -> batch norm
//     -> ReLU -> max-pool, twice, then fully connected layers
//   * how shapes flow through it (the table printed first), and why the
//     first convolution pads by 2: a 5x5 kernel on 28x28 keeps 28x28
//   * why the model must be switched to eval mode for evaluation: batch norm
//     then uses its running statistics instead of the batch's own
//   * SGD with momentum vs Adam on the same network (--opt adam)
//
// The model is the seed notes' LeNet-5 variant with batch norm:
//   conv 5x5, 6 (pad 2) -> BN -> ReLU -> maxpool 2
//   conv 5x5, 16        -> BN -> ReLU -> maxpool 2
//   flatten -> FC 120 -> ReLU -> FC 84 -> ReLU -> FC 10
// Every layer is byhand's own (the model is built in src/models.cpp): Conv2d
// (src/layers/conv2d.cpp) computes the first layer, and the second one's
// forward, directly from the convolution's formula, and the second one's
// backward as im2col + BLIS GEMM (lesson 4), both roads checked against each
// other in the tests; BatchNorm2d's backward is the closed form derived in
// src/layers/batchnorm.cpp, and MaxPool2d routes each gradient to the input
// that won the max (src/layers/pooling.cpp).
//
// Run it
//   make tutorials && build/tutorials/05_lenet
//   build/tutorials/05_lenet --opt adam
//
// What to expect (2 cores, quiet machine): about 29 s, 3.5 s per epoch; the
// default 8 epochs end at 89.8% test accuracy (89.7% after 5, 85.9% after the
// first; PyTorch's same model: 86.1% after one epoch). --quick trains on 600
// images for one epoch (~40%) in under a second.
// The last line is "test accuracy: NN.NN%".
#include <cstdio>
#include <memory>
#include <string>

#include "byhand/data.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("05_lenet",
                    "Lesson 5: LeNet-5 with batch norm, trained by hand on Fashion-MNIST\n"
                    "(SGD with momentum by default, --opt adam for Adam).");
    cli.common.epochs = 8;
    cli.common.lr = 0.05;
    cli.common.batch = 128;
    std::string opt_name = "sgd", history_csv;
    double momentum = 0.9;
    cli.option("--opt", opt_name, "optimizer: sgd (with momentum) or adam (lr 1e-3 unless given)");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--history", history_csv, "write the per-epoch history to this CSV file");
    cli.checkpoint_flags();
    cli.device_flag();
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (opt_name == "adam") {
      if (!cli.given("--lr")) c.lr = 1e-3;
    } else if (opt_name != "sgd") {
      throw std::invalid_argument("--opt must be sgd or adam, got '" + opt_name + "'");
    }

    // Step 2 — data, standardised with the training set's statistics.
    lesson::TrainTest d = lesson::load_data(c);
    Normalize norm = channel_stats(d.train);
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader test(d.test, 1000, /*shuffle=*/false, 0, false, norm);

    // Step 3 — the model, and the shape of every layer's output for one image.
    // models::lenet5() (src/models.cpp) builds it with PyTorch's names: a
    // "features" Sequential that looks at the image (conv, BN, ReLU, pool,
    // twice) and a "classifier" that decides (three Linear layers), as in
    // torchvision's models.
    auto model = models::lenet5();
    std::printf("\n%s\n", summary(*model, {1, 1, 28, 28}).c_str());

    CrossEntropyLoss criterion;
    std::unique_ptr<Optimizer> optimizer;
    model->to(c.device);  // --device cuda: parameters, gradients and buffers to the GPU
    if (opt_name == "adam") optimizer = std::make_unique<Adam>(model->params(), c.lr);
    else optimizer = std::make_unique<SGD>(model->params(), c.lr, momentum);
    std::printf("optimizer: %s, lr %g", optimizer->name().c_str(), c.lr);
    if (opt_name == "sgd") std::printf(", momentum %g", momentum);
    std::printf(", batch %lld, %d epoch(s)\n", (long long)c.batch, c.epochs);

    // Step 4 — train. fit() switches the model to train mode for each epoch
    // (batch norm normalises with the batch's statistics and updates its
    // running averages) and evaluate() to eval mode for the test images
    // (batch norm uses the running averages: a prediction must not depend on
    // which other images share its batch).
    FitOptions fo = lesson::fit_options(c);
    fo.history_csv = history_csv;
    std::vector<EpochStats> history = fit(*model, criterion, *optimizer, train, &test, fo);

    // Step 5 — the final score, on 10,000 images the model never trained on:
    // fit() measured it after the last epoch, in eval mode.
    const EpochStats& last = history.back();
    lesson::print_test_result(d.test, last.val_acc, last.val_loss);
    return 0;
  });
}
