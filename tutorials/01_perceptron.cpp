// Lesson 1 — One neuron: a perceptron that learns, by hand.
//
// What you will learn
//   * what a single artificial neuron computes:  z = w·x + b,  p = sigmoid(z)
//   * binary cross-entropy, the loss of a yes/no question, and why its
//     gradient with respect to z is simply  p - t
//   * gradient descent as three plain loops: forward, backward, update
//   * how to read the learned weights of a linear model as a picture
//
// No library layer is used for the model: the neuron is a vector of weights
// and a bias, and every line of its forward and backward pass is below. The
// library only loads the images and serves them in shuffled mini-batches.
//
// The task. Fashion-MNIST has ten kinds of clothing; one neuron answers one
// yes/no question, so we keep two classes (Dataset::filter_classes). The
// default pair is Sneaker (7) vs Ankle boot (9): the neuron has real cues to
// find (a boot has a shaft rising above the ankle, a sneaker is low and long)
// and the learned weights show them as a picture, yet it cannot be perfect
// (~95%), because high-top sneakers and low boots do exist and one weighted
// sum of pixels draws a single flat boundary. Other pairs, measured with the
// same settings:
//   --classes 0,1   T-shirt vs Trouser     ~98%   (too easy to teach much)
//   --classes 2,4   Pullover vs Coat       ~85%   (same shape, small details)
//   --classes 0,6   T-shirt vs Shirt       ~84%   (among the hardest pairs)
//
// With --images DIR the same neuron runs on a folder of photos instead,
// DIR/train/<class>/*.png and DIR/test/<class>/*.png: logistic regression on
// real photos. On ../shared/data/catvnoncat (209 training and 50 test 64x64
// RGB photos, 64*64*3 = 12288 inputs) this is the classic "cat vs non-cat"
// exercise.
//
// Run it
//   make tutorials && build/tutorials/01_perceptron
//   build/tutorials/01_perceptron --classes 2,4               (Pullover vs Coat)
//   build/tutorials/01_perceptron --images ../shared/data/catvnoncat
//
// What to expect (times on a quiet 2-core machine)
//   default: Sneaker vs Ankle boot, 10 epochs of mini-batches, 0.5 s:
//       epoch    1  loss 0.2218
//       ...
//       epoch   10  loss 0.1241
//       (the weights as a 28x28 picture)
//       train accuracy: 95.53%
//       chance: 50.00% (always answering "Sneaker")
//       test accuracy: 95.25%
//   --images ../shared/data/catvnoncat: 2000 full-batch steps, 2 s:
//       epoch    1  loss 0.6931
//       ...
//       epoch 2000  loss 0.1357
//       train accuracy: 99.04%
//       chance: 66.00% (always answering "cat")
//       test accuracy: 70.00%
//   The photos show overfitting: 12288 weights and only 209 examples, so the
//   neuron all but memorises the training set (99%) and gets 70% of the new
//   photos right, 4 points above always answering "cat" (these are the same
//   numbers the course reports for this exercise). With --quick (200 steps)
//   it ends at 83% train, 80% test; but each of the 50 test photos is worth
//   2 points, so read little into a difference of a few points there.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/tensor.h"
#include "lesson.h"

using namespace byhand;

// ---------------------------------------------------------------------------
// Step 1 — the neuron.
//
// One neuron looks at all D input numbers x[0..D-1] (the pixels), weighs each
// with its own weight, adds a bias, and squashes the sum into (0, 1):
//
//     z = b + sum_d w[d] * x[d]          the "logit": any real number
//     p = sigmoid(z) = 1 / (1 + e^-z)    read as P(class 1 | x)
//
// It answers "class 1" when p > 0.5, i.e. when z > 0: the decision boundary
// w·x + b = 0 is a flat hyperplane in pixel space. That is all one neuron can
// draw, and it is why some pairs of classes stay hard for it.
struct Neuron {
  std::vector<real> w;   // (D) one weight per input
  real b = 0;            // ()  the bias
  std::vector<real> dw;  // (D) dL/dw, filled by backward
  real db = 0;           // ()  dL/db
};

// Every weight starts at 0. A single neuron may start there: the loss of
// logistic regression is convex (one valley, no bad local minima), and there
// is no symmetry to break because there is only one unit. (A network with a
// hidden layer must NOT start at zero: its hidden units would all compute the
// same thing, get the same gradient, and stay copies of each other forever.)
static Neuron make_neuron(int64_t D) {
  Neuron m;
  m.w.assign(size_t(D), 0);
  m.dw.assign(size_t(D), 0);
  return m;
}

static double sigmoid(double z) {
  // e^-z overflows for very negative z; write it the other way round there.
  if (z >= 0) return 1 / (1 + std::exp(-z));
  double e = std::exp(z);
  return e / (1 + e);
}

// z[n] = b + sum_d w[d] * x[n, d] for a batch of N inputs.
//   x : (N, D) row n is one flattened image    z : (N)
static void neuron_forward(const Neuron& m, const real* x, int64_t N, int64_t D, real* z) {
  for (int64_t n = 0; n < N; ++n) {
    const real* xn = x + n * D;  // (D)
    const real* w = m.w.data();  // (D)
    real s = 0;
    // (The pragma only lets the compiler add the products in several lanes
    // at once; the loop means what it says.)
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < D; ++d) s += w[d] * xn[d];
    z[n] = m.b + s;
  }
}

// ---------------------------------------------------------------------------
// Step 2 — the loss: binary cross-entropy.
//
// The target t is 1 for class 1 and 0 for class 0. A good loss punishes a
// confident wrong answer hard; the negative log-probability of the right
// answer does exactly that:
//
//     L = -[ t log p + (1 - t) log(1 - p) ]
//
// (p -> 0 while t = 1 costs -log p -> infinity.) Written with z instead of p,
// using log p = -log(1 + e^-z) and log(1 - p) = -z - log(1 + e^-z):
//
//     L = log(1 + e^z) - t z              ("softplus(z) - t z")
//
// which never takes the log of 0 and never overflows if written carefully.
// Over a batch we average: L = (1/N) sum_n L_n.
static double softplus(double z) {  // log(1 + e^z), stable for any z
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

static double bce_loss(const real* z, const int* t, int64_t N) {
  double sum = 0;
  for (int64_t n = 0; n < N; ++n) sum += softplus(z[n]) - t[n] * double(z[n]);
  return sum / double(N);
}

// ---------------------------------------------------------------------------
// Step 3 — the gradient, derived by hand.
//
// One example first. The chain rule through p = sigmoid(z):
//
//     dL/dp = -t/p + (1 - t)/(1 - p) = (p - t) / (p (1 - p))
//     dp/dz = p (1 - p)                     (the sigmoid's own derivative)
//     dL/dz = dL/dp * dp/dz = p - t         (the p(1 - p) cancels!)
//
// (Or from the softplus form: d/dz [log(1 + e^z) - t z] = sigmoid(z) - t.)
// So the error signal is simply "what the neuron said minus the truth".
// Then, since z = b + sum_d w[d] x[d]:
//
//     dL/dw[d] = dL/dz * dz/dw[d] = (p - t) x[d]
//     dL/db    = dL/dz * 1        = (p - t)
//
// For the batch mean, each example contributes 1/N of its gradient:
//
//     dz[n]   = (p[n] - t[n]) / N
//     dw[d]   = sum_n dz[n] x[n, d]
//     db      = sum_n dz[n]
//
// A pixel that is bright (x[d] large) in an example the neuron got wrong gets
// its weight moved the most; a black pixel (x[d] = 0) is not touched at all.
static void neuron_backward(Neuron& m, const real* x, const real* z, const int* t, int64_t N,
                            int64_t D) {
  std::fill(m.dw.begin(), m.dw.end(), real(0));
  m.db = 0;
  for (int64_t n = 0; n < N; ++n) {
    const real* xn = x + n * D;                                   // (D)
    const real dz = real((sigmoid(z[n]) - t[n]) / double(N));     // dL/dz[n]
    real* dw = m.dw.data();                                       // (D)
    for (int64_t d = 0; d < D; ++d) dw[d] += dz * xn[d];
    m.db += dz;
  }
}

// ---------------------------------------------------------------------------
// Step 4 — the update: one step downhill.
//
//     w[d] <- w[d] - lr * dw[d]        b <- b - lr * db
//
// The gradient points to where the loss grows fastest; a small step against
// it lowers the loss. lr (the learning rate) is the step size: too small and
// training crawls, too large and the steps overshoot the valley and diverge.
static void sgd_step(Neuron& m, double lr) {
  const real step = real(lr);
  for (size_t d = 0; d < m.w.size(); ++d) m.w[d] -= step * m.dw[d];
  m.b -= step * m.db;
}

// ---------------------------------------------------------------------------
// Step 5 — measuring: the fraction answered correctly (class 1 when z > 0).
static double accuracy(const Neuron& m, const Dataset& data) {
  const int64_t N = data.size(), D = data.example_numel();
  std::vector<real> z(static_cast<size_t>(N));  // (N)
  neuron_forward(m, data.images.data(), N, D, z.data());
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) correct += (z[size_t(n)] > 0) == (data.labels[size_t(n)] == 1);
  return double(correct) / double(N);
}


// What the neuron learned. Each weight belongs to one pixel, so the weights
// form an image: '#' and '+' mark pixels whose brightness votes for class 1,
// '=' and '-' those that vote for class 0, '.' the ones it ignores.
static void print_weight_picture(const Neuron& m, const Dataset& data) {
  const int64_t H = data.height(), W = data.width();
  real biggest = 0;
  for (real v : m.w) biggest = std::max(biggest, std::fabs(v));
  if (biggest == 0) return;
  std::printf("weights as a picture ('#','+': \"%s\"; '=','-': \"%s\"):\n", data.classes[1].c_str(),
              data.classes[0].c_str());
  for (int64_t i = 0; i < H; ++i) {
    std::string row = "  ";
    for (int64_t j = 0; j < W; ++j) {
      real v = m.w[size_t(i * W + j)] / biggest;  // in [-1, 1]
      char c = v > 0.4f ? '#' : v > 0.1f ? '+' : v < -0.4f ? '=' : v < -0.1f ? '-' : '.';
      row += c;
      row += c;  // two characters per pixel: terminal cells are tall
    }
    std::printf("%s\n", row.c_str());
  }
}

// ---------------------------------------------------------------------------
// Step 6 — the data.

// "7,9" -> {7, 9}
static std::vector<int> parse_pair(const std::string& text) {
  std::vector<int> pair;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = -1;
    try { v = std::stoi(item, &used); } catch (...) { used = 0; }
    if (used != item.size() || v < 0 || v > 9)
      throw std::invalid_argument("--classes expects two labels 0..9, e.g. 7,9; got '" + text + "'");
    pair.push_back(v);
  }
  if (pair.size() != 2 || pair[0] == pair[1])
    throw std::invalid_argument("--classes expects two different labels, e.g. 7,9; got '" + text + "'");
  return pair;
}

// An image folder with train/ and test/ inside, each with one subfolder per
// class; exactly two classes for one neuron.
static lesson::TrainTest load_folder(const lesson::Common& c, const std::string& dir) {
  for (const char* part : {"/train", "/test"})
    if (!std::filesystem::is_directory(dir + part))
      throw std::runtime_error("--images " + dir + ": no folder " + dir + part +
                               " (expected DIR/train/<class>/*.png and DIR/test/<class>/*.png)");
  lesson::TrainTest d;
  d.train = load_image_folder(dir + "/train");
  d.test = load_image_folder(dir + "/test");
  if (d.train.num_classes != 2 || d.test.num_classes != 2)
    throw std::runtime_error(dir + ": one neuron answers a yes/no question; expected two class folders in train/ and test/, found " +
                             std::to_string(d.train.num_classes) + " and " + std::to_string(d.test.num_classes));
  if (d.train.classes != d.test.classes)
    throw std::runtime_error(dir + ": train/ and test/ have different class folders");
  if (c.subset > 0 && c.subset < d.train.size()) d.train = d.train.subset(c.subset);
  std::printf("data: %lld training and %lld test images (%lld, %lld, %lld) from %s\n",
              (long long)d.train.size(), (long long)d.test.size(), (long long)d.train.channels(),
              (long long)d.train.height(), (long long)d.train.width(), dir.c_str());
  return d;
}

// ---------------------------------------------------------------------------
// Step 7 — training: gradient descent, on mini-batches or on everything.
//
// Each step needs a gradient, and the exact gradient is an average over the
// whole training set. For Fashion-MNIST (12,000 images of the two classes) we
// estimate it from a shuffled mini-batch of --batch images instead: the
// estimate is noisy but ~100 times cheaper, so one pass over the data makes
// ~90 steps where full-batch descent would make one. For the 209 photos of
// --images the whole set is one cheap batch, so every step uses all of it
// (full-batch gradient descent, as in the course the cat photos come from):
// each step follows the exact gradient and the loss falls smoothly.

// One step on a batch of B examples; returns the batch's mean loss.
//   x : (B, D)   t : (B) targets 0/1   z : (B) scratch for the logits
static double train_step(Neuron& m, const real* x, const int* t, int64_t B, int64_t D, double lr,
                         real* z) {
  neuron_forward(m, x, B, D, z);           // 1. forward
  double loss = bce_loss(z, t, B);         // 2. loss
  neuron_backward(m, x, z, t, B, D);       // 3. backward
  sgd_step(m, lr);                         // 4. update
  return loss;
}

static void train(Neuron& m, const Dataset& data, const lesson::Common& c) {
  const int64_t N = data.size(), D = data.example_numel();
  const bool full_batch = c.batch >= N;
  DataLoader loader(data, c.batch, /*shuffle=*/true, c.seed);
  std::vector<real> z(size_t(std::min(c.batch, N)));  // (B) logits of one batch
  const int print_every = std::max(1, c.epochs / 10);
  Batch batch;  // batch.x : (B, C, H, W), i.e. (B, D) in memory;  batch.y : (B)
  for (int epoch = 1; epoch <= c.epochs; ++epoch) {
    double loss_sum = 0;  // sum over the epoch's examples
    if (full_batch) {     // the whole set, as it lies in memory: nothing to shuffle or copy
      loss_sum = N * train_step(m, data.images.data(), data.labels.data(), N, D, c.lr, z.data());
    } else {
      loader.start_epoch();
      while (loader.next(batch))
        loss_sum += batch.size() * train_step(m, batch.x.data(), batch.y.data(), batch.size(), D,
                                              c.lr, z.data());
    }
    if (epoch == 1 || epoch % print_every == 0 || epoch == c.epochs)
      std::printf("epoch %4d  loss %.4f\n", epoch, loss_sum / double(N));
  }
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("01_perceptron",
                    "Lesson 1: one neuron, p = sigmoid(w.x + b), trained by hand with binary\n"
                    "cross-entropy and gradient descent on two Fashion-MNIST classes (default\n"
                    "Sneaker vs Ankle boot), or with --images DIR on a two-class photo folder such as\n"
                    "../shared/data/catvnoncat (logistic regression on real photos).");
    cli.common.epochs = 10;
    cli.common.lr = 0.1;
    cli.common.batch = 128;
    std::string classes = "7,9", images;
    cli.option("--classes", classes, "the two Fashion-MNIST labels to tell apart (0..9)");
    cli.option("--images", images, "DIR with train/<class>/ and test/<class>/ image folders (two classes)");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;

    lesson::TrainTest d;
    if (images.empty()) {
      d = lesson::load_classes(c, parse_pair(classes));  // relabelled 0 and 1
    } else {
      // The photos: full-batch descent with the course's step size, 2000 steps
      // (200 with --quick), unless the flags say otherwise. With the whole set
      // in one batch, an epoch is a single step, so --quick's "one epoch"
      // would be one step: it gets 200 here, still well under a second.
      if (!cli.given("--lr")) c.lr = 0.005;
      if (!cli.given("--epochs")) c.epochs = c.quick ? 200 : 2000;
      d = load_folder(c, images);
      if (!cli.given("--batch")) c.batch = d.train.size();
    }
    std::printf("task: \"%s\" (t = 0) vs \"%s\" (t = 1): %lld training, %lld test images\n",
                d.train.classes[0].c_str(), d.train.classes[1].c_str(), (long long)d.train.size(),
                (long long)d.test.size());

    Neuron m = make_neuron(d.train.example_numel());
    std::printf("model: one neuron, %lld weights + 1 bias; lr %g, batch %lld, %d epoch(s)\n",
                (long long)m.w.size(), c.lr, (long long)c.batch, c.epochs);
    train(m, d.train, c);

    if (d.train.channels() == 1 && d.train.height() <= 32) print_weight_picture(m, d.train);
    std::printf("train accuracy: %.2f%%\n", 100 * accuracy(m, d.train));
    lesson::print_test_result(d.test, accuracy(m, d.test));
    return 0;
  });
}
