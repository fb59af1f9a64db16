// Lesson 2 — Backpropagation by hand: a (3, 4, 1) network.
//
// What you will learn
//   * the chain rule, run backwards one layer at a time: each layer turns
//     dL/d(its output) into dL/d(its input) and dL/d(its weights)
//   * the three formulas of a fully connected layer y = x W^T + b:
//         dW = dy^T x        db = sum over the batch of dy        dx = dy W
//   * how to check a gradient numerically (central differences), first with
//     ten lines of our own, then with the library's gradcheck
//   * that the library's Linear, Sigmoid and Sequential compute exactly these
//     numbers, so from lesson 3 on we can use them and trust them
//
// The network is the small perceptron of the study notes: 3 inputs, a hidden
// layer of 4 sigmoid units, 1 output, run on a batch of 5 examples:
//
//     x (5, 3) -> Linear(3, 4) -> h (5, 4) -> sigmoid -> a (5, 4)
//              -> Linear(4, 1) -> y (5, 1) -> L = mean((y - t)^2)
//
// Steps 1-4 write it out, forward and backward, with plain loops in double
// precision; steps 5-6 check every gradient numerically; step 7 builds the
// same network from the library with the same weights and compares; step 8
// trains it on a small real task (three numbers measured on each Fashion-MNIST
// image) so that you see the loss fall.
//
// Run it
//   make tutorials && build/tutorials/02_backprop_by_hand
//   build/tutorials/02_backprop_by_hand --seed 7          (other weights and inputs)
//
// What to expect (measured on a busy 2-core machine, under a second in all)
//   step 5   our own check: worst relative error 1e-8 or smaller everywhere
//   step 6   gradcheck_scalar (float): worst relative error ~3e-5, passed
//   step 7   library vs hand-written: outputs and gradients agree to ~1e-7
//            (float against double); gradcheck on the library model passes
//   step 8   the loss falls from 1.18 before training to 0.076 after one
//            epoch and levels off near 0.06; the run ends with
//       epoch 10  loss 0.0595
//       train accuracy: 92.22%
//       chance: 50.00% (always answering "Sneaker")
//       test accuracy: 92.55%
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/gradcheck.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/optim.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "lesson.h"

using namespace byhand;

// The hand-written half of this lesson computes in double, so that our own
// finite-difference check (step 5) can take a tiny step and demand agreement
// to ~1e-8. The library computes in float (real); step 7 compares the two.
using Vec = std::vector<double>;

// ---------------------------------------------------------------------------
// Step 1 — a fully connected layer, forward and backward.
//
// Forward, for a batch of N row vectors (PyTorch's nn.Linear):
//
//     y[n, o] = b[o] + sum_i x[n, i] * W[o, i]          i.e.  y = x W^T + b
//
// Backward. We are handed dy[n, o] = dL/dy[n, o] (how the loss changes with
// each output) and want the loss's slope with respect to everything the
// layer used. Each y[n, o] depends on W[o, i] through one term, x[n, i] W[o, i],
// so by the chain rule, summing over every output that W[o, i] touches:
//
//     dL/dW[o, i] = sum_n dL/dy[n, o] * dy[n, o]/dW[o, i] = sum_n dy[n, o] x[n, i]
//                                                           i.e.  dW = dy^T x
//     dL/db[o]    = sum_n dy[n, o] * 1                      i.e.  db = sum_n dy
//     dL/dx[n, i] = sum_o dy[n, o] * W[o, i]                i.e.  dx = dy W
//
// dx is the new "dy" of the layer before: that hand-over is backpropagation.
// (The library's rule, layer.h: dx is overwritten, dW and db ACCUMULATE (+=),
// so that gradients from several batches or uses add up; zero them before a
// new backward.)
struct HandLinear {
  int64_t in = 0, out = 0;
  Vec W, b;    // (out, in), (out)       the parameters, laid out as PyTorch's
  Vec dW, db;  // (out, in), (out)       their gradients
  Vec x;       // (N, in)                the input, kept for dW = dy^T x
  int64_t N = 0;
};

// W and b uniform in +-1/sqrt(in), the default of nn.Linear (and of byhand).
static HandLinear make_linear(int64_t in, int64_t out, Rng& rng) {
  HandLinear l;
  l.in = in;
  l.out = out;
  const double bound = 1 / std::sqrt(double(in));
  for (int64_t k = 0; k < out * in; ++k) l.W.push_back(rng.uniform(-bound, bound));
  for (int64_t o = 0; o < out; ++o) l.b.push_back(rng.uniform(-bound, bound));
  l.dW.assign(l.W.size(), 0);
  l.db.assign(l.b.size(), 0);
  return l;
}

// x : (N, in)  ->  y : (N, out)
static Vec linear_forward(HandLinear& l, const Vec& x, int64_t N) {
  l.x = x;
  l.N = N;
  Vec y(size_t(N * l.out));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < l.out; ++o) {
      double s = l.b[size_t(o)];
      for (int64_t i = 0; i < l.in; ++i) s += x[size_t(n * l.in + i)] * l.W[size_t(o * l.in + i)];
      y[size_t(n * l.out + o)] = s;
    }
  return y;
}

// dy : (N, out)  ->  dx : (N, in);  dW += dy^T x,  db += sum_n dy
static Vec linear_backward(HandLinear& l, const Vec& dy) {
  const int64_t N = l.N;
  for (int64_t o = 0; o < l.out; ++o)
    for (int64_t i = 0; i < l.in; ++i) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += dy[size_t(n * l.out + o)] * l.x[size_t(n * l.in + i)];
      l.dW[size_t(o * l.in + i)] += s;
    }
  for (int64_t o = 0; o < l.out; ++o)
    for (int64_t n = 0; n < N; ++n) l.db[size_t(o)] += dy[size_t(n * l.out + o)];
  Vec dx(size_t(N * l.in));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < l.in; ++i) {
      double s = 0;
      for (int64_t o = 0; o < l.out; ++o) s += dy[size_t(n * l.out + o)] * l.W[size_t(o * l.in + i)];
      dx[size_t(n * l.in + i)] = s;
    }
  return dx;
}

// ---------------------------------------------------------------------------
// Step 2 — the sigmoid, element by element.
//
//     a = sigmoid(h) = 1 / (1 + e^-h)
//     da/dh = e^-h / (1 + e^-h)^2 = a (1 - a)
//
// so dL/dh = dL/da * a (1 - a). Backward needs only a, the forward's output.
static Vec sigmoid_forward(const Vec& h) {  // h : any shape -> a : same shape
  Vec a(h.size());
  for (size_t k = 0; k < h.size(); ++k) a[k] = 1 / (1 + std::exp(-h[k]));
  return a;
}

static Vec sigmoid_backward(const Vec& a, const Vec& da) {  // -> dh, same shape
  Vec dh(a.size());
  for (size_t k = 0; k < a.size(); ++k) dh[k] = da[k] * a[k] * (1 - a[k]);
  return dh;
}

// ---------------------------------------------------------------------------
// Step 3 — the loss: mean squared error to a target t.
//
//     L = (1/M) sum_k (y[k] - t[k])^2        (M = number of outputs, here N*1)
//     dL/dy[k] = 2 (y[k] - t[k]) / M
//
// This is where backpropagation starts: the loss hands dL/dy to the last layer.
static double mse_forward(const Vec& y, const Vec& t) {
  double s = 0;
  for (size_t k = 0; k < y.size(); ++k) s += (y[k] - t[k]) * (y[k] - t[k]);
  return s / double(y.size());
}

static Vec mse_backward(const Vec& y, const Vec& t) {  // -> dL/dy, shape of y
  Vec dy(y.size());
  for (size_t k = 0; k < y.size(); ++k) dy[k] = 2 * (y[k] - t[k]) / double(y.size());
  return dy;
}

// ---------------------------------------------------------------------------
// Step 4 — the whole network: forward, then the chain rule backwards.
//
//     h = fc1(x)      a = sigmoid(h)      y = fc2(a)      L = mse(y, t)
//
//     dy = dL/dy                         from the loss          (N, 1)
//     da = dy W2        dW2 += dy^T a    from fc2's backward     (N, 4)
//     dh = da * a (1 - a)                from the sigmoid's      (N, 4)
//     dx = dh W1        dW1 += dh^T x    from fc1's backward     (N, 3)
//
// Each line uses only the line above and what its own forward kept.
struct HandNet {
  HandLinear fc1, fc2;  // (3 -> 4), (4 -> 1)
  Vec a;                // (N, 4) the sigmoid's output, kept for its backward
};

// x : (N, 3)  ->  y : (N, 1)
static Vec net_forward(HandNet& net, const Vec& x, int64_t N) {
  Vec h = linear_forward(net.fc1, x, N);  // (N, 4)
  net.a = sigmoid_forward(h);             // (N, 4)
  return linear_forward(net.fc2, net.a, N);  // (N, 1)
}

// dy : (N, 1)  ->  dx : (N, 3); accumulates dW and db of both layers.
static Vec net_backward(HandNet& net, const Vec& dy) {
  Vec da = linear_backward(net.fc2, dy);    // (N, 4)
  Vec dh = sigmoid_backward(net.a, da);     // (N, 4)
  return linear_backward(net.fc1, dh);      // (N, 3)
}

static void net_zero_grad(HandNet& net) {
  for (HandLinear* l : {&net.fc1, &net.fc2}) {
    std::fill(l->dW.begin(), l->dW.end(), 0.0);
    std::fill(l->db.begin(), l->db.end(), 0.0);
  }
}

// One batch: the inputs and their targets.
struct Example {
  Vec x, t;       // (N, 3), (N, 1)
  int64_t N = 0;
};

// L(x, params) for the current values; nothing else.
static double net_loss(HandNet& net, const Example& ex) {
  return mse_forward(net_forward(net, ex.x, ex.N), ex.t);
}

// One forward and backward from zeroed gradients; returns dL/dx (N, 3).
static Vec net_gradients(HandNet& net, const Example& ex) {
  net_zero_grad(net);
  Vec y = net_forward(net, ex.x, ex.N);
  return net_backward(net, mse_backward(y, ex.t));
}

// ---------------------------------------------------------------------------
// Step 5 — check the gradients numerically, with our own ten lines.
//
// A derivative is a slope: nudge one number v by a tiny eps both ways and
//
//     dL/dv ~ (L(v + eps) - L(v - eps)) / (2 eps)      (error ~ eps^2)
//
// That needs two forwards per number, hopelessly slow for a real network
// (millions of numbers) but perfect for checking backward on a small one.
// We compare with the relative error |analytic - numeric| / max(|a|, |n|),
// which is ~1e-10 in double when backward is right and ~1 when it is wrong.

// Worst relative error over every entry of `v` (a parameter or the input).
static double worst_numeric_error(HandNet& net, const Example& ex, Vec& v, const Vec& analytic) {
  const double eps = 1e-6;
  double worst = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    const double saved = v[k];
    v[k] = saved + eps;
    const double plus = net_loss(net, ex);
    v[k] = saved - eps;
    const double minus = net_loss(net, ex);
    v[k] = saved;
    const double numeric = (plus - minus) / (2 * eps);
    const double denom = std::max({std::fabs(analytic[k]), std::fabs(numeric), 1e-12});
    worst = std::max(worst, std::fabs(analytic[k] - numeric) / denom);
  }
  return worst;
}

// One of the five tensors we take gradients with respect to (the four
// parameters and the input x), for the checks of steps 5 and 6.
struct Checked {
  const char* name;
  Vec* value;           // the numbers nudged
  const Vec* gradient;  // their analytic gradient
  Shape shape;
};

// ---------------------------------------------------------------------------
// Step 6 — the same check with the library's tool.
//
// byhand::gradcheck_scalar(value, grad, v) does what step 5 did for any scalar
// function of one tensor, with the care a test suite needs (it reports where
// the worst entry is, flags NaNs). It works on float Tensors, so it uses a
// larger step (eps = 1e-2) and accepts errors up to 3e-2: float keeps only ~7
// digits, and a tiny step would measure rounding noise instead of a slope.
// (Its report calls the checked tensor "x" whatever it is: "x[3, 2]" below
// is entry (3, 2) of the tensor named on that line.)
static Tensor to_tensor(const Vec& v, const Shape& shape) {
  Tensor t(shape);
  for (size_t k = 0; k < v.size(); ++k) t[int64_t(k)] = real(v[k]);
  return t;
}

static void from_tensor(const Tensor& t, Vec& v) {
  for (size_t k = 0; k < v.size(); ++k) v[k] = double(t[int64_t(k)]);
}

// ---------------------------------------------------------------------------
// Step 8's data: three numbers per Fashion-MNIST image.
//
// The network has 3 inputs, so we summarise each 28x28 image by 3 features:
// its mean brightness in the top, middle and bottom third of the rows. For
// Sneaker (t = 0) vs Ankle boot (t = 1) that is a real cue (a boot's shaft
// fills the top third; a sneaker sits low), but a rough one: lesson 1's single
// neuron, which saw all 784 pixels, did better than this network does with 3
// summary numbers (95% against 92%). The point here is the loss going down.
// The features are standardised (mean 0, variance 1, with the training set's
// statistics) so that the sigmoids start in their steep middle part.
struct Features {
  Tensor x;             // (N, 3)
  Tensor t;             // (N, 1) targets 0/1
  std::vector<int> y;   // (N)    labels
  int64_t size() const { return x.dim(0); }
};

static Features thirds_features(const Dataset& d) {
  const int64_t N = d.size(), H = d.height(), W = d.width();
  Features f;
  f.x = Tensor(Shape{N, 3});
  f.t = Tensor(Shape{N, 1});
  f.y = d.labels;
  for (int64_t n = 0; n < N; ++n) {
    const real* img = d.images.data() + n * d.example_numel();  // (1, H, W)
    double sum[3] = {0, 0, 0}, count[3] = {0, 0, 0};  // per band of rows
    for (int64_t i = 0; i < H; ++i) {
      const int64_t band = 3 * i / H;  // 0: top, 1: middle, 2: bottom third
      for (int64_t j = 0; j < W; ++j) sum[band] += img[i * W + j];
      count[band] += double(W);
    }
    for (int k = 0; k < 3; ++k) f.x[n * 3 + k] = real(sum[k] / count[k]);
    f.t[n] = real(d.labels[size_t(n)]);
  }
  return f;
}

// x[:, k] = (x[:, k] - mean[k]) / std[k], with mean and std from `train`.
static void standardise(Features& train, Features& test) {
  for (int k = 0; k < 3; ++k) {
    double mean = 0, var = 0;
    const int64_t N = train.size();
    for (int64_t n = 0; n < N; ++n) mean += train.x[n * 3 + k];
    mean /= double(N);
    for (int64_t n = 0; n < N; ++n) var += (train.x[n * 3 + k] - mean) * (train.x[n * 3 + k] - mean);
    const double std = std::sqrt(var / double(N)) + 1e-8;
    for (Features* f : {&train, &test})
      for (int64_t n = 0; n < f->size(); ++n) f->x[n * 3 + k] = real((f->x[n * 3 + k] - mean) / std);
  }
}

// Rows `idx` of x and t: a mini-batch.  xb : (B, 3)   tb : (B, 1)
static void gather(const Features& f, const std::vector<int64_t>& idx, Tensor& xb, Tensor& tb) {
  const int64_t B = int64_t(idx.size());
  xb.resize(Shape{B, 3});
  tb.resize(Shape{B, 1});
  for (int64_t r = 0; r < B; ++r) {
    for (int k = 0; k < 3; ++k) xb[r * 3 + k] = f.x[idx[size_t(r)] * 3 + k];
    tb[r] = f.t[idx[size_t(r)]];
  }
}

// The output is trained towards 0 or 1, so we answer class 1 when y > 0.5.
static double accuracy(Sequential& model, const Features& f) {
  const Tensor& y = model.forward(f.x);  // (N, 1)
  int64_t correct = 0;
  for (int64_t n = 0; n < f.size(); ++n) correct += (y[n] > real(0.5)) == (f.y[size_t(n)] == 1);
  return double(correct) / double(f.size());
}

static void print_vec(const char* label, const Vec& v) {
  std::printf("%s", label);
  for (double e : v) std::printf(" %9.6f", e);
  std::printf("\n");
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("02_backprop_by_hand",
                    "Lesson 2: backpropagation written out by hand for a (3, 4, 1) network, every\n"
                    "gradient checked numerically, then compared with the library's Linear/Sigmoid/\n"
                    "Sequential and trained on three features of Fashion-MNIST images\n"
                    "(Sneaker vs Ankle boot).");
    cli.common.epochs = 10;
    cli.common.lr = 0.2;
    cli.common.batch = 16;
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;

    // ---- Steps 1-4 in action: a batch of 5 examples with 3 features each,
    // random inputs and targets, random weights (all from --seed).
    Rng rng(c.seed);
    HandNet net;
    net.fc1 = make_linear(3, 4, rng);
    net.fc2 = make_linear(4, 1, rng);
    Example ex;
    ex.N = 5;
    for (int k = 0; k < 5 * 3; ++k) ex.x.push_back(rng.normal());  // (5, 3)
    for (int k = 0; k < 5; ++k) ex.t.push_back(rng.uniform());      // (5, 1)

    std::printf("Step 4: the (3, 4, 1) network on a batch of 5, by hand (double)\n");
    Vec y = net_forward(net, ex.x, ex.N);  // (5, 1)
    const double loss = mse_forward(y, ex.t);
    print_vec("  y      =", y);
    print_vec("  target =", ex.t);
    std::printf("  loss   = %.6f\n", loss);
    Vec dx = net_gradients(net, ex);  // (5, 3), and every dW, db

    // ---- Step 5: our own central differences, every entry of every tensor.
    std::printf("\nStep 5: central differences (double, eps 1e-6) vs backward\n");
    Checked checked[] = {
        {"fc1.weight", &net.fc1.W, &net.fc1.dW, Shape{4, 3}},
        {"fc1.bias", &net.fc1.b, &net.fc1.db, Shape{4}},
        {"fc2.weight", &net.fc2.W, &net.fc2.dW, Shape{1, 4}},
        {"fc2.bias", &net.fc2.b, &net.fc2.db, Shape{1}},
        {"x", &ex.x, &dx, Shape{5, 3}}};
    double worst_own = 0;
    for (Checked& ch : checked) {
      Vec analytic = *ch.gradient;  // a copy: the check runs forwards, not backwards
      double err = worst_numeric_error(net, ex, *ch.value, analytic);
      worst_own = std::max(worst_own, err);
      std::printf("  %-10s %-7s worst relative error %.2e\n", ch.name, ch.shape.str().c_str(), err);
    }
    if (!(worst_own < 1e-6)) throw std::runtime_error("the hand-written backward disagrees with the numbers");

    // ---- Step 6: the library's checker, on our hand-written network.
    std::printf("\nStep 6: byhand::gradcheck_scalar (float) on the hand-written network\n");
    double worst_lib = 0;
    for (Checked& ch : checked) {
      Vec& v = *ch.value;
      const Vec saved = v;
      const Shape& shape = ch.shape;
      // value(T): put T into the network, return the loss.
      auto value = [&](const Tensor& T) { from_tensor(T, v); return net_loss(net, ex); };
      // grad(T): put T into the network, run backward, return dL/dv as a Tensor.
      auto grad = [&](const Tensor& T) {
        from_tensor(T, v);
        Vec g = net_gradients(net, ex);  // dL/dx; the parameters' gradients are in net
        return to_tensor(ch.value == &ex.x ? g : *ch.gradient, shape);
      };
      GradcheckResult r = gradcheck_scalar(value, grad, to_tensor(v, shape));
      v = saved;
      worst_lib = std::max(worst_lib, r.worst_error);
      std::printf("  %-10s %s", ch.name, r.report().c_str());
      if (!r.passed) throw std::runtime_error(std::string("gradcheck_scalar failed for ") + ch.name);
    }
    std::printf("  worst relative error over all tensors: %.2e\n", worst_lib);
    dx = net_gradients(net, ex);  // back to the gradients at the original values

    // ---- Step 7: the same network from the library, with the same weights.
    // Linear's weight is (out, in), exactly as ours, so the numbers copy over
    // one for one.
    std::printf("\nStep 7: the library's Sequential(Linear(3, 4), Sigmoid, Linear(4, 1))\n");
    Sequential model;
    Linear& fc1 = model.add<Linear>(3, 4);
    model.add<Sigmoid>();
    Linear& fc2 = model.add<Linear>(4, 1);
    Tensor x_t = to_tensor(ex.x, Shape{5, 3});  // (5, 3)
    Tensor t_t = to_tensor(ex.t, Shape{5, 1});  // (5, 1)
    fc1.weight.value = to_tensor(net.fc1.W, Shape{4, 3});
    fc1.bias.value = to_tensor(net.fc1.b, Shape{4});
    fc2.weight.value = to_tensor(net.fc2.W, Shape{1, 4});
    fc2.bias.value = to_tensor(net.fc2.b, Shape{1});

    MSELoss mse;
    const Tensor& y_lib = model.forward(x_t);      // (5, 1)
    const double loss_lib = mse.forward(y_lib, t_t);
    for (Param* p : model.params()) p->grad.zero();  // what optimizer.zero_grad() does
    Tensor dx_lib = model.backward(mse.backward());  // (5, 3)

    // |library - hand-written|, largest over the tensor.
    auto max_diff = [](const Tensor& a, const Vec& b) {
      double m = 0;
      for (size_t k = 0; k < b.size(); ++k) m = std::max(m, std::fabs(double(a[int64_t(k)]) - b[k]));
      return m;
    };
    std::printf("  output       max |library - by hand| = %.1e\n", max_diff(y_lib, y));
    std::printf("  loss         library %.6f, by hand %.6f\n", loss_lib, loss);
    // (Sequential names its children by position, as PyTorch does: the first
    // Linear is "0", the Sigmoid "1", the second Linear "2".)
    struct { const char* name; const Tensor& lib; const Vec& hand; } grads[] = {
        {"d 0.weight", fc1.weight.grad, net.fc1.dW}, {"d 0.bias", fc1.bias.grad, net.fc1.db},
        {"d 2.weight", fc2.weight.grad, net.fc2.dW}, {"d 2.bias", fc2.bias.grad, net.fc2.db},
        {"dx", dx_lib, dx}};
    double worst_match = max_diff(y_lib, y);
    for (auto& g : grads) {
      double d = max_diff(g.lib, g.hand);
      worst_match = std::max(worst_match, d);
      std::printf("  %-12s max |library - by hand| = %.1e\n", g.name, d);
    }
    if (!(worst_match < 1e-5)) throw std::runtime_error("the library and the hand-written network disagree");

    // And the library's own layer check (L = sum(y * R) for a random R), on
    // the library model: every dx and parameter gradient, plus the contract
    // (dx overwritten, parameter gradients accumulated).
    GradcheckResult r = gradcheck(model, x_t);
    std::printf("  byhand::gradcheck(model): %s", r.report().c_str());
    if (!r.passed) throw std::runtime_error("gradcheck failed on the library model");

    // ---- Step 8: train the library network on a real task.
    // One training step is what we just did, plus an update:
    //   forward, loss, zero_grad, backward, w -= lr * dL/dw  (optimizer.step)
    std::printf("\nStep 8: training it on three features of Fashion-MNIST images\n");
    lesson::TrainTest d = lesson::load_classes(c, {7, 9});  // Sneaker -> 0, Ankle boot -> 1
    Features train = thirds_features(d.train), test = thirds_features(d.test);
    standardise(train, test);
    std::printf("task: \"%s\" (t = 0) vs \"%s\" (t = 1) from 3 features (brightness of the top, middle,\n"
                "bottom third): %lld training, %lld test images\n",
                d.train.classes[0].c_str(), d.train.classes[1].c_str(), (long long)train.size(),
                (long long)test.size());

    manual_seed(c.seed);
    Sequential clf;  // fresh weights, the library's default initialisation
    clf.add<Linear>(3, 4);
    clf.add<Sigmoid>();
    clf.add<Linear>(4, 1);
    SGD opt(clf.params(), c.lr);
    std::printf("model: (3, 4, 1) as above, MSE to 0/1 targets, SGD lr %g, batch %lld, %d epoch(s)\n",
                c.lr, (long long)c.batch, c.epochs);

    // The inputs are 3 numbers per example, not images, so instead of a
    // DataLoader we shuffle the row numbers ourselves and gather each batch.
    std::vector<int64_t> order(size_t(train.size()));
    for (size_t k = 0; k < order.size(); ++k) order[k] = int64_t(k);
    Rng shuffle_rng(c.seed);
    Tensor xb, tb;  // (B, 3), (B, 1)
    std::printf("before training  loss %.4f\n", mse.forward(clf.forward(train.x), train.t));
    for (int epoch = 1; epoch <= c.epochs; ++epoch) {
      shuffle_rng.shuffle(order);  // a fresh order every pass
      double loss_sum = 0;
      for (int64_t start = 0; start < train.size(); start += c.batch) {
        std::vector<int64_t> idx(order.begin() + start,
                                 order.begin() + std::min<int64_t>(start + c.batch, train.size()));
        gather(train, idx, xb, tb);
        const Tensor& out = clf.forward(xb);             // forward     (B, 1)
        loss_sum += mse.forward(out, tb) * double(idx.size());  // loss
        opt.zero_grad();                                 // grads = 0
        clf.backward(mse.backward());                    // backward
        opt.step();                                      // w -= lr * grad
      }
      std::printf("epoch %2d  loss %.4f\n", epoch, loss_sum / double(train.size()));
    }

    std::printf("train accuracy: %.2f%%\n", 100 * accuracy(clf, train));
    lesson::print_test_result(d.test, accuracy(clf, test));
    return 0;
  });
}
