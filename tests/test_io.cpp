// test_io.cpp — checkpoints in the safetensors format: round trips, files
// from an independent writer and from PyTorch, every kind of bad file (with
// the model left untouched), resuming training bit for bit, and saving
// through a temporary file and a rename.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "byhand/io.h"
#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/loss.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"
#include "test_helpers.h"

using namespace byhand;
using byhand_test::normal_tensor;
using byhand_test::read_bytes;
using byhand_test::TempDir;
using byhand_test::write_bytes;
using Catch::Matchers::Contains;

namespace {

// ---------------------------------------------------------------- an independent writer

// Little-endian bytes, written out by hand, not with byhand's code.
std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xff);
  return s;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float f : values) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    s += le_bytes(bits, 4);
  }
  return s;
}

std::string f64_bytes(std::initializer_list<double> values) {
  std::string s;
  for (double d : values) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    s += le_bytes(bits, 8);
  }
  return s;
}

// A whole file: header length, header, data.
std::string assemble(const std::string& header_json, const std::string& data) {
  return le_bytes(header_json.size(), 8) + header_json + data;
}

std::string from_hex(const std::string& hex) {
  std::string s;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    s += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return s;
}

// ---------------------------------------------------------------- models and training

std::unique_ptr<Sequential> make_mlp(uint64_t seed) {
  Rng rng(seed);
  auto net = std::make_unique<Sequential>();
  net->add<Linear>(3, 4, true, rng);
  net->add<BatchNorm1d>(4);
  net->add<ReLU>();
  net->add<Linear>(4, 2, true, rng);
  return net;
}

// Nested, so that names have two dots ("features.1.running_mean").
std::unique_ptr<Sequential> make_cnn(uint64_t seed) {
  Rng rng(seed);
  auto features = std::make_unique<Sequential>();
  features->add<Conv2d>(1, 3, 3, 1, 1, true, rng);
  features->add<BatchNorm2d>(3);
  features->add<ReLU>();
  auto net = std::make_unique<Sequential>();
  net->add("features", std::move(features));
  net->add<Flatten>();
  net->add<Linear>(3 * 4 * 4, 5, true, rng);
  net->add<BatchNorm1d>(5);
  net->add<Tanh>();
  net->add<Linear>(5, 3, true, rng);
  return net;
}

// Batch i of a fixed sequence: four 1x4x4 images and their labels.
struct Batch {
  Tensor x;
  std::vector<int> labels;
};
Batch batch(int i) {
  Rng rng(1000 + uint64_t(i));
  return {normal_tensor({4, 1, 4, 4}, rng), {i % 3, (i + 1) % 3, (i + 2) % 3, 0}};
}

void train_step(Layer& net, Optimizer& opt, const Batch& b) {
  CrossEntropyLoss loss;
  opt.zero_grad();
  loss.forward(net.forward(b.x), b.labels);
  net.backward(loss.backward());
  opt.step();
}

// One step of training on a (4, 3) batch, so that the MLP's running stats
// and num_batches_tracked are not their initial values.
void train_mlp_once(Sequential& net) {
  Rng rng(7);
  SGD opt(net.params(), 0.1);
  CrossEntropyLoss loss;
  opt.zero_grad();
  const Tensor x = normal_tensor({4, 3}, rng);  // kept until backward (layer.h)
  loss.forward(net.forward(x), {0, 1, 1, 0});
  net.backward(loss.backward());
  opt.step();
}

// Every parameter and buffer by name: a snapshot to compare, exactly.
std::map<std::string, std::vector<real>> snapshot(Layer& model) {
  std::map<std::string, std::vector<real>> values;
  for (const NamedParam& p : model.named_parameters()) values[p.name] = p.param->value.to_vector();
  for (const NamedBuffer& b : model.named_buffers()) values[b.name] = b.buffer->value.to_vector();
  return values;
}

}  // namespace

// ---------------------------------------------------------------- round trips

TEST_CASE("save_model / load_model: a round trip gives bit-identical outputs", "[io]") {
  TempDir dir;
  for (bool cnn : {false, true}) {
    DYNAMIC_SECTION((cnn ? "CNN with BatchNorm2d" : "MLP with BatchNorm1d")) {
      std::unique_ptr<Sequential> net = cnn ? make_cnn(1) : make_mlp(1);
      Rng rng(3);
      const Tensor x = normal_tensor(cnn ? Shape{4, 1, 4, 4} : Shape{4, 3}, rng);
      if (cnn) {
        SGD sgd(net->params(), 0.1);
        train_step(*net, sgd, batch(0));
      } else {
        train_mlp_once(*net);
      }
      net->eval();
      const std::vector<real> expected = net->forward(x).to_vector();

      save_model(*net, dir / "model.safetensors");
      std::unique_ptr<Sequential> loaded = cnn ? make_cnn(2) : make_mlp(2);  // other weights
      loaded->eval();
      REQUIRE(loaded->forward(x).to_vector() != expected);
      load_model(*loaded, dir / "model.safetensors");
      CHECK(snapshot(*loaded) == snapshot(*net));
      CHECK(loaded->forward(x).to_vector() == expected);
      const std::string bn = cnn ? "features.1." : "1.";
      CHECK(snapshot(*loaded)[bn + "num_batches_tracked"] == std::vector<real>{1});
      CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
    }
  }
}

TEST_CASE("save_safetensors writes the documented layout", "[io]") {
  TempDir dir;
  const Tensor w({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor count(Shape{}, {42});
  save_safetensors(dir / "t.safetensors", {{"w", &w}, {"bn.num_batches_tracked", &count}},
                   {{"note", "a \"quoted\"\nline"}});
  const std::string bytes = read_bytes(dir / "t.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n * 256 + static_cast<unsigned char>(bytes[size_t(i)]);
  CHECK(n % 8 == 0);  // padded with spaces, so the data starts 8-byte aligned
  const std::string header = bytes.substr(8, n);
  const std::string real_name = sizeof(real) == 4 ? "F32" : "F64";
  // Metadata first, then the larger elements (I64) before the smaller ones.
  CHECK_THAT(header,
             Contains(R"({"__metadata__":{"note":"a \"quoted\"\u000aline"},)"
                      R"("bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                      R"("w":{"dtype":")" + real_name + R"(","shape":[2,3],"data_offsets":[8,)"));
  CHECK(header.find_first_not_of(' ', header.find("]}}") + 3) == std::string::npos);
  CHECK(bytes.size() == 8 + n + 8 + 6 * sizeof(real));

  const SafetensorsFile file = read_safetensors(dir / "t.safetensors");
  CHECK(file.metadata.at("note") == "a \"quoted\"\nline");
  CHECK(file.tensors.at("bn.num_batches_tracked").dtype == "I64");
  CHECK(decode_tensor(file.tensors.at("bn.num_batches_tracked")).to_vector() ==
        std::vector<real>{42});
  CHECK(decode_tensor(file.tensors.at("w")).shape() == Shape{2, 3});
  CHECK(decode_tensor(file.tensors.at("w")).to_vector() == w.to_vector());
}

TEST_CASE("A file from an independent writer loads with exact values", "[io]") {
  TempDir dir;
  // Whitespace, an unpadded header, an F64 tensor and escapes, all allowed.
  const std::string header =
      "{ \"__metadata__\" : {\"who\": \"hand\\u002dwritten \\u00e9\\ud83d\\ude00\"},\n"
      "  \"0.weight\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [16, 40]},\n"
      "  \"0.bias\":   {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]} }";
  const std::string data =
      f64_bytes({0.1, -7.0}) + f32_bytes({1.5f, -2.25f, 0.125f, 3, -0.5f, 1e-3f});
  write_bytes(dir / "hand.safetensors", assemble(header, data));

  Sequential net;
  net.add<Linear>(3, 2);
  load_model(net, dir / "hand.safetensors");
  const auto values = snapshot(net);
  CHECK(values.at("0.weight") == std::vector<real>{1.5f, -2.25f, 0.125f, 3, -0.5f, 1e-3f});
  CHECK(values.at("0.bias") == std::vector<real>{real(0.1), -7});
  CHECK(read_safetensors(dir / "hand.safetensors").metadata.at("who") ==
        "hand-written \xc3\xa9\xf0\x9f\x98\x80");
}

// Written by PyTorch 1.13 from the state_dict of
//   torch.manual_seed(0)
//   model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
//   two training-mode forwards of torch.randn(4, 3); BatchNorm's weight and
//   bias then set to uniform_(0.5, 1.5) and normal_(); model.eval()
// with the file assembled by struct.pack and json.dumps as the reference
// writer lays it out (the safetensors package is not installed there):
// larger dtypes first, then by name; header padded with spaces to 8 bytes.
TEST_CASE("A file written from PyTorch loads with PyTorch's names and outputs", "[io]") {
  const std::string length = from_hex("c801000000000000");  // 456
  const std::string header =
      R"({"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
      R"("0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("0.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]},)"
      R"("1.bias":{"dtype":"F32","shape":[2],"data_offsets":[40,48]},)"
      R"("1.running_mean":{"dtype":"F32","shape":[2],"data_offsets":[48,56]},)"
      R"("1.running_var":{"dtype":"F32","shape":[2],"data_offsets":[56,64]},)"
      R"("1.weight":{"dtype":"F32","shape":[2],"data_offsets":[64,72]}})"
      "   ";
  const std::string data = from_hex(
      "0200000000000000406b3bbc7a61ea3ee8a38dbb13939e3e7e4bf3bec98bd9beb1b463be53891e3e"
      "198d823e9df1e63fbb5257bc6001c13d99fd593fe7245e3f10ed8b3fcac21c3f");
  REQUIRE(header.size() == 456);
  TempDir dir;
  write_bytes(dir / "torch.safetensors", length + header + data);

  Sequential net;
  net.add<Linear>(3, 2);
  net.add<BatchNorm1d>(2);
  load_model(net, dir / "torch.safetensors");
  const auto values = snapshot(net);
  CHECK(values.at("0.weight") == std::vector<real>{-0.00432251766f, 0.309715837f, -0.475185335f,
                                                   -0.424894601f, -0.222368971f, 0.154820725f});
  CHECK(values.at("0.bias") == std::vector<real>{-0.0114391446f, 0.457774937f});
  CHECK(values.at("1.weight") == std::vector<real>{1.09317207f, 0.612347245f});
  CHECK(values.at("1.bias") == std::vector<real>{0.25498274f, 1.80424845f});
  CHECK(values.at("1.running_mean") == std::vector<real>{-0.0131422831f, 0.0942409039f});
  CHECK(values.at("1.running_var") == std::vector<real>{0.851525843f, 0.867750585f});
  CHECK(values.at("1.num_batches_tracked") == std::vector<real>{2});

  // PyTorch's eval-mode output for this input: -1.23831117, 2.2532835, 0.763238311, 1.51138794
  net.eval();
  const Tensor y = net.forward(Tensor({2, 3}, {0.5, -1.0, 2.0, 1.5, 0.25, -0.75}));
  const std::vector<double> torch_y = {-1.23831117, 2.2532835, 0.763238311, 1.51138794};
  for (int i = 0; i < 4; ++i) CHECK(double(y[i]) == Approx(torch_y[size_t(i)]).margin(1e-6));
}

// ---------------------------------------------------------------- models that do not match

TEST_CASE("load_model: mismatches are all listed and the model is left unchanged", "[io]") {
  TempDir dir;
  std::unique_ptr<Sequential> net = make_mlp(1);
  train_mlp_once(*net);
  save_model(*net, dir / "good.safetensors");
  const SafetensorsFile good = read_safetensors(dir / "good.safetensors");
  const std::string path = dir / "bad.safetensors";

  std::unique_ptr<Sequential> target = make_mlp(5);
  const auto before = snapshot(*target);
  auto check_fails = [&](const SafetensorsFile& bad, const std::vector<std::string>& expected) {
    write_safetensors(path, bad);
    try {
      load_model(*target, path);
      FAIL("load_model did not throw");
    } catch (const std::runtime_error& e) {
      INFO(e.what());
      CHECK_THAT(e.what(), Contains("load_model: '" + path + "' does not match the model"));
      for (const std::string& s : expected) CHECK_THAT(e.what(), Contains(s));
    }
    CHECK(snapshot(*target) == before);
  };

  SECTION("missing tensor") {
    SafetensorsFile bad = good;
    bad.tensors.erase("1.running_mean");
    check_fails(bad, {"(1 problem)", "missing tensor '1.running_mean'"});
  }
  SECTION("unexpected tensor") {
    SafetensorsFile bad = good;
    bad.tensors["4.weight"] = encode_tensor(Tensor({2, 2}), "F32");
    check_fails(bad, {"unexpected tensor '4.weight'"});
  }
  SECTION("wrong shape") {
    SafetensorsFile bad = good;
    bad.tensors["0.weight"] = encode_tensor(Tensor({4, 5}), "F32");
    check_fails(bad, {"0.weight: file has (4, 5), model has (4, 3)"});
  }
  SECTION("unsupported dtypes") {
    SafetensorsFile bad = good;
    bad.tensors["0.bias"] = {"BF16", {4}, std::string(8, '\0')};
    bad.tensors["1.num_batches_tracked"] = {"I32", {}, std::string(4, '\0')};
    bad.tensors["1.running_var"] = encode_tensor(Tensor({4}), "I64");
    check_fails(bad, {"(3 problems)", "0.bias: dtype BF16 is not supported (expected F32 or F64)",
                      "1.num_batches_tracked: dtype I32 is not supported (expected I64)",
                      "1.running_var: dtype I64 is not supported (expected F32 or F64)"});
  }
  SECTION("several problems at once, one of them fine to load") {
    SafetensorsFile bad = good;
    bad.tensors.erase("3.bias");
    bad.tensors["extra"] = encode_tensor(Tensor({1}), "F32");
    bad.tensors["3.weight"] = encode_tensor(Tensor({2, 5}), "F64");
    check_fails(bad, {"(3 problems)", "missing tensor '3.bias'", "unexpected tensor 'extra'",
                      "3.weight: file has (2, 5), model has (2, 4)"});
  }
}

TEST_CASE("read_safetensors: bad files give clear errors and change nothing", "[io]") {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  const std::string where = "safetensors file '" + path + "'";
  std::unique_ptr<Sequential> net = make_mlp(1);
  save_model(*net, dir / "good.safetensors");
  const std::string good = read_bytes(dir / "good.safetensors");
  const std::string two = f32_bytes({1, 2});

  struct Case {
    const char* what;
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"truncated header", good.substr(0, 5), "truncated header: the file has 5 bytes"},
      {"header length past the end", le_bytes(1000, 8) + "{}",
       "the header length 1000 points past the end of the file (10 bytes)"},
      {"truncated body", good.substr(0, good.size() - 3), "run past the end of the data section"},
      {"invalid JSON", assemble(R"({"a":{"dtype":"F32",}})", ""),
       "invalid JSON in the header at byte 20: expected a string key"},
      {"not JSON at all", assemble("PK\x03\x04", ""),
       "invalid JSON in the header at byte 0: expected an object"},
      {"a duplicate key", assemble(R"({"a":{},"a":{}})", ""), "at byte 8: duplicate key \"a\""},
      {"a negative number",
       assemble(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two),
       "at byte 29: expected an object, an array, a string or a non-negative integer"},
      {"trailing text", assemble("{} x", ""), "at byte 3: unexpected text after the JSON object"},
      {"an unknown dtype",
       assemble(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", two),
       "header entry \"a\": unknown dtype \"F33\""},
      {"offsets that do not fit the shape",
       assemble(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two),
       "tensor 'a' [0, 8]: data_offsets span 8 bytes, but F32 of shape (3) needs 12"},
      {"offsets out of range",
       assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1})),
       "tensor 'a' [0, 8]: data_offsets run past the end of the data section (4 bytes)"},
      {"overlapping offsets",
       assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                f32_bytes({1, 2, 3})),
       "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
      {"a gap between tensors",
       assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                f32_bytes({1, 2, 3, 4, 5})),
       "4 unused bytes before tensor 'b' [12, 20]"},
      {"bytes after the last tensor",
       assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two + "xx"),
       "2 bytes after the last tensor"},
      {"metadata that is not strings", assemble(R"({"__metadata__":{"epoch":3}})", ""),
       "\"__metadata__\" must map strings to strings"},
  };
  const auto before = snapshot(*net);
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.what) {
      write_bytes(path, c.bytes);
      CHECK_THROWS_WITH(load_model(*net, path), Contains(where + ": ") && Contains(c.message));
      CHECK(snapshot(*net) == before);
    }
  }
  SECTION("a missing file") {
    const std::string missing = dir / "nowhere.safetensors";
    CHECK_THROWS_WITH(load_model(*net, missing),
                      Contains("safetensors file '" + missing + "': cannot open: No such file"));
  }
}

// ---------------------------------------------------------------- resuming training

namespace {

using MakeOptimizer = std::unique_ptr<Optimizer> (*)(Layer&);

// Train n + m steps in one go; and n steps, save, load into a fresh model and
// optimizer, m more steps. The two must agree bit for bit. The lr is halved
// before step 1, as a schedule would, and must come back from the file.
void check_resume(MakeOptimizer make_optimizer, int n, int m, bool one_file) {
  auto run = [&](Layer& net, Optimizer& opt, int from, int to) {
    for (int i = from; i < to; ++i) {
      if (i == 1) opt.set_lr(opt.lr() / 2);
      train_step(net, opt, batch(i));
    }
  };
  std::unique_ptr<Sequential> straight = make_cnn(1);
  std::unique_ptr<Optimizer> straight_opt = make_optimizer(*straight);
  run(*straight, *straight_opt, 0, n + m);

  TempDir dir;
  {
    std::unique_ptr<Sequential> first = make_cnn(1);
    std::unique_ptr<Optimizer> first_opt = make_optimizer(*first);
    run(*first, *first_opt, 0, n);
    if (one_file) {
      save_checkpoint(*first, *first_opt, dir / "checkpoint.safetensors");
    } else {
      save_model(*first, dir / "model.safetensors");
      save_optimizer(*first_opt, dir / "optimizer.safetensors");
    }
  }
  std::unique_ptr<Sequential> resumed = make_cnn(2);  // other initial weights
  std::unique_ptr<Optimizer> resumed_opt = make_optimizer(*resumed);
  if (one_file) {
    load_checkpoint(*resumed, *resumed_opt, dir / "checkpoint.safetensors");
  } else {
    load_model(*resumed, dir / "model.safetensors");
    load_optimizer(*resumed_opt, dir / "optimizer.safetensors");
  }
  CHECK(resumed_opt->steps() == n);
  run(*resumed, *resumed_opt, n, n + m);

  CHECK(snapshot(*resumed) == snapshot(*straight));
  CHECK(resumed_opt->steps() == straight_opt->steps());
  CHECK(resumed_opt->lr() == straight_opt->lr());
  const auto& a = resumed_opt->state();
  const auto& b = straight_opt->state();
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    CHECK(a[k].step == b[k].step);
    REQUIRE(a[k].tensors.size() == b[k].tensors.size());
    for (const StateTensor& t : b[k].tensors)
      CHECK(a[k].get(t.name).to_vector() == t.value.to_vector());
  }
}

std::unique_ptr<Optimizer> make_adam(Layer& net) {
  return std::make_unique<Adam>(net.params(), 0.01, 0.9, 0.999, 1e-8, 1e-4);
}
std::unique_ptr<Optimizer> make_sgd(Layer& net) {
  return std::make_unique<SGD>(net.params(), 0.05, 0.9, 0, 1e-4, true);
}

}  // namespace

TEST_CASE("Resume: N steps, save, load into fresh ones, M steps == N+M steps, bit for bit",
          "[io]") {
  for (bool one_file : {false, true}) {
    DYNAMIC_SECTION((one_file ? "one checkpoint file" : "model and optimizer files")) {
      SECTION("Adam") { check_resume(make_adam, 3, 2, one_file); }
      SECTION("SGD with Nesterov momentum") { check_resume(make_sgd, 3, 2, one_file); }
      SECTION("Adam saved before its first step (no state allocated yet)") {
        check_resume(make_adam, 0, 2, one_file);
      }
    }
  }
}

// A checkpoint that holds a NaN or an Inf loads, with a warning naming the
// tensors, not silently.
TEST_CASE("Loading a file with NaN or Inf in it warns, naming the tensors", "[io]") {
  TempDir dir;
  std::unique_ptr<Sequential> net = make_cnn(1);
  std::unique_ptr<Optimizer> adam = make_adam(*net);
  train_step(*net, *adam, batch(0));
  net->named_parameters()[0].param->value[0] = std::numeric_limits<real>::quiet_NaN();
  net->named_parameters()[0].param->value[1] = std::numeric_limits<real>::infinity();
  adam->state()[0].get("exp_avg")[0] = std::numeric_limits<real>::quiet_NaN();
  save_model(*net, dir / "model.safetensors");
  save_checkpoint(*net, *adam, dir / "checkpoint.safetensors");
  const std::string first = net->named_parameters()[0].name;

  std::ostringstream captured;
  std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
  std::unique_ptr<Sequential> fresh = make_cnn(2);
  std::unique_ptr<Optimizer> fresh_adam = make_adam(*fresh);
  load_model(*fresh, dir / "model.safetensors");
  const std::string model_warning = captured.str();
  captured.str("");
  load_checkpoint(*fresh, *fresh_adam, dir / "checkpoint.safetensors");
  const std::string checkpoint_warning = captured.str();
  captured.str("");
  save_model(*make_cnn(3), dir / "clean.safetensors");
  load_model(*fresh, dir / "clean.safetensors");
  const std::string clean = captured.str();
  std::cerr.rdbuf(old);

  CHECK_THAT(model_warning, Contains("warning: load_model") && Contains("model.safetensors") &&
                                Contains("NaN or Inf in 1 tensor: " + first + " (2 of"));
  CHECK_THAT(checkpoint_warning, Contains("load_checkpoint") && Contains("2 tensors") &&
                                     Contains("model." + first + " (2 of") &&
                                     Contains("optimizer.state.0.exp_avg (1 of"));
  CHECK(clean.empty());
  CHECK(std::isnan(fresh_adam->state()[0].get("exp_avg")[0]));  // loaded all the same
}

TEST_CASE("load_optimizer / load_checkpoint: mismatches change nothing", "[io]") {
  TempDir dir;
  std::unique_ptr<Sequential> net = make_cnn(1);
  std::unique_ptr<Optimizer> adam = make_adam(*net);
  train_step(*net, *adam, batch(0));
  save_optimizer(*adam, dir / "adam.safetensors");
  save_checkpoint(*net, *adam, dir / "checkpoint.safetensors");

  SECTION("an optimizer of another class") {
    std::unique_ptr<Optimizer> sgd = make_sgd(*net);
    train_step(*net, *sgd, batch(1));
    const std::vector<real> momentum = sgd->state()[0].get("momentum_buffer").to_vector();
    CHECK_THROWS_WITH(load_optimizer(*sgd, dir / "adam.safetensors"),
                      Contains("does not match the SGD optimizer") &&
                          Contains("the file holds Adam state, the optimizer is SGD"));
    CHECK(sgd->steps() == 1);
    CHECK(sgd->state()[0].get("momentum_buffer").to_vector() == momentum);
  }
  SECTION("parameters of other shapes") {
    std::unique_ptr<Sequential> mlp = make_mlp(1);
    std::unique_ptr<Optimizer> other = make_adam(*mlp);
    CHECK_THROWS_WITH(load_optimizer(*other, dir / "adam.safetensors"),
                      Contains("state.0.exp_avg: file has (3, 1, 3, 3), parameter 0 ('weight') "
                               "has (4, 3)"));
    CHECK(other->steps() == 0);
    CHECK(other->state()[0].tensors.empty());
  }
  SECTION("a checkpoint whose optimizer part does not fit leaves the model unchanged too") {
    std::unique_ptr<Sequential> fresh = make_cnn(2);
    std::unique_ptr<Optimizer> sgd = make_sgd(*fresh);
    const auto before = snapshot(*fresh);
    CHECK_THROWS_WITH(load_checkpoint(*fresh, *sgd, dir / "checkpoint.safetensors"),
                      Contains("the file holds Adam state, the optimizer is SGD"));
    CHECK(snapshot(*fresh) == before);
  }
  SECTION("state names must be canonical: 'state.00' is not parameter 0") {
    SafetensorsFile file = read_safetensors(dir / "adam.safetensors");
    REQUIRE(file.tensors.count("state.0.exp_avg") == 1);
    file.tensors["state.00.exp_avg"] = file.tensors["state.0.exp_avg"];  // both
    write_safetensors(dir / "both.safetensors", file);
    std::unique_ptr<Optimizer> fresh = make_adam(*net);
    CHECK_THROWS_WITH(load_optimizer(*fresh, dir / "both.safetensors"),
                      Contains("unexpected tensor 'state.00.exp_avg'"));
    file.tensors.erase("state.0.exp_avg");  // only the odd name
    write_safetensors(dir / "odd.safetensors", file);
    CHECK_THROWS_WITH(load_optimizer(*fresh, dir / "odd.safetensors"),
                      Contains("unexpected tensor 'state.00.exp_avg'"));
    CHECK(fresh->steps() == 0);
  }
  SECTION("a model file is not an optimizer file") {
    save_model(*net, dir / "model.safetensors");
    std::unique_ptr<Optimizer> fresh = make_adam(*net);
    CHECK_THROWS_WITH(load_optimizer(*fresh, dir / "model.safetensors"),
                      Contains("no optimizer state in this file: its metadata has no 'name'") &&
                          Contains("unexpected tensor 'features.0.weight'"));
  }
}

// ---------------------------------------------------------------- write, then rename

TEST_CASE("Saving goes through a temporary file and a rename", "[io]") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  std::unique_ptr<Sequential> net = make_mlp(1);
  save_model(*net, path);

  SECTION("saving over a file replaces it and leaves no temporary") {
    std::unique_ptr<Sequential> other = make_mlp(2);
    save_model(*other, path);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
    load_model(*net, path);
    CHECK(snapshot(*net) == snapshot(*other));
  }
  SECTION("a save that fails leaves the previous file as it was") {
    const std::string previous = read_bytes(path);
    const Tensor t({1});
    CHECK_THROWS_WITH(save_safetensors(path, {{"a", &t}, {"a", &t}}),
                      Contains("two tensors are named 'a'"));
    CHECK(read_bytes(path) == previous);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a path in a directory that does not exist") {
    const std::string nowhere = dir / "no/such/dir/model.safetensors";
    // The message names the path asked for, the missing folder and the OS reason.
    CHECK_THROWS_WITH(save_model(*net, nowhere),
                      Contains("save_model: cannot write '" + nowhere + "'") &&
                          Contains("the folder '" + dir / "no/such/dir" + "' does not exist") &&
                          Contains("No such file"));
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  }
  SECTION("a rename that fails (the target is a directory) removes the temporary") {
    std::filesystem::create_directories(dir / "taken/inside");
    CHECK_THROWS_WITH(save_model(*net, dir / "taken"), Contains("cannot rename"));
    CHECK_THROWS_WITH(save_checkpoint(*net, SGD(net->params(), 0.1), dir / "taken"),
                      Contains("save_checkpoint: cannot write '" + dir / "taken" + "'") &&
                          Contains("cannot rename") && Contains("it is a folder"));
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors", "taken"});
  }
  SECTION("another program's \"<path>.tmp\" is not touched: each save has a temporary of its own") {
    write_bytes(path + ".tmp", "another program's half-written file");
    save_model(*net, path);
    CHECK(read_bytes(path + ".tmp") == "another program's half-written file");
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors", "model.safetensors.tmp"});
  }
}

TEST_CASE("Saving from several threads at once to one path leaves one whole checkpoint",
          "[io]") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  constexpr int kThreads = 4, kSaves = 5;
  std::vector<std::unique_ptr<Sequential>> nets;
  for (int i = 0; i < kThreads; ++i) nets.push_back(make_mlp(uint64_t(10 + i)));
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      try {
        for (int k = 0; k < kSaves; ++k) save_model(*nets[size_t(i)], path);
      } catch (const std::exception& e) {
        errors[size_t(i)] = e.what();
      }
    });
  for (std::thread& t : threads) t.join();
  CHECK(errors == std::vector<std::string>(kThreads));  // no save failed
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});  // no temporary left
  std::unique_ptr<Sequential> loaded = make_mlp(99);
  load_model(*loaded, path);  // a whole file: it loads
  int matches = 0;
  for (const auto& net : nets) matches += snapshot(*loaded) == snapshot(*net);
  CHECK(matches == 1);  // and it is one of the models, not a mix
}
