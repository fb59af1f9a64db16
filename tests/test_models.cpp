// test_models.cpp — the shared networks: PyTorch names, shapes, sizes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "byhand/blocks/bottleneck.h"
#include "byhand/io.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/models.h"
#include "byhand/summary.h"
#include "test_helpers.h"

using namespace byhand;

TEST_CASE("models::lenet5: names, output shape and parameter count", "[models]") {
  auto net = models::lenet5();
  REQUIRE(net->output_shape({3, 1, 28, 28}) == Shape{3, 10});
  // 156 + 12 + 2416 + 32 + 48120 + 10164 + 850, as PyTorch counts the same model
  REQUIRE(net->num_parameters() == 61750);
  auto named = net->named_parameters();
  REQUIRE(named.front().name == "features.0.weight");
  REQUIRE(named.back().name == "classifier.5.bias");
  REQUIRE(net->named_buffers().front().name == "features.1.running_mean");
  REQUIRE(models::lenet5(12)->output_shape({1, 1, 28, 28}) == Shape{1, 10});
}

TEST_CASE("models::mlp: the seed MLP's size and names; bad activation", "[models]") {
  auto net = models::mlp({100, 100, 100}, "sigmoid");
  REQUIRE(net->output_shape({2, 1, 28, 28}) == Shape{2, 10});
  REQUIRE(net->num_parameters() == 99710);
  REQUIRE(net->named_parameters().front().name == "1.weight");
  REQUIRE_THROWS_WITH(models::mlp({10}, "swish"), Catch::Contains("relu, sigmoid or tanh"));
}

// ---------------------------------------------------------------- ResNet and VGG

namespace {

struct Entry {
  std::string name;
  Shape shape;
};

// tests/data/torchvision_<model>_state_dict.txt: "name d0,d1,..." per line,
// written from torchvision 0.14 (the command is in the file's header).
std::vector<Entry> torchvision_state_dict(const std::string& model) {
  const std::string path =
      std::string(BYHAND_SOURCE_DIR) + "/tests/data/torchvision_" + model + "_state_dict.txt";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<Entry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    std::vector<int64_t> dims;
    std::stringstream ds(line.substr(space + 1));
    std::string d;
    while (std::getline(ds, d, ','))
      if (!d.empty()) dims.push_back(std::stoll(d));
    out.push_back({line.substr(0, space), Shape(dims)});
  }
  return out;
}

bool is_buffer_name(const std::string& n) {
  for (const char* suffix : {"running_mean", "running_var", "num_batches_tracked"})
    if (n.size() >= std::strlen(suffix) && n.compare(n.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      return true;
  return false;
}

// Our parameters and buffers, each in order, against torchvision's state_dict
// (which interleaves them module by module; each kind keeps its order).
void require_torchvision_names(Layer& model, const std::string& tv_name) {
  std::vector<Entry> tv_params, tv_buffers;
  for (auto& e : torchvision_state_dict(tv_name))
    (is_buffer_name(e.name) ? tv_buffers : tv_params).push_back(e);
  auto params = model.named_parameters();
  auto buffers = model.named_buffers();
  REQUIRE(params.size() == tv_params.size());
  REQUIRE(buffers.size() == tv_buffers.size());
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(tv_params[i].name);
    REQUIRE(params[i].name == tv_params[i].name);
    REQUIRE(params[i].param->value.shape() == tv_params[i].shape);
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    INFO(tv_buffers[i].name);
    REQUIRE(buffers[i].name == tv_buffers[i].name);
    REQUIRE(buffers[i].buffer->value.shape() == tv_buffers[i].shape);
  }
}

}  // namespace

TEST_CASE("resnet18 and resnet50: torchvision's state_dict names, shapes and order", "[models]") {
  require_torchvision_names(*models::resnet18(), "resnet18");
  require_torchvision_names(*models::resnet50(), "resnet50");
}

TEST_CASE("ResNets: torchvision's parameter counts", "[models]") {
  CHECK(models::resnet18()->num_parameters() == 11689512);
  CHECK(models::resnet34()->num_parameters() == 21797672);
  CHECK(models::resnet50()->num_parameters() == 25557032);
  CHECK(models::resnet50(10)->num_parameters() == 23528522);
  CHECK(models::resnet101()->num_parameters() == 44549160);
  // One input channel: conv1 loses 2 * 64 * 49 weights.
  CHECK(models::resnet18(10, 1)->num_parameters() == 11689512 - 2 * 64 * 49 - 990 * 513);
}

TEST_CASE("ResNets: torchvision's initialisation", "[models]") {
  manual_seed(3);
  auto net = models::resnet18(10, 3);
  auto& conv1 = static_cast<Conv2d&>((*net)["conv1"]);
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (64 * 7 * 7))
  double sum2 = 0;
  const Tensor& w = conv1.weight.value;
  for (int64_t i = 0; i < w.numel(); ++i) sum2 += double(w[i]) * double(w[i]);
  CHECK(std::sqrt(sum2 / double(w.numel())) == Approx(std::sqrt(2.0 / (64 * 49))).epsilon(0.05));
  auto& bn1 = static_cast<BatchNorm2d&>((*net)["bn1"]);
  CHECK(bn1.weight.value.sum() == 64);
  CHECK(bn1.bias.value.sum() == 0);

  models::ResNetOptions o;
  o.zero_init_residual = true;
  auto zeroed = models::resnet50(10, 3, o);
  int last_bns = 0;
  for (auto& [path, layer] : named_modules(*zeroed))
    if (auto* b = dynamic_cast<Bottleneck*>(layer)) {
      REQUIRE(b->bn3.weight.value.sum() == 0);
      REQUIRE(b->bn2.weight.value.sum() == double(b->bn2.num_features()));
      ++last_bns;
    }
  REQUIRE(last_bns == 16);
}

TEST_CASE("ResNets: output shapes, small-input stem, SE and v1 variants", "[models]") {
  REQUIRE(models::resnet18(10, 1)->output_shape({2, 1, 64, 64}) == Shape{2, 10});
  models::ResNetOptions o;
  o.small_input = true;
  o.width_divisor = 4;
  auto small = models::resnet18(10, 1, o);
  REQUIRE(small->output_shape({2, 1, 28, 28}) == Shape{2, 10});
  REQUIRE_THROWS_AS((*small)["maxpool"], std::out_of_range);
  REQUIRE(static_cast<Conv2d&>((*small)["conv1"]).kernel_size().h == 3);

  o = {};
  o.block.se_reduction = 16;
  auto se = models::resnet50(10, 3, o);
  // Each of the 16 blocks adds two Linear layers: C*C/16 + C/16 + C/16*C + C.
  int64_t extra = 0;
  for (int64_t planes : {64, 128, 256, 512}) {
    const int64_t c = planes * 4, blocks = planes == 64 ? 3 : planes == 128 ? 4 : planes == 256 ? 6 : 3;
    extra += blocks * (2 * c * (c / 16) + c / 16 + c);
  }
  REQUIRE(se->num_parameters() == 23528522 + extra);
  REQUIRE(se->named_parameters()[3].name == "layer1.0.conv1.weight");
  REQUIRE(se->named_parameters()[12].name == "layer1.0.se.fc1.weight");

  o = {};
  o.block.stride_on_3x3 = false;
  auto v1 = models::resnet50(10, 3, o);
  auto& b = static_cast<Bottleneck&>(static_cast<Sequential&>((*v1)["layer2"])[0]);
  REQUIRE(b.conv1.stride().h == 2);
  REQUIRE(b.conv2.stride().h == 1);
  REQUIRE(v1->num_parameters() == 23528522);  // the same weights, another stride placement
}

TEST_CASE("ResNet-50: save and load give bit-identical logits", "[models][io]") {
  manual_seed(11);
  auto a = models::resnet50(10, 3);
  Rng rng(5);
  Tensor x({2, 3, 32, 32});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = real(rng.normal());
  a->forward(x);  // train mode: moves the running statistics off their start
  a->forward(x);
  a->eval();
  const std::vector<real> logits = a->forward(x).to_vector();
  byhand_test::TempDir dir;
  save_model(*a, dir / "resnet50.safetensors");

  manual_seed(12);
  auto b = models::resnet50(10, 3);
  b->eval();
  REQUIRE(b->forward(x).to_vector() != logits);
  load_model(*b, dir / "resnet50.safetensors");
  REQUIRE(b->forward(x).to_vector() == logits);
  REQUIRE(static_cast<BatchNorm2d&>((*b)["bn1"]).num_batches_tracked.value[0] == 2);
}

TEST_CASE("summary of a ResNet-50 lists every block, with shapes and per-block totals",
          "[models][summary]") {
  auto net = models::resnet50(10, 3);
  const std::string s = summary(*net, {1, 3, 64, 64});
  INFO(s);
  for (int stage = 1; stage <= 4; ++stage)
    for (int block = 0; block < (stage == 1 ? 3 : stage == 2 ? 4 : stage == 3 ? 6 : 3); ++block)
      REQUIRE(s.find("layer" + std::to_string(stage) + "." + std::to_string(block) + " ") !=
              std::string::npos);
  REQUIRE(s.find("layer2.0.downsample.0") != std::string::npos);
  REQUIRE(s.find("  Bottleneck(256, 128, stride=2, v1.5)") != std::string::npos);
  REQUIRE(s.find("(1, 2048, 2, 2)") != std::string::npos);  // layer4 of a 64x64 image
  REQUIRE(s.find("total parameters: 23528522") != std::string::npos);
  // Depth 2: the stages and their blocks, not the layers inside.
  const std::string s2 = summary(*net, {1, 3, 64, 64}, 2);
  REQUIRE(s2.find("layer4.2 ") != std::string::npos);
  REQUIRE(s2.find("layer4.2.conv1") == std::string::npos);
  REQUIRE(net->training());  // the summary's eval-mode run put the mode back
}

TEST_CASE("vgg: torchvision's names (vgg11_bn), shapes and the seed's conv_arch", "[models]") {
  const std::vector<std::string> tv = {  // torchvision.models.vgg11_bn().state_dict(), params only
      "features.0.weight",  "features.0.bias",  "features.1.weight",  "features.1.bias",
      "features.4.weight",  "features.4.bias",  "features.5.weight",  "features.5.bias",
      "features.8.weight",  "features.8.bias",  "features.9.weight",  "features.9.bias",
      "features.11.weight", "features.11.bias", "features.12.weight", "features.12.bias",
      "features.15.weight", "features.15.bias", "features.16.weight", "features.16.bias",
      "features.18.weight", "features.18.bias", "features.19.weight", "features.19.bias",
      "features.22.weight", "features.22.bias", "features.23.weight", "features.23.bias",
      "features.25.weight", "features.25.bias", "features.26.weight", "features.26.bias",
      "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias",
      "classifier.6.weight", "classifier.6.bias"};
  models::VggOptions o;
  o.batch_norm = true;
  o.width_divisor = 8;
  o.hidden = 64;
  o.num_classes = 10;
  auto net = models::vgg(models::vgg11_config(), o);
  auto names = net->named_parameters();
  REQUIRE(names.size() == tv.size());
  for (size_t i = 0; i < tv.size(); ++i) REQUIRE(names[i].name == tv[i]);
  REQUIRE(net->output_shape({2, 3, 224, 224}) == Shape{2, 10});
  // Small images: 32x32 halves 5 times to 1x1; pool_size 1.
  o.pool_size = 1;
  o.in_channels = 1;
  auto small = models::vgg(models::vgg11_config(), o);
  REQUIRE(small->output_shape({2, 1, 32, 32}) == Shape{2, 10});
  REQUIRE_THROWS(small->output_shape({2, 1, 28, 28}));  // 28 -> 14 -> 7 -> 3 -> 1 -> 0
  // Without batch norm the count is torchvision's vgg11's formula: convs + 3 Linear.
  models::VggOptions plain;
  plain.width_divisor = 4;
  plain.hidden = 128;
  plain.pool_size = 1;
  auto p = models::vgg(models::vgg11_config(), plain);
  const int64_t convs = (3 * 9 + 1) * 16 + (16 * 9 + 1) * 32 + (32 * 9 + 1) * 64 +
                        (64 * 9 + 1) * 64 + (64 * 9 + 1) * 128 + 3 * (128 * 9 + 1) * 128;
  REQUIRE(p->num_parameters() == convs + 129 * 128 + 129 * 128 + 129 * 1000);
}
