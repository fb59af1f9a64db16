// Lesson 11 — VGG: a deep network built from one repeated block.
//
// What you will learn
//   * the VGG block: a few 3x3 convolutions (padding 1, so the size stays),
//     each followed by ReLU, then a 2x2 max-pool that halves the image
//   * why 3x3: two stacked 3x3 convolutions see a 5x5 window, three see 7x7,
//     with fewer weights (2 * 9 C^2 = 18 C^2 against 25 C^2) and one more
//     non-linearity in between
//   * how a network is described by a short configuration: the seed notes'
//     conv_arch ((1,64), (1,128), (2,256), (2,512), (2,512)) is VGG-11
//     (Simonyan & Zisserman 2014; torchvision's vgg11): 8 convolutions and 3
//     fully connected layers
//   * the shapes, block by block, for the seed's 1x224x224 input, and where
//     the parameters are: for 10 classes, 102.8 of VGG-11's 128.8 million sit
//     in the first fully connected layer, which looks at 512 x 7 x 7 numbers;
//     the 8 convolutions, which do nearly all the arithmetic, hold 9.2 million
//   * which input size VGG needs, and a narrower VGG-11 trained on
//     Fashion-MNIST
//
// The model is models::vgg (src/models.cpp): torchvision's structure and
// names ("features.0.weight", ..., "classifier.6.bias"), torchvision's
// initialisation (kaiming-normal convolutions, N(0, 0.01) fully connected
// layers), so its checkpoints load in PyTorch.
//
// Which input size. Five blocks halve the image five times: 224 -> 7. A
// 28x28 Fashion-MNIST image would go 28, 14, 7, 3, 1 and then 0: the last
// block would have nothing to pool. The seed notes resize every image to
// 224x224 (64 times the pixels, hours per epoch on two cores). Here the
// 28x28 images get a 2-pixel border of zeros instead, to 32x32, which halves
// cleanly to 16, 8, 4, 2, 1; nothing is lost (Fashion-MNIST's borders are
// black already). The last block's output is then 1x1, so the average pool
// before the classifier keeps 1x1 (pool_size 1, not 7), and, as in the seed
// notes (d2l's "ratio = 4"), every convolution is 4x narrower: 16, 32, 64,
// 128 channels, for a run of a few minutes. The two hidden fully connected
// layers are 512 wide instead of 4096 (--hidden), which keeps most of the
// time in the convolutions.
//
// Batch norm. The seed's VGG (and the 2014 paper's) has none: 11 layers of
// plain convolutions and ReLUs, which start slowly (the paper trained its
// deeper VGGs from the weights of shallower ones). This lesson adds batch
// norm after every convolution, as torchvision's vgg11_bn does (lesson 9
// says why it helps), so a run of a few minutes gets somewhere; --plain
// trains the seed's VGG without it, at a lower learning rate (0.01 unless
// --lr is given): it sits near chance for a while before it learns.
//
// Training: SGD with momentum 0.9, the learning rate (0.05) falling along a
// cosine to 0, stepped after every batch, batch 128.
//
// Run it
//   make tutorials && build/tutorials/11_vgg
//   build/tutorials/11_vgg --plain
//   build/tutorials/11_vgg --epochs 8
//
// What to expect (2 cores, measured with seed 0): the default run takes
// about 2 minutes, 30 s an epoch; validation accuracy 88.8% after the
// first epoch, 92.0% after the fourth, and "test accuracy: 91.70%" as the
// last line. --quick (600 images, one epoch, batches of 16) takes a few
// seconds and reaches about 35%. Curves in runs/11_vgg/.
#include <cstdio>
#include <filesystem>
#include <string>

#include "byhand/data.h"
#include "byhand/layers/zero_pad.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/random.h"
#include "byhand/schedule.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("11_vgg",
                    "Lesson 11: VGG-11 (the seed's conv_arch), its shapes at 224x224, and a\n"
                    "4x narrower VGG-11 with batch norm trained on Fashion-MNIST padded to\n"
                    "32x32 (--plain: without batch norm, as in the seed).");
    cli.common.epochs = 4;
    cli.common.lr = 0.05;
    cli.common.batch = 128;
    bool plain = false;
    int64_t width_divisor = 4, hidden = 512;
    double momentum = 0.9;
    std::string out_dir = "runs/11_vgg";
    cli.option("--plain", plain, "no batch norm (the seed's VGG; lr 0.01 unless given)");
    cli.option("--width-divisor", width_divisor, "convolution channels 64..512 divided by this");
    cli.option("--hidden", hidden, "width of the two hidden fully connected layers");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--out", out_dir, "folder for the history CSV and the PNG curves");
    cli.checkpoint_flags();
    cli.device_flag();
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    const bool batch_norm = !plain;
    if (plain && !cli.given("--lr")) c.lr = 0.01;

    // Step 1 — VGG-11 as the seed notes build it, for one 1x224x224 image:
    // each block's output shape, and where the parameters are. (This builds
    // the full model, 128.8 million parameters, for a moment.)
    {
      models::VggOptions full;
      full.in_channels = 1;
      full.num_classes = 10;
      auto seed_vgg = models::vgg(models::vgg11_config(), full);
      std::printf("Step 1: VGG-11, conv_arch ((1,64),(1,128),(2,256),(2,512),(2,512)), on a "
                  "1x224x224 image\n%s\n",
                  summary(*seed_vgg, {1, 1, 224, 224}, 2).c_str());
    }

    // Step 2 — the model trained here: VGG-11's blocks, 4x narrower, on
    // 32x32 images, classifier on the 1x1 output.
    models::VggOptions o;
    o.in_channels = 1;
    o.num_classes = 10;
    o.batch_norm = batch_norm;
    o.width_divisor = width_divisor;
    o.pool_size = 1;
    o.hidden = hidden;
    o.linear_std = 0;  // PyTorch's Linear default: N(0, 0.01) is for 4096-wide layers
    manual_seed(c.seed);
    auto model = models::vgg(models::vgg11_config(), o);
    std::printf("Step 2: the VGG-11 trained here (width / %lld, %s batch norm, hidden %lld), on "
                "1x32x32\n%s",
                (long long)width_divisor, batch_norm ? "with" : "without", (long long)hidden,
                summary(*model, {1, 1, 32, 32}, 2).c_str());

    // Step 3 — data: Fashion-MNIST, every image padded from 28x28 to 32x32.
    lesson::TrainValTest d = lesson::load_train_val_test(c, 5000);
    {  // the library's ZeroPad2d layer, once over each whole set (its
       // output buffer goes when it does)
      ZeroPad2d pad(2);                                  // (N, 1, 28, 28) -> (N, 1, 32, 32)
      for (Dataset* s : {&d.train, &d.val, &d.test}) s->images = pad.forward(s->images);
    }
    Normalize norm = channel_stats(d.train);
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader val(d.val, 500, false, 0, false, norm);
    DataLoader test(d.test, 500, false, 0, false, norm);

    // Step 4 — train, the learning rate along a cosine to 0, per batch.
    CrossEntropyLoss criterion;
    model->to(c.device);  // --device cuda: parameters, gradients and buffers to the GPU
    SGD optimizer(model->params(), c.lr, momentum);
    const int64_t steps = int64_t(c.epochs) * train.num_batches();
    CosineAnnealingLR schedule(optimizer, steps);
    std::printf("\noptimizer: %s, lr %g (cosine to 0 over %lld steps), momentum %g, batch %lld, "
                "%d epoch(s)\n",
                optimizer.name().c_str(), c.lr, (long long)steps, momentum, (long long)c.batch,
                c.epochs);
    std::filesystem::create_directories(out_dir);
    FitOptions fo = lesson::fit_options(c);
    fo.history_csv = out_dir + "/history.csv";
    fo.after_step = [&] { schedule.step(); };
    fo.schedulers = {&schedule};
    const double t0 = now_seconds();
    std::vector<EpochStats> history = fit(*model, criterion, optimizer, train, &val, fo);
    std::printf("training took %.0f s\n", now_seconds() - t0);
    lesson::plot_run(history, out_dir, "vgg11", "VGG-11 (narrow) on Fashion-MNIST 32x32");

    EvalResult r = evaluate(*model, criterion, test);
    lesson::print_test_result(d.test, r.accuracy, r.loss);
    return 0;
  });
}
