// test_torchvision.cpp — byhand's ResNets against torchvision's, number for
// number: data/export_torchvision.py builds a torchvision model (seeded random
// init, batch norm's running statistics and affine parameters randomised so
// that eval-mode batch norm is exercised), writes its state_dict as
// safetensors, a seeded random input and torchvision's eval-mode logits on
// it; byhand loads the weights into its own model (load_model: every name,
// shape and dtype must match, or it throws), runs the same input in eval
// mode, and the logits must agree:
//
//   rel = max_ij |byhand_ij - torch_ij| / max_ij |torch_ij|  <=  1e-4
//
// (one scale for the whole tensor, the largest logit, so that a logit near
// zero does not blow the ratio up). torchvision computes in float32; this file
// runs in the float and in the double build, and the bound holds in both.
//
// Needs /usr/bin/python3 with torch and torchvision; without them each test
// says why in a warning and passes without checking anything.
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "byhand/io.h"
#include "byhand/models.h"
#include "byhand/random.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::read_bytes;
using byhand_test::TempDir;
using Catch::Contains;

namespace {

const char* kPython = "/usr/bin/python3";

// Empty when torch and torchvision import, otherwise why they do not (checked
// once per test binary).
const std::string& torch_missing() {
  static const std::string why = [] {
    const std::string cmd = std::string(kPython) + " -c 'import torch, torchvision' > /dev/null 2>&1";
    return std::system(cmd.c_str()) == 0
               ? std::string()
               : std::string(kPython) + " cannot import torch and torchvision";
  }();
  return why;
}

const std::string kScript = std::string(BYHAND_SOURCE_DIR) + "/data/export_torchvision.py";

// Runs the export script with `args`; its output goes to <dir>/export.log,
// shown when the run fails. Returns the exit status.
int run_export(const TempDir& dir, const std::string& args, std::string* log = nullptr) {
  const std::string log_path = dir / "export.log";
  const std::string cmd =
      std::string(kPython) + " '" + kScript + "' " + args + " > '" + log_path + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (log) *log = read_bytes(log_path);
  return rc;
}

// The one tensor `name` of a safetensors file.
Tensor read_tensor(const std::string& path, const std::string& name) {
  const SafetensorsFile file = read_safetensors(path);
  INFO(path);
  REQUIRE(file.tensors.count(name) == 1);
  return decode_tensor(file.tensors.at(name));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Export `tv_args` (model, classes, channels) with a random init and random
// batch norm, load it into `net`, and compare the logits on the reference
// input of shape `shape`. Returns the relative difference.
// The weights stay in <dir>/model.safetensors.
double compare_with_torchvision(const TempDir& dir, Layer& net, const std::string& label,
                                const std::string& tv_args, const std::string& shape) {
  const std::string weights = dir / "model.safetensors", ref = dir / "ref";
  std::string log;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run_export(dir, tv_args + " --seed 7 --randomize-bn --out '" + weights +
                                     "' --reference-input-shape " + shape + " --reference '" +
                                     ref + "'",
                            &log);
  const double export_s = seconds_since(t0);
  INFO("export_torchvision.py said:\n" << log);
  REQUIRE(rc == 0);

  // The file as the script wrote it: header length a multiple of 8 (io.h),
  // F32 weights, I64 counters; one entry per tensor of byhand's model.
  const std::string head = read_bytes(weights).substr(0, 8);
  REQUIRE(head.size() == 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len * 256 + uint8_t(head[size_t(i)]);
  CHECK(header_len % 8 == 0);
  const SafetensorsFile file = read_safetensors(weights);  // checks offsets tile the data
  size_t counters = 0;
  for (const auto& [name, t] : file.tensors) {
    INFO(name);
    const bool counter = name.size() >= 19 && name.substr(name.size() - 19) == "num_batches_tracked";
    CHECK(t.dtype == (counter ? "I64" : "F32"));
    counters += counter;
  }
  CHECK(counters > 0);
  CHECK(file.tensors.size() == net.named_parameters().size() + net.named_buffers().size());

  // All or nothing: any missing, unexpected or misshapen tensor throws.
  REQUIRE_NOTHROW(load_model(net, weights));
  // The statistics really are not torchvision's fresh ones (mean 0, var 1),
  // so eval-mode batch norm has something to get wrong.
  const Tensor var = decode_tensor(file.tensors.at("bn1.running_var"));
  REQUIRE(*std::min_element(var.data(), var.data() + var.numel()) < real(0.9));
  for (const NamedBuffer& b : net.named_buffers())
    if (b.name == "bn1.running_var") REQUIRE(b.buffer->value.to_vector() == var.to_vector());

  const Tensor x = read_tensor(ref + "_input.safetensors", "x");
  const Tensor expected = read_tensor(ref + "_logits.safetensors", "logits");
  net.eval();
  const auto t1 = std::chrono::steady_clock::now();
  const Tensor& y = net.forward(x);
  const double forward_s = seconds_since(t1);
  REQUIRE(y.shape() == expected.shape());
  double max_diff = 0, max_ref = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(y[i]) - double(expected[i])));
    max_ref = std::max(max_ref, std::abs(double(expected[i])));
  }
  REQUIRE(max_ref > 0);
  const double rel = max_diff / max_ref;
  std::printf("torchvision %s (%s build): logits %s, max |byhand - torch| / max |torch| = "
              "%.2e (max |torch| %.3g); export %.1f s, byhand forward %.2f s\n",
              label.c_str(), sizeof(real) == 4 ? "float" : "double", y.shape().str().c_str(), rel,
              max_ref, export_s, forward_s);
  return rel;
}

}  // namespace

TEST_CASE("torchvision resnet18, 10 classes, 1 channel: same eval-mode logits after loading its "
          "weights", "[torch]") {
  if (!torch_missing().empty()) {
    WARN("skipped: " << torch_missing());
    return;
  }
  manual_seed(1);
  auto net = models::resnet18(10, 1);
  TempDir dir("torchvision");
  REQUIRE(compare_with_torchvision(dir, *net, "resnet18 (10 classes, 1 channel)",
                                   "--model resnet18 --num-classes 10 --in-channels 1",
                                   "2,1,64,64") <= 1e-4);

  // The same weights do not fit torchvision's default ResNet-18 (RGB, 1000
  // classes) nor a ResNet-34: load_model refuses, names the file and every
  // tensor that differs, and leaves the model as it was.
  manual_seed(2);
  auto rgb = models::resnet18();
  const std::vector<real> fc_before = rgb->named_parameters().back().param->value.to_vector();
  REQUIRE_THROWS_WITH(load_model(*rgb, dir / "model.safetensors"),
                      Contains("model.safetensors") &&
                          Contains("conv1.weight: file has (64, 1, 7, 7), model has (64, 3, 7, 7)") &&
                          Contains("fc.weight: file has (10, 512), model has (1000, 512)"));
  CHECK(rgb->named_parameters().back().param->value.to_vector() == fc_before);
  auto deeper = models::resnet34(10, 1);
  REQUIRE_THROWS_WITH(load_model(*deeper, dir / "model.safetensors"),
                      Contains("model.safetensors") && Contains("layer1.2.conv1.weight"));
}

TEST_CASE("torchvision resnet50, 1000 classes, RGB 224x224: same eval-mode logits after loading "
          "its weights", "[torch]") {
  if (!torch_missing().empty()) {
    WARN("skipped: " << torch_missing());
    return;
  }
  manual_seed(1);
  auto net = models::resnet50();
  TempDir dir("torchvision");
  REQUIRE(compare_with_torchvision(dir, *net, "resnet50", "--model resnet50", "2,3,224,224") <=
          1e-4);
}

TEST_CASE("export_torchvision.py: bad arguments end in one clear line, not a traceback",
          "[torch]") {
  if (!torch_missing().empty()) {
    WARN("skipped: " << torch_missing());
    return;
  }
  TempDir dir("torchvision");
  std::string log;
  CHECK(run_export(dir, "--model resnet99 --out '" + (dir / "a.safetensors") + "'", &log) == 2);
  CHECK_THAT(log, Contains("error: unknown model 'resnet99'") && Contains("resnet50"));
  CHECK(log.find("Traceback") == std::string::npos);
  CHECK(run_export(dir, "--model resnet18 --out '" + (dir / "a.safetensors") +
                            "' --reference '" + (dir / "r") + "' --reference-input-shape 2,3,x",
                   &log) == 2);
  CHECK_THAT(log, Contains("expected four positive integers N,C,H,W"));
  CHECK(dir.files() == std::vector<std::string>{"export.log"});  // nothing written
}

// The --classify path of lesson 13 end to end: torchvision's ResNet-50
// (seeded random weights: the pretrained ones need a network) and its 1000
// class names, exported by the script, a real photo, five named guesses.
TEST_CASE("13_resnet50 --classify: exported ResNet-50 weights and labels, top 5 of a photo",
          "[torch][lessons]") {
  if (!torch_missing().empty()) {
    WARN("skipped: " << torch_missing());
    return;
  }
  const std::string photo =
      byhand_test::shared_data_if_present("catvnoncat/test/cat/000.png");
  if (photo.empty()) {
    WARN("skipped: ../shared/data/catvnoncat is not here");
    return;
  }
  const std::filesystem::path lesson = byhand_test::lesson_dir() / "13_resnet50";
  REQUIRE(std::filesystem::is_regular_file(lesson));
  TempDir dir("torchvision");
  REQUIRE(run_export(dir, "--model resnet50 --seed 0 --out '" + (dir / "r50.safetensors") +
                              "' --labels '" + (dir / "labels.txt") + "'") == 0);
  const std::string out = dir / "classify.txt";
  const std::string cmd = "'" + lesson.string() + "' --classify '" + photo + "' --weights '" +
                          (dir / "r50.safetensors") + "' --labels '" + (dir / "labels.txt") +
                          "' > '" + out + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string text = read_bytes(out);
  INFO(text);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  // Five lines "  NN.NN%  <class name>", each name one of the file's.
  const std::string labels = "\n" + read_bytes(dir / "labels.txt");
  int guesses = 0;
  size_t pos = text.find('\n');
  while (pos != std::string::npos && pos + 1 < text.size()) {
    const size_t end = text.find('\n', pos + 1);
    const std::string line = text.substr(pos + 1, end - pos - 1);
    const size_t pct = line.find("%  ");
    if (pct != std::string::npos) {
      REQUIRE(labels.find("\n" + line.substr(pct + 3) + "\n") != std::string::npos);
      ++guesses;
    }
    pos = end;
  }
  REQUIRE(guesses == 5);
}
