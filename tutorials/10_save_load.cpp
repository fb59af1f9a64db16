// Lesson 10 — Saving and loading a model, resuming training, and asking a
// trained model about an image file.
//
// What you will learn
//   * what a saved model is: the state_dict, one named array per parameter and
//     per buffer (batch norm's running statistics), with PyTorch's names, in a
//     safetensors file that any language reads in a few lines
//   * that loading is "build the same architecture, then copy the numbers in"
//     (net.load_state_dict(torch.load(...)) in the seed notes), and that a
//     loaded model answers exactly as the saved one: a difference of 0, not
//     "close"
//   * what loading into the wrong architecture looks like, and why a failed
//     load must leave the model untouched
//   * why resuming training needs the optimizer's state too (a checkpoint),
//     and why files are written under a temporary name and then renamed
//   * the path from a photo on disk to a prediction: gray, 28x28, the right
//     polarity, the training normalisation, eval mode, softmax
//
// The model is lesson 5's LeNet-5 with batch norm. It is trained briefly (the
// point here is what happens after training), saved, loaded into a fresh copy,
// resumed from a checkpoint, and finally used on an image file.
//
// Run it
//   make tutorials && build/tutorials/10_save_load
//   build/tutorials/10_save_load --image my_shoe.jpg             your own photo
//   build/tutorials/10_save_load --image my_shoe.jpg --invert yes
//   build/tutorials/10_save_load --subset 0 --epochs 5           all 60,000 images
// Files go to runs/10_save_load/ (--out DIR): model.safetensors,
// checkpoint.safetensors, and the 28x28 pictures the model was shown.
//
// What to expect (seed 0): the default run takes about 4 s on a quiet 2-core
// machine, most of it training 2 epochs on 20,000 images; --quick trains on
// 600 images and spends most of its time reading the data. (On a machine
// whose cores other programs keep busy, set OMP_WAIT_POLICY=passive: idle
// OpenMP threads otherwise spin while they wait and take the cores from the
// threads with work to do; a busy machine once took 91 s for the default run
// that way.)
//   step 1  trained model: test accuracy 81.46%
//   step 2  20 tensors, 248,840 bytes: 61,794 floats (the 61,750 parameters
//           and batch norm's running statistics), 2 counters, a 1,640-byte
//           JSON header; the checkpoint (with the momentum buffers) is twice that
//   step 3  fresh model: 9.11%; after load_model: max |logits difference| = 0
//           and the very same accuracy; the weights without batch norm's
//           running statistics: 73.63%
//   step 4  the 12-channel model: "does not match the model (7 problems):
//           features.4.weight: file has (16, 6, 5, 5), model has (12, 6, 5, 5)"
//           and six more lines; half a file: "... the file is truncated";
//           both models unchanged (difference 0)
//   step 5  10 more steps: resumed from the checkpoint, difference 0 from the
//           run that never stopped; weights only with a new optimizer, 0.157
//   step 6  the test image (an ankle boot): Ankle boot 89.7%, Sneaker 8.1%,
//           Sandal 2.1%; the cat (inverted: its background is light) comes
//           out as Shirt 26.9%, T-shirt/top 24.9%, Pullover 19.2%: meaningless
// (The trained numbers move in their last digits whenever a kernel changes
// the order of its float sums; the zeros do not move.)
// The last line is "test accuracy: NN.NN%", the accuracy of the LOADED model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "byhand/data.h"
#include "byhand/image.h"
#include "byhand/io.h"
#include "byhand/loss.h"
#include "byhand/models.h"
#include "byhand/optim.h"
#include "byhand/random.h"
#include "byhand/sequential.h"
#include "byhand/train.h"
#include "lesson.h"

using namespace byhand;
namespace fs = std::filesystem;


// ---- Small helpers for comparing models

// The model's scores for a batch, in eval mode (batch norm uses its running
// statistics, so the answer for one image does not depend on the others).
// forward() returns a reference into the model, so we keep a copy.
static Tensor eval_logits(Layer& model, const Tensor& x) {
  model.eval();
  return model.forward(x);
}

static double max_abs_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw std::logic_error("max_abs_difference: shapes " + a.shape().str() + " and " + b.shape().str());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

// The largest difference between two models of the same architecture, over
// every parameter and every buffer: 0 means "the same numbers".
static double max_weight_difference(Layer& a, Layer& b) {
  std::vector<NamedParam> pa = a.named_parameters(), pb = b.named_parameters();
  std::vector<NamedBuffer> ba = a.named_buffers(), bb = b.named_buffers();
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i)
    worst = std::max(worst, max_abs_difference(pa[i].param->value, pb[i].param->value));
  for (size_t i = 0; i < ba.size(); ++i)
    worst = std::max(worst, max_abs_difference(ba[i].buffer->value, bb[i].buffer->value));
  return worst;
}

// A library error message, which may run over several lines, indented under
// the line that introduces it.
static void print_error(const std::exception& e) {
  std::string text = e.what();
  std::printf("  load_model threw:\n    ");
  for (char ch : text) {
    std::putchar(ch);
    if (ch == '\n') std::printf("    ");
  }
  std::printf("\n");
}

static bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static std::string shape_of(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "()";
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

// One training step, the loop of the seed notes: forward, loss, zero_grad,
// backward, step.
static void train_step(Layer& model, CrossEntropyLoss& criterion, Optimizer& optimizer, const Batch& b) {
  const Tensor& logits = model.forward(b.x);
  criterion.forward(logits, b.y);
  optimizer.zero_grad();
  model.backward(criterion.backward());
  optimizer.step();
}

// ---- Images

// Softmax of one row of scores: probabilities that sum to 1. Subtracting the
// largest score first keeps exp() from overflowing and changes nothing else.
static std::vector<double> softmax(const Tensor& logits) {
  std::vector<double> p(size_t(logits.numel()));
  double top = -INFINITY, sum = 0;
  for (int64_t k = 0; k < logits.numel(); ++k) top = std::max(top, double(logits[k]));
  for (int64_t k = 0; k < logits.numel(); ++k) sum += p[size_t(k)] = std::exp(double(logits[k]) - top);
  for (double& v : p) v /= sum;
  return p;
}

// The mean of the outermost ring of pixels of a (1, H, W) image: the
// background, for almost any photo of one object.
static double border_mean(const Tensor& img) {
  const int64_t h = img.dim(1), w = img.dim(2);
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c)
      if (r == 0 || c == 0 || r == h - 1 || c == w - 1) {
        sum += img[r * w + c];
        ++count;
      }
  return sum / double(count);
}

struct Prediction {
  Tensor logits;  // (1, 10)
  std::vector<double> probs;
};

// The whole path from an image file to a prediction, printed as it goes.
// Writes the 28x28 picture the model actually saw to `seen_png`.
static Prediction classify_file(Layer& model, const std::string& path, const std::string& invert,
                                const Normalize& norm, const std::vector<std::string>& classes,
                                const std::string& seen_png) {
  // (a) decode: any PNG/JPEG/BMP, as a (C, H, W) tensor of values in [0, 1].
  Tensor photo = load_image(path);
  std::printf("  %s: %lld x %lld pixels, %lld channel(s)\n", path.c_str(), (long long)photo.dim(2),
              (long long)photo.dim(1), (long long)photo.dim(0));

  // (b) gray, like the training images (0.299 R + 0.587 G + 0.114 B), and
  // (c) 28x28 without distorting it: shrink until the shorter side is 28,
  // then cut the middle (torchvision's Resize(28) + CenterCrop(28)).
  Tensor x = resize_shorter_then_crop(to_gray(photo), 28, 28);

  // (d) polarity. Fashion-MNIST items are LIGHT on a BLACK background; a
  // photo of a shoe on a table is usually dark on light. A model has only
  // ever seen the first kind, so a light background is turned dark by
  // inverting (x -> 1 - x). "auto" looks at the border of the picture.
  const double background = border_mean(x);
  const bool flip = invert == "yes" || (invert == "auto" && background > 0.5);
  if (flip)
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(1) - x[i];
  const char* why = invert != "auto"              ? (flip ? "inverted (--invert yes)" : "kept (--invert no)")
                    : flip ? "light: inverted, to be light on dark like the training images"
                           : "dark: kept, already light on dark";
  std::printf("  background (mean of the border) %.2f -> %s\n", background, why);

  // What the model will see, before normalisation: look at it.
  save_png(x, seen_png);
  save_png(upscale_nearest(x, 8), fs::path(seen_png).replace_extension("").string() + "_x8.png");
  std::printf("  the 28x28 input the model sees: %s (and an 8x larger copy, _x8.png)\n",
              seen_png.c_str());

  // (e) normalise with the TRAINING set's statistics, exactly as during
  // training; (f) a batch of one; (g) eval mode; forward; softmax.
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = (x[i] - norm.mean[0]) / norm.std[0];
  x.reshape(Shape{1, 1, 28, 28});
  Prediction p;
  p.logits = eval_logits(model, x);
  p.probs = softmax(p.logits);

  std::vector<size_t> order(p.probs.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.probs[a] > p.probs[b]; });
  std::printf("  top 3:");
  for (size_t k = 0; k < 3; ++k)
    std::printf("  %s %.1f%%%s", classes[order[k]].c_str(), 100 * p.probs[order[k]], k < 2 ? "," : "\n");
  return p;
}

int main(int argc, char** argv) {
  return lesson::run([&] {
    lesson::Cli cli("10_save_load",
                    "Lesson 10: save a trained LeNet-5 (safetensors, PyTorch's state_dict names),\n"
                    "load it into a fresh model, see a mismatch fail, resume from a checkpoint,\n"
                    "and classify an image file (--image PATH).");
    cli.common.epochs = 2;
    cli.common.lr = 0.05;
    cli.common.batch = 128;
    cli.common.subset = 20000;
    std::string out_dir = "runs/10_save_load", image_path, invert = "auto";
    double momentum = 0.9;
    cli.option("--momentum", momentum, "SGD momentum");
    cli.option("--out", out_dir, "folder for the model, the checkpoint and the pictures");
    cli.option("--image", image_path,
               "image file to classify; none: a test image and a cat photo");
    cli.option("--invert", invert,
               "auto|yes|no: flip to light-on-dark (auto: if the border is light)");
    cli.parse(argc, argv);
    lesson::Common& c = cli.common;
    if (invert != "auto" && invert != "yes" && invert != "no")
      throw std::invalid_argument("--invert must be auto, yes or no, got '" + invert + "'");
    if (!image_path.empty() && !fs::is_regular_file(image_path))
      throw std::invalid_argument("--image: no such file '" + image_path + "'");
    fs::create_directories(out_dir);
    const std::string model_path = (fs::path(out_dir) / "model.safetensors").string();
    const std::string checkpoint_path = (fs::path(out_dir) / "checkpoint.safetensors").string();

    // ===================================================================
    // Step 1 — train a model briefly (lesson 5 does it properly): LeNet-5 with
    // batch norm from models::lenet5() (src/models.cpp). Its conv2_channels
    // argument exists so that step 4 can build a model that does NOT fit the
    // saved file.
    // ===================================================================
    std::printf("\n== Step 1: train LeNet-5-BN briefly\n");
    lesson::TrainTest d = lesson::load_data(c);
    // The normalisation statistics are part of the model in all but name:
    // every image it is ever shown must be normalised with THESE numbers.
    Normalize norm = channel_stats(d.train);
    std::printf("normalize: mean %.4f, std %.4f (keep them: every future input needs them)\n",
                double(norm.mean[0]), double(norm.std[0]));
    DataLoader train(d.train, c.batch, /*shuffle=*/true, c.seed, /*drop_last=*/false, norm);
    DataLoader test(d.test, 1000, /*shuffle=*/false, 0, false, norm);

    auto model = models::lenet5();  // initial weights drawn from --seed
    CrossEntropyLoss criterion;
    SGD optimizer(model->params(), c.lr, momentum);
    std::printf("model: %lld parameters; SGD lr %g momentum %g, batch %lld, %d epoch(s)\n",
                (long long)model->num_parameters(), c.lr, momentum, (long long)c.batch, c.epochs);
    FitOptions fo = lesson::fit_options(c);
    fit(*model, criterion, optimizer, train, /*val=*/nullptr, fo);
    const EvalResult trained = evaluate(*model, criterion, test);
    std::printf("trained model: test accuracy %.2f%%\n", 100 * trained.accuracy);

    // ===================================================================
    // Step 2 — save it. What is saved is the state_dict: every parameter
    // AND every buffer, by its full name. Not the architecture, not the
    // code: to use the file you build the same network and pour the
    // numbers in (step 3). That is also what PyTorch's
    //     torch.save(net.state_dict(), "net.pth")
    // saves, in pickle; we use safetensors, a plain container that cannot
    // run code when it is opened (include/byhand/io.h shows the format).
    // ===================================================================
    std::printf("\n== Step 2: save the state_dict to %s\n", model_path.c_str());
    save_model(*model, model_path);

    // Read the file back and list what is inside (sorted by name).
    SafetensorsFile saved = read_safetensors(model_path);
    int64_t data_bytes = 0, numbers = 0;
    std::printf("  %-36s %-6s %s\n", "name", "dtype", "shape");
    for (const auto& [name, t] : saved.tensors) {
      std::printf("  %-36s %-6s %s\n", name.c_str(), t.dtype.c_str(), shape_of(t.shape).c_str());
      data_bytes += int64_t(t.bytes.size());
      int64_t n = 1;
      for (int64_t dim : t.shape) n *= dim;
      numbers += n;
    }
    const int64_t file_bytes = int64_t(fs::file_size(model_path));
    std::printf("  %zu tensors, %lld numbers: %lld bytes of data + 8 (header length) + %lld (JSON "
                "header) = %lld bytes\n",
                saved.tensors.size(), (long long)numbers, (long long)data_bytes,
                (long long)(file_bytes - data_bytes - 8), (long long)file_bytes);
    std::printf("  (the %lld parameters, batch norm's running_mean and running_var, and its\n"
                "  num_batches_tracked counters, saved as I64 integers as PyTorch does)\n",
                (long long)model->num_parameters());

    // A checkpoint for resuming also holds the optimizer: SGD with momentum
    // remembers a velocity for every parameter, and Adam two running
    // averages. One file, so that model and optimizer always match.
    save_checkpoint(*model, optimizer, checkpoint_path);
    SafetensorsFile ckpt = read_safetensors(checkpoint_path);
    std::printf("\n  checkpoint %s: %zu tensors, %lld bytes\n", checkpoint_path.c_str(),
                ckpt.tensors.size(), (long long)fs::file_size(checkpoint_path));
    std::printf("  model tensors under \"model.\", e.g. model.features.0.weight; and the optimizer's:\n");
    for (const auto& [name, t] : ckpt.tensors)
      if (name.rfind("optimizer.state.0.", 0) == 0)
        std::printf("    %-34s %-6s %s\n", name.c_str(), t.dtype.c_str(), shape_of(t.shape).c_str());
    std::printf("    ... (one step count and one momentum buffer per parameter)\n");
    // The format allows only strings as metadata: the optimizer's name, its
    // step count, and each parameter group's size, lr and weight decay.
    std::string line = "  metadata:";
    for (const auto& [key, value] : ckpt.metadata) {
      std::string item = " " + key.substr(key.find('.') + 1) + "=" + value;  // without "optimizer."
      if (line.size() + item.size() > 80) {
        std::printf("%s\n", line.c_str());
        line = "           ";
      }
      line += item;
    }
    std::printf("%s\n", line.c_str());
    // How a save survives a crash: the bytes go to a temporary file beside it,
    // "<path>.tmp.<pid>.<n>", are flushed to the disk, and only then is the
    // temporary renamed over <path>. A
    // rename is atomic, so a crash (or a full disk, or Ctrl-C) in the middle
    // of writing leaves the previous checkpoint where it was, whole. Writing
    // straight into <path> would first truncate the good file and then die
    // with half a new one: the run's only copy, gone. Step 4 shows what
    // loading such half a file does.
    bool temporary_left = false;  // any "<checkpoint>.tmp.*" in its folder?
    const fs::path checkpoint_file(checkpoint_path);
    const std::string tmp_prefix = checkpoint_file.filename().string() + ".tmp";
    for (const auto& entry : fs::directory_iterator(checkpoint_file.parent_path()))
      if (entry.path().filename().string().rfind(tmp_prefix, 0) == 0) temporary_left = true;
    std::printf("  each file was written as <name>.tmp.<pid>.<n>, then renamed over <name>: a crash\n"
                "  while saving never destroys the previous file (a .tmp left behind: %s)\n",
                temporary_left ? "yes" : "none");

    // ===================================================================
    // Step 3 — load it into a FRESH model. Loading is two lines: build the
    // same architecture (here from another seed, so its weights are other
    // random numbers), then copy the file's numbers in, name by name.
    // ===================================================================
    std::printf("\n== Step 3: load the file into a fresh model\n");
    Batch probe;  // the first test batch: the same images for every comparison
    test.start_epoch();
    test.next(probe);
    const Tensor reference = eval_logits(*model, probe.x);

    manual_seed(c.seed + 1);
    auto loaded = models::lenet5();
    std::printf("  fresh model (seed %llu): max |logits - trained logits| = %.3f on %lld test images,\n",
                (unsigned long long)(c.seed + 1), max_abs_difference(eval_logits(*loaded, probe.x), reference),
                (long long)probe.size());
    std::printf("  test accuracy %.2f%% (random weights: a guess)\n",
                100 * evaluate(*loaded, criterion, test).accuracy);

    load_model(*loaded, model_path);
    const double logit_gap = max_abs_difference(eval_logits(*loaded, probe.x), reference);
    const EvalResult reloaded = evaluate(*loaded, criterion, test);
    std::printf("  after load_model:             max |logits - trained logits| = %g\n", logit_gap);
    std::printf("  test accuracy %.2f%% (trained model: %.2f%%)\n", 100 * reloaded.accuracy,
                100 * trained.accuracy);
    // Exactly 0, not "small": the file holds the very bits of every float,
    // and the same numbers through the same code give the same answer.
    if (logit_gap != 0) throw std::runtime_error("the loaded model does not reproduce the saved one");

    // Why the buffers are saved too: they are not learned by gradient
    // descent, but in eval mode batch norm normalises with them. Put the
    // weights in but leave a fresh model's running_mean = 0, running_var = 1:
    auto weights_without_buffers = models::lenet5();
    load_model(*weights_without_buffers, model_path);
    for (NamedBuffer& b : weights_without_buffers->named_buffers()) {
      if (ends_with(b.name, "running_mean")) b.buffer->value.fill(0);
      if (ends_with(b.name, "running_var")) b.buffer->value.fill(1);
    }
    std::printf("  the same weights with a fresh model's running statistics (mean 0, var 1):\n"
                "  test accuracy %.2f%%: the buffers are part of the model\n",
                100 * evaluate(*weights_without_buffers, criterion, test).accuracy);

    // ===================================================================
    // Step 4 — what a mismatch looks like. load_model checks the whole file
    // against the model FIRST (every name, shape and type) and copies
    // nothing unless all is well, so a failed load leaves the model as it
    // was, never half old and half new.
    // ===================================================================
    std::printf("\n== Step 4: loading into the wrong model fails, and changes nothing\n");
    auto narrower = models::lenet5(/*conv2_channels=*/12);
    const Tensor before = eval_logits(*narrower, probe.x);
    std::printf("  a LeNet-5 with 12 instead of 16 channels in its second convolution:\n");
    try {
      load_model(*narrower, model_path);
      throw std::logic_error("loading into the narrower model should have failed");
    } catch (const std::runtime_error& e) {
      print_error(e);
    }
    std::printf("  its logits before vs after the failed load: max |difference| = %g (untouched)\n",
                max_abs_difference(eval_logits(*narrower, probe.x), before));

    // The other failure that saving carefully prevents: half a file, what a
    // program killed in the middle of a plain write leaves behind.
    const std::string half_path = (fs::path(out_dir) / "half_written.safetensors").string();
    {
      std::ifstream in(model_path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ofstream(half_path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
    }
    std::printf("  the first half of model.safetensors, as a crash during a plain write leaves it:\n");
    try {
      load_model(*loaded, half_path);
      throw std::logic_error("loading half a file should have failed");
    } catch (const std::runtime_error& e) {
      print_error(e);
    }
    fs::remove(half_path);
    std::printf("  the loaded model is untouched: max |logits - trained logits| = %g\n",
                max_abs_difference(eval_logits(*loaded, probe.x), reference));

    // ===================================================================
    // Step 5 — resume training from the checkpoint. The trained model goes
    // on for a few more batches; so does a fresh model that loads the
    // checkpoint (weights AND momentum); and a third that loads only the
    // weights, with a new optimizer whose momentum starts at zero. The same
    // batches, in the same order, for all three.
    // ===================================================================
    const int resume_steps = 10;
    std::printf("\n== Step 5: resume training from the checkpoint (%d more steps)\n", resume_steps);
    std::vector<Batch> next_batches;  // the first batches of the next epoch
    train.set_epoch(c.epochs);
    train.start_epoch();
    for (Batch b; int(next_batches.size()) < resume_steps && train.next(b);) next_batches.push_back(b);

    manual_seed(c.seed + 2);
    auto resumed = models::lenet5();
    SGD resumed_optimizer(resumed->params(), c.lr, momentum);
    load_checkpoint(*resumed, resumed_optimizer, checkpoint_path);
    std::printf("  checkpoint loaded: the optimizer has made %lld steps, as the original\n",
                (long long)resumed_optimizer.steps());

    manual_seed(c.seed + 3);
    auto weights_only = models::lenet5();
    SGD new_optimizer(weights_only->params(), c.lr, momentum);
    load_model(*weights_only, model_path);

    for (Layer* m : {static_cast<Layer*>(model.get()), static_cast<Layer*>(resumed.get()),
                     static_cast<Layer*>(weights_only.get())})
      m->train();
    for (const Batch& b : next_batches) {
      train_step(*model, criterion, optimizer, b);
      train_step(*resumed, criterion, resumed_optimizer, b);
      train_step(*weights_only, criterion, new_optimizer, b);
    }
    std::printf("  max |weight difference| from the uninterrupted run after %zu steps:\n",
                next_batches.size());
    std::printf("    resumed from the checkpoint (model + optimizer): %g\n",
                max_weight_difference(*model, *resumed));
    std::printf("    model file only, momentum restarted from zero:   %.3g\n",
                max_weight_difference(*model, *weights_only));
    // The first is exactly 0: training went on as if it had never stopped.
    // The second is a different run: every velocity restarted at zero, so
    // the first steps after "resuming" are smaller than they should be. With
    // Adam, both of its running averages and its step count would restart.

    // ===================================================================
    // Step 6 — classify an image file with the LOADED model.
    // ===================================================================
    std::printf("\n== Step 6: classify an image file with the loaded model (--invert %s)\n",
                invert.c_str());
    const std::vector<std::string>& classes = d.test.classes;
    if (!image_path.empty()) {
      const std::string stem = fs::path(image_path).stem().string();
      classify_file(*loaded, image_path, invert, norm, classes,
                    (fs::path(out_dir) / (stem + "_seen.png")).string());
    } else {
      // No --image: first a test image that we write to a PNG ourselves, so
      // we know the answer and can check the pipeline. Its pixels are whole
      // multiples of 1/255, so the PNG holds them exactly, and the file's
      // way through the pipeline must give the data set's logits (up to
      // float rounding, see below).
      const int64_t index = 0;
      const std::string test_png = (fs::path(out_dir) / "fashion_test_0.png").string();
      Dataset one = d.test.slice(index, index + 1);
      save_png(one.images, test_png);
      std::printf("  Fashion-MNIST test image %lld (label \"%s\") written to %s\n", (long long)index,
                  classes[size_t(one.labels[0])].c_str(), test_png.c_str());
      Prediction p = classify_file(*loaded, test_png, invert, norm, classes,
                                   (fs::path(out_dir) / "fashion_test_0_seen.png").string());
      Tensor direct(Shape{1, 1, 28, 28});  // the same image, as the data set gave it
      for (int64_t i = 0; i < 28 * 28; ++i) direct[i] = probe.x[i];
      // Not exactly 0, but float rounding: the DataLoader folds the
      // normalisation into one multiply-add, x * (1/std) + (-mean/std), which
      // rounds differently from (x - mean) / std.
      std::printf("  through the file vs straight from the data set: max |logits difference| = %.1g\n"
                  "  (float rounding: the data loader computes x * (1/std) - mean/std)\n",
                  max_abs_difference(p.logits, eval_logits(*loaded, direct)));

      // Then a photo from outside the ten classes. The model MUST answer
      // with one of the ten clothing classes (softmax always sums to 1), so
      // whatever it says about a cat is meaningless; what matters is the
      // way there, and the 28x28 picture it was shown.
      const fs::path cat = "../shared/data/catvnoncat/test/cat/001.png";
      if (fs::is_regular_file(cat)) {
        std::printf("\n  a cat: not one of the ten classes, so the answer means nothing\n");
        classify_file(*loaded, cat.string(), invert, norm, classes,
                      (fs::path(out_dir) / "cat_seen.png").string());
      } else {
        std::printf("\n  (no cat photo at %s: give any photo with --image PATH)\n", cat.c_str());
      }
    }

    // ===================================================================
    // Step 7 — the same file in PyTorch. The names are nn.Sequential's, so
    // a model of the same shape takes the file as it is.
    // ===================================================================
    std::printf("\n== Step 7: the same file in PyTorch\n");
    std::printf(
        "  from collections import OrderedDict\n"
        "  import torch.nn as nn\n"
        "  from safetensors.torch import load_file      # pip install safetensors\n"
        "  net = nn.Sequential(OrderedDict(\n"
        "      features=nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(),\n"
        "                             nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16),\n"
        "                             nn.ReLU(), nn.MaxPool2d(2)),\n"
        "      classifier=nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),\n"
        "                               nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))))\n"
        "  net.load_state_dict(load_file(\"%s\"))\n"
        "  net.eval()   # and normalise inputs with (x - %.4f) / %.4f\n"
        "  (No safetensors package? include/byhand/io.h has a 13-line reader in plain Python.)\n",
        model_path.c_str(), double(norm.mean[0]), double(norm.std[0]));

    std::printf("\n");
    lesson::print_test_result(d.test, reloaded.accuracy);  // the loaded model's
    return 0;
  });
}
