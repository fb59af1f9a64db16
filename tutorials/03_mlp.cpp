// Lesson 3 — A multi-layer perceptron on Fashion-MNIST, by hand.
//
// What you will learn
//   * how layers stack into a model: Flatten -> (Linear -> activation) x k -> Linear
//   * what one training step is: forward, loss, zero_grad, backward, step
//   * why we shuffle, use mini-batches, and evaluate on images never trained on
//   * how ReLU and sigmoid hidden layers compare (--act sigmoid)
//
// This is the model of the seed notes: 784-100-100-100-10 with ReLU, trained
// with plain SGD (lr 0.1) on batches of 128 shuffled images; and, with
//     --arch 256,256 --opt adam --epochs 5
// the second seed MLP, 784-256-256-10 with Adam(lr 1e-3) on batches of 64.
//
// Run it
//   make run                        (the same as build/tutorials/03_mlp)
//   build/tutorials/03_mlp --act sigmoid
//   build/tutorials/03_mlp --arch 256,256 --opt adam --epochs 5
//
// What to expect (2 cores): the default run takes 5-6.5 s and ends at 87.3%
// test accuracy; the Adam run (--arch 256,256 --opt adam --epochs 5) takes
// 5.5-7 s and ends at 87.9% (PyTorch: 87.9%). (Times from a quiet and a busier
// day.) (Fashion-MNIST is harder than the digits: the same network gets ~98%
// on MNIST.) Each epoch prints the
// training loss and accuracy and then, labelled "val", the loss and accuracy
// on the test set (this lesson has no separate validation set; lesson 8 says
// why later lessons do); the last line is "test accuracy: NN.NN%".
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

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
    lesson::Cli cli("03_mlp",
                    "Lesson 3: a multi-layer perceptron (784-100-100-100-10 by default) trained by\n"
                    "hand on Fashion-MNIST with SGD; --arch 256,256 --opt adam --epochs 5 gives the\n"
                    "second seed model.");
    cli.common.epochs = 10;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    std::string arch = "100,100,100", act = "relu", opt_name = "sgd", history_csv;
    double momentum = 0;
    cli.option("--arch", arch, "hidden layer sizes, comma separated");
    cli.option("--act", act, "hidden activation: relu, sigmoid or tanh");
    cli.option("--opt", opt_name, "optimizer: sgd or adam (adam: lr 1e-3, batch 64 unless given)");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--history", history_csv, "write the per-epoch history to this CSV file");
    cli.checkpoint_flags();
    cli.device_flag();
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (opt_name == "adam") {
      if (!cli.given("--lr")) c.lr = 1e-3;
      if (!cli.given("--batch")) c.batch = 64;
    } else if (opt_name != "sgd") {
      throw std::invalid_argument("--opt must be sgd or adam, got '" + opt_name + "'");
    }
    if (act != "relu" && act != "sigmoid" && act != "tanh")  // (models::mlp checks it too)
      throw std::invalid_argument("--act must be relu, sigmoid or tanh, got '" + act + "'");

    // Step 2 — the data. 60,000 training and 10,000 test images of clothing,
    // 28x28 gray, 10 classes. Pixels arrive in [0, 1]; we standardise them with
    // the training set's mean and standard deviation (transforms.Normalize),
    // which keeps the first layer's inputs centred and the gradients tame.
    lesson::TrainTest d = lesson::load_data(c);
    Normalize norm = channel_stats(d.train);
    std::printf("normalize: mean %.4f, std %.4f\n", double(norm.mean[0]), double(norm.std[0]));

    // Shuffle the training set every epoch (a fresh order from the seed), so
    // that consecutive batches are not correlated; the test set needs no order.
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader test(d.test, 1000, /*shuffle=*/false, 0, false, norm);

    // Step 3 — model, loss, optimizer. models::mlp (src/models.cpp) stacks
    // Flatten -> (Linear -> activation) per hidden size -> Linear(.., 10) in a
    // Sequential, which runs its children in order; each child is a layer with
    // its own forward and backward (src/layers/). Names follow PyTorch, so the
    // parameters are "1.weight", "1.bias", "3.weight", ... exactly as in
    // nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), ...).
    auto model = models::mlp(lesson::parse_sizes("--arch", arch), act);
    std::printf("\n%s\n", summary(*model, {1, 1, 28, 28}).c_str());
    CrossEntropyLoss criterion;  // softmax + negative log-likelihood, fused (see loss.cpp)
    std::unique_ptr<Optimizer> optimizer;
    model->to(c.device);  // --device cuda: parameters, gradients and buffers to the GPU
    if (opt_name == "adam") optimizer = std::make_unique<Adam>(model->params(), c.lr);
    else optimizer = std::make_unique<SGD>(model->params(), c.lr, momentum);
    std::printf("optimizer: %s, lr %g, batch %lld, %d epoch(s)\n", optimizer->name().c_str(), c.lr,
                (long long)c.batch, c.epochs);

    // Step 4 — train. fit() (src/train.cpp) is the loop of the seeds:
    //   for each batch: logits = model.forward(x); loss = criterion(logits, y);
    //                   zero_grad(); model.backward(dL/dlogits); step()
    // and after each epoch an evaluation on the test images in eval mode.
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
