// Lesson 12 — ResNet-18, by hand: residual blocks, and why they let a network
// be deep.
//
// What you will learn
//   * why stacking more layers stops helping: past some depth a plain network
//     trains WORSE, even on its training data
//   * the residual block, y = relu(F(x) + x), and what its "+ x" does to the
//     gradient on the way back
//   * a BasicBlock's forward and backward, written out, and proven by a
//     gradient check here in the lesson (and one that forgets the shortcut
//     gradient, caught by the same check)
//   * ResNet-18's shape, stage by stage, for the seed notes' 1x224x224 input
//   * ResNet-18 trained on Fashion-MNIST, with a cosine learning-rate schedule
//
// Step 1 — why depth alone fails. Each layer multiplies the gradient that
// flows back through it by its Jacobian; after 18 or 50 layers that product
// has shrunk (or grown) by a factor nobody controls, and the first layers,
// which see the raw image, learn slowest. Batch norm (lesson 9) tames the
// scale of the activations, but He et al. (2015) found that even with batch
// norm a plain 56-layer network had a HIGHER training error than a 20-layer
// one: not overfitting, the optimiser simply could not find the deeper
// network's good weights — although they exist (copy the 20 layers and make
// the rest the identity).
//
// Step 2 — the residual block makes "the rest is the identity" the easy
// thing to learn. It computes
//
//     y = relu( F(x) + x ),   F(x) = bn2(conv2(relu(bn1(conv1(x)))))
//
// (blocks/basic_block.h). With F's weights near zero the block passes x on.
// Backward, with g = dL/d(F(x) + x):
//
//     dL/dx = F'(x)^T g  +  g
//
// The second term is the shortcut: the gradient reaches x UNCHANGED, added to
// whatever the branch contributes, so it reaches the first layers of a deep
// network without passing through every layer's Jacobian. In code
// (src/blocks/basic_block.cpp) that is one line:
//
//     ops::add(dx_branch, dx_shortcut, dx_);   // x fed both: dL/dx is the SUM
//
// Frameworks have got exactly this wrong (a layer that overwrote the
// gradient another had written). Step 2 proves ours right with lesson 2's
// gradient check, taken along random directions (directional_check below
// says why), and shows the check catching the mistake.
//
// Where a block changes the shape (stride 2, more channels), x no longer
// fits F(x), and the shortcut becomes a 1x1 convolution with stride 2 plus
// batch norm ("downsample"). The seed notes (d2l's Residual with
// use_1x1conv) use a 1x1 convolution with a bias and no batch norm there,
// and convolutions with biases everywhere; this library builds torchvision's
// ResNet-18 (models::resnet18), whose convolutions have no bias (batch norm's
// shift makes one redundant) and whose weights load from PyTorch.
//
// Step 3 — the shapes for the seed's 1x224x224 input: a 7x7 stride-2
// convolution and a stride-2 max-pool shrink the image 4x, then four stages
// of two blocks each halve it three more times while the channels double:
// 64, 128, 256, 512 channels at 56, 28, 14 and 7 pixels; a global average
// pool and one Linear layer give the 10 scores.
//
// Step 4 — the model for 28x28 images. That stem would shrink a 28x28 image
// to 7x7 before the first block, and layer4 would work on single pixels. The
// seed notes resize every image to 224x224 instead (64x the work: hours per
// epoch on a CPU). We keep the images at 28x28 and give ResNet-18 the usual
// small-image stem (as for CIFAR-10: a 3x3 stride-1 convolution and no
// max-pool, ResNetOptions::small_input), so the four stages see 28, 14, 7
// and 4 pixels, and make every layer 4x narrower (16, 32, 64, 128 channels;
// --width-divisor) to keep the step as cheap as the 224-pixel design's at
// 28x28. Same blocks, same 18 layers, same names; `--stem torchvision
// --width-divisor 1` trains the full-width torchvision model instead. Measured
// here: one epoch on 10,000 images takes the same time either way, and ends
// at 82.6% validation accuracy with this model against 77.7% with the
// full-width torchvision one; a torchvision stem at half width runs 2.7x
// faster but reached only 90.2% test accuracy in 4 epochs.
//
// Step 5 — training: SGD with momentum 0.9, weight decay 5e-4, batch 128, and
// the learning rate following a cosine from --lr down to 0 over the whole run,
// stepped after every batch (CosineAnnealingLR, schedule.h). 5,000 images at
// the end of the training file are held out for the validation curve; the
// test set is measured once, at the end.
//
// Run it
//   make tutorials && build/tutorials/12_resnet18
//   build/tutorials/12_resnet18 --epochs 10          (a longer run)
//   build/tutorials/12_resnet18 --stem torchvision --width-divisor 1
//
// What to expect (2 cores, measured with seed 0): step 2 passes the right
// block (median errors 6.6e-4 for dx, 6.9e-5 for the parameters) and fails
// the wrong one (0.6 for dx; its parameter gradients are right); the
// default run takes about 4 minutes (about 2 minutes an epoch), validation
// accuracy 89.9% after the first epoch and 92.0% after
// the second, and ends with "test accuracy: 91.38%" (LeNet-5 of lesson 5:
// 89.8% after 8 epochs). It writes runs/12_resnet18/history.csv and its
// curves (resnet18_accuracy.png, resnet18_loss.png).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "byhand/blocks/basic_block.h"
#include "byhand/data.h"
#include "byhand/gradcheck.h"
#include "byhand/random.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/plot.h"
#include "byhand/schedule.h"
#include "byhand/summary.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;

namespace {

// The mistake of step 2: the shortcut's gradient is written over the
// branch's instead of being added to it.
class ForgetfulBlock : public BasicBlock {
 public:
  using BasicBlock::BasicBlock;
  const Tensor& backward_impl(const Tensor& dy) override {
    begin_backward(dy);
    const Tensor& g = relu2.backward(dy);
    conv1.backward(bn1.backward(relu1.backward(conv2.backward(bn2.backward(g)))));
    dx_.copy_from(downsample->backward(g));  // WRONG: the branch's dx is lost
    return dx_;
  }
};

// L = sum(y * R) for a fixed random R, as gradcheck uses (lesson 2).
double loss_of(Layer& layer, const Tensor& x, const Tensor& R) {
  const Tensor& y = layer.forward(x);
  double L = 0;
  for (int64_t i = 0; i < y.numel(); ++i) L += double(y[i]) * double(R[i]);
  return L;
}

Tensor random_like(const Shape& s, Rng& rng) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = real(rng.normal());
  return t;
}

// gradcheck (lesson 2) compares every entry of dx and of every parameter
// gradient with its finite difference, which needs double precision: this
// lesson runs in float, where L is only good to about 1e-7 of itself, and
// thousands of entries of size 1e-3 drown in that noise (the tests run
// gradcheck on every block in the double build, to 1e-6). In float we check
// the gradient along whole random directions instead: move x (or every
// parameter at once) to x + e*v and compare
//     (L(x + e v) - L(x - e v)) / 2e      with      <dL/dx, v>,
// one number per direction, summed over all the entries and so far above the
// rounding. A direction that happens to push a ReLU input across 0 (its
// kink) is off by a little; the median over 5 directions ignores it.
// Returns that median relative error.
double directional_check(Layer& layer, const Tensor& x, Rng& rng, bool along_x) {
  const double e = 1e-4;
  const Tensor R = random_like(layer.output_shape(x.shape()), rng);  // L = sum(y * R)
  for (Param* p : layer.params()) p->grad.zero();
  layer.forward(x);
  const Tensor dx = layer.backward(R);  // a copy: the forwards below overwrite the layer's
  std::vector<double> errors;
  for (int k = 0; k < 5; ++k) {
    double analytic = 0, numeric = 0;
    if (along_x) {
      const Tensor v = random_like(x.shape(), rng);
      for (int64_t i = 0; i < x.numel(); ++i) analytic += double(dx[i]) * double(v[i]);
      Tensor xs = x;
      for (int64_t i = 0; i < x.numel(); ++i) xs[i] = x[i] + real(e) * v[i];
      const double plus = loss_of(layer, xs, R);
      for (int64_t i = 0; i < x.numel(); ++i) xs[i] = x[i] - real(e) * v[i];
      numeric = (plus - loss_of(layer, xs, R)) / (2 * e);
    } else {  // every parameter along its own random direction, at once
      std::vector<Tensor> v, saved;
      for (Param* p : layer.params()) {
        v.push_back(random_like(p->value.shape(), rng));
        saved.push_back(p->value);
        for (int64_t i = 0; i < p->value.numel(); ++i)
          analytic += double(p->grad[i]) * double(v.back()[i]);
      }
      auto moved = [&](double step) {
        size_t j = 0;
        for (Param* p : layer.params()) {
          for (int64_t i = 0; i < p->value.numel(); ++i)
            p->value[i] = saved[j][i] + real(step) * v[j][i];
          ++j;
        }
        return loss_of(layer, x, R);
      };
      numeric = (moved(e) - moved(-e)) / (2 * e);
      size_t j = 0;
      for (Param* p : layer.params()) p->value = saved[j++];
    }
    errors.push_back(std::fabs(analytic - numeric) /
                     std::max({std::fabs(analytic), std::fabs(numeric), 1e-3}));
  }
  std::sort(errors.begin(), errors.end());
  return errors[errors.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("12_resnet18",
                    "Lesson 12: residual blocks by hand, gradient-checked, and ResNet-18\n"
                    "trained on Fashion-MNIST (SGD momentum, cosine learning rate).");
    cli.common.epochs = 2;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    std::string stem = "small", out_dir = "runs/12_resnet18";
    int64_t width_divisor = 4;
    double momentum = 0.9, weight_decay = 5e-4;
    cli.option("--stem", stem,
               "small (3x3 stride 1, no max-pool: for 28x28 images) or torchvision (7x7 "
               "stride 2 and a max-pool)");
    cli.option("--width-divisor", width_divisor, "channels 64, 128, 256, 512 divided by this");
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--weight-decay", weight_decay, "L2 weight decay");
    cli.option("--out", out_dir, "folder for the history CSV and the PNG curves");
    cli.checkpoint_flags();
    cli.device_flag();
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (stem != "small" && stem != "torchvision")
      throw std::invalid_argument("--stem must be small or torchvision, got '" + stem + "'");

    // ---- Step 2: one BasicBlock, checked. A block with a projection
    // shortcut (stride 2, 4 -> 8 channels), so both paths carry weights.
    std::printf("Step 2: gradient check of a BasicBlock (4 -> 8 channels, stride 2), along 5 "
                "random directions\n"
                "  (median relative error of the directional derivatives; below 1e-2 passes)\n");
    {
      Rng rng(c.seed + 1);
      const Tensor x = kink_free_uniform({3, 4, 4, 4}, rng);
      BasicBlock block(4, 8, 2);
      ForgetfulBlock forgetful(4, 8, 2);
      bool ok = true;
      for (auto [what, layer] : {std::pair<const char*, Layer*>{"BasicBlock", &block},
                                 {"a block that overwrites the branch's dx", &forgetful}}) {
        const double ex = directional_check(*layer, x, rng, true);
        const double ep = directional_check(*layer, x, rng, false);
        std::printf("  %-40s dx: %.1e   parameters: %.1e   %s\n", what, ex, ep,
                    ex < 1e-2 && ep < 1e-2 ? "passed" : "FAILED");
        if (layer == &block) ok = ex < 1e-2 && ep < 1e-2;
      }
      if (!ok) throw std::runtime_error("the BasicBlock gradient check failed");
    }

    // ---- Step 3: the seed's stage-by-stage shapes, for one 1x224x224 image.
    {
      auto full = models::resnet18(10, 1);
      std::printf("\nStep 3: ResNet-18 (torchvision's) on a 1x224x224 image, stage by stage\n%s",
                  summary(*full, {1, 1, 224, 224}, 1).c_str());
    }

    // ---- Step 4: the model for 28x28 images.
    models::ResNetOptions ro;
    ro.small_input = stem == "small";
    ro.width_divisor = width_divisor;
    manual_seed(c.seed);
    auto model = models::resnet18(10, 1, ro);
    std::printf("\nStep 4: the ResNet-18 trained here (%s stem, width / %lld), stages and blocks\n%s",
                stem.c_str(), (long long)width_divisor,
                summary(*model, {1, 1, 28, 28}, 2).c_str());

    // ---- Step 5: train.
    lesson::TrainValTest d = lesson::load_train_val_test(c, 5000);
    Normalize norm = channel_stats(d.train);
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader val(d.val, 500, false, 0, false, norm);
    DataLoader test(d.test, 500, false, 0, false, norm);

    CrossEntropyLoss criterion;
    model->to(c.device);  // --device cuda: parameters, gradients and buffers to the GPU
    SGD optimizer(model->params(), c.lr, momentum, 0, weight_decay);
    const int64_t steps = int64_t(c.epochs) * train.num_batches();
    CosineAnnealingLR schedule(optimizer, steps);  // per batch: lr from --lr to 0
    std::printf("\noptimizer: %s, lr %g (cosine to 0 over %lld steps), momentum %g, weight "
                "decay %g, batch %lld, %d epoch(s)\n",
                optimizer.name().c_str(), c.lr, (long long)steps, momentum, weight_decay,
                (long long)c.batch, c.epochs);

    std::filesystem::create_directories(out_dir);
    FitOptions fo = lesson::fit_options(c);
    fo.history_csv = out_dir + "/history.csv";
    fo.after_step = [&] { schedule.step(); };
    fo.schedulers = {&schedule};
    const double t0 = now_seconds();
    std::vector<EpochStats> history = fit(*model, criterion, optimizer, train, &val, fo);
    const double train_seconds = now_seconds() - t0;
    lesson::plot_run(history, out_dir, "resnet18", "ResNet-18 on Fashion-MNIST");
    std::printf("training took %.0f s (%.0f images/s with evaluation)\n", train_seconds,
                double(c.epochs) * double(d.train.size()) / train_seconds);

    EvalResult r = evaluate(*model, criterion, test);
    lesson::print_test_result(d.test, r.accuracy, r.loss);
    return 0;
  });
}
