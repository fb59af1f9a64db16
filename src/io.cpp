// io.cpp — models and optimizers in safetensors files (see io.h; the format
// itself is safetensors.h/.cpp).
//
// Reading top to bottom: a model's tensors by name; staging, which reads and
// checks everything a file holds into temporaries, collecting every problem
// into one error, before anything is copied in; the optimizer's state and
// metadata, staged the same way; then the public functions, each a few lines
// that put the stages together.
#include "byhand/io.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <stdexcept>

namespace byhand {

// ---------------------------------------------------------------- staging

namespace {

// What a load found wrong; all of it goes into one error message.
class Problems {
 public:
  void add(std::string problem) { list_.push_back(std::move(problem)); }
  // One line per problem, the first kMaxListed of them.
  void throw_if_any(const std::string& intro) const {
    if (list_.empty()) return;
    std::string message = intro + " (" + std::to_string(list_.size()) +
                          (list_.size() == 1 ? " problem):" : " problems):");
    for (size_t i = 0; i < list_.size() && i < kMaxListed; ++i) message += "\n  " + list_[i];
    if (list_.size() > kMaxListed)
      message += "\n  ... and " + std::to_string(list_.size() - kMaxListed) + " more";
    throw std::runtime_error(message);
  }

 private:
  static constexpr size_t kMaxListed = 20;
  std::vector<std::string> list_;
};

// A checked value waiting to be copied into the model.
struct PendingCopy {
  Tensor* target;
  Tensor value;
  std::string key;  // its name in the file
};

// A checked optimizer state waiting to be put in place.
struct PendingOptimizer {
  std::vector<ParamState> state;
  int64_t steps = 0;
  std::vector<double> lrs;  // per group
};

}  // namespace


static bool is_float(const std::string& dtype) { return dtype == "F32" || dtype == "F64"; }

static void add_tensor(SafetensorsFile& file, const std::string& name, SafeTensor t) {
  if (!file.tensors.emplace(name, std::move(t)).second)
    throw std::invalid_argument("save: two tensors are named '" + name + "'");
}

static void add_named_tensor(SafetensorsFile& file, const std::string& name, const Tensor& t) {
  add_tensor(file, name, encode_tensor(t, is_counter_name(name) ? "I64" : real_dtype()));
}

// Every tensor a model saves, in module order, with its full name.
static std::vector<std::pair<std::string, Tensor*>> model_tensors(Layer& model) {
  std::vector<std::pair<std::string, Tensor*>> tensors;
  for (const NamedParam& p : model.named_parameters())
    tensors.emplace_back(p.name, &p.param->value);
  for (const NamedBuffer& b : model.named_buffers())
    tensors.emplace_back(b.name, &b.buffer->value);
  return tensors;
}

static void add_model(SafetensorsFile& file, Layer& model, const std::string& prefix) {
  for (const auto& [name, tensor] : model_tensors(model))
    add_named_tensor(file, prefix + name, *tensor);
}

// Checks the file's tensors prefix + <name> against the model's; records the
// names it used and the problems it found.
static std::vector<PendingCopy> stage_model(Layer& model, const SafetensorsFile& file,
                                            const std::string& prefix, std::set<std::string>& used,
                                            Problems& problems) {
  std::vector<PendingCopy> copies;
  for (const auto& [name, target] : model_tensors(model)) {
    const std::string key = prefix + name;
    const auto it = file.tensors.find(key);
    if (it == file.tensors.end()) {
      problems.add("missing tensor '" + key + "'");
      continue;
    }
    used.insert(key);
    const SafeTensor& t = it->second;
    const bool counter = is_counter_name(name);
    if (counter ? t.dtype != "I64" : !is_float(t.dtype)) {
      problems.add(key + ": dtype " + t.dtype + " is not supported (expected " +
                   (counter ? "I64" : "F32 or F64") + ")");
    } else if (t.shape != target->shape().dims()) {
      problems.add(key + ": file has " + shape_str(t.shape) + ", model has " +
                   target->shape().str());
    } else {
      copies.push_back({target, decode_tensor(t), key});
    }
  }
  return copies;
}

static void report_unexpected(const SafetensorsFile& file, const std::set<std::string>& used,
                              Problems& problems) {
  for (const auto& item : file.tensors)
    if (used.count(item.first) == 0) problems.add("unexpected tensor '" + item.first + "'");
}

// A checkpoint with NaN or Inf in it loads (it is what the run saved, and
// the values may be wanted for a post-mortem), but not silently: a warning on
// stderr names each such tensor and how many of its values are not finite.
// Training from it stops at its first step (fit's NaN check).
static int64_t count_nonfinite(const Tensor& t) {
  int64_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += !std::isfinite(double(t[i]));
  return n;
}
static void warn_nonfinite(const std::string& who, const std::string& path,
                           const std::vector<PendingCopy>& copies,
                           const PendingOptimizer* optimizer = nullptr,
                           const std::string& optimizer_prefix = "") {
  std::string list;
  int tensors = 0;
  auto note = [&](const std::string& key, const Tensor& t) {
    if (const int64_t bad = count_nonfinite(t)) {
      list += (tensors++ ? ", " : "") + key + " (" + std::to_string(bad) + " of " +
              std::to_string(t.numel()) + ")";
    }
  };
  for (const PendingCopy& c : copies) note(c.key, c.value);
  if (optimizer)
    for (size_t k = 0; k < optimizer->state.size(); ++k)
      for (const auto& nt : optimizer->state[k].tensors)
        note(optimizer_prefix + "state." + std::to_string(k) + "." + nt.name, nt.value);
  if (tensors)
    std::cerr << "warning: " << who << ": '" << path << "' holds NaN or Inf in " << tensors
              << (tensors == 1 ? " tensor: " : " tensors: ") << list
              << "; training from it stops at its first step\n";
}

static void apply(std::vector<PendingCopy>& copies) {
  // Into the model's own buffers, on the device they are on (same shape: no
  // allocation); a model on the GPU loads there.
  for (PendingCopy& c : copies) c.target->copy_from(c.value, c.target->device());
}

// ---------------------------------------------------------------- optimizer state

// The shortest decimal that reads back as the same double.
static std::string exact_decimal(double x) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

static bool parse_int64(const std::string& s, int64_t& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0) return false;
  out = v;
  return true;
}

static bool parse_double(const std::string& s, double& out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

static std::vector<const Param*> optimizer_params(const Optimizer& opt) {
  std::vector<const Param*> params;
  for (const ParamGroup& g : opt.param_groups())
    params.insert(params.end(), g.params.begin(), g.params.end());
  return params;
}

static void add_optimizer(SafetensorsFile& file, const Optimizer& opt, const std::string& prefix) {
  file.metadata[prefix + "name"] = opt.name();
  file.metadata[prefix + "steps"] = std::to_string(opt.steps());
  const std::vector<ParamGroup>& groups = opt.param_groups();
  file.metadata[prefix + "groups"] = std::to_string(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group = prefix + "group." + std::to_string(g) + ".";
    file.metadata[group + "params"] = std::to_string(groups[g].params.size());
    file.metadata[group + "lr"] = exact_decimal(groups[g].lr);
    file.metadata[group + "weight_decay"] = exact_decimal(groups[g].weight_decay);
  }
  const std::vector<ParamState>& state = opt.state();
  for (size_t k = 0; k < state.size(); ++k) {
    const std::string param = prefix + "state." + std::to_string(k) + ".";
    add_tensor(file, param + "step", int64_scalar(state[k].step));
    for (const StateTensor& t : state[k].tensors)
      add_tensor(file, param + t.name, encode_tensor(t.value, real_dtype()));
  }
}

// Reads and checks the metadata: name, steps, the groups and their lr.
// Returns false when there is no optimizer in the file at all (no name).
static bool stage_optimizer_metadata(const Optimizer& opt, const SafetensorsFile& file,
                                     const std::string& prefix, PendingOptimizer& pending,
                                     Problems& problems) {
  auto meta = [&](const std::string& key) -> const std::string* {
    const auto it = file.metadata.find(prefix + key);
    if (it != file.metadata.end()) return &it->second;
    problems.add("no optimizer metadata '" + prefix + key + "'");
    return nullptr;
  };
  const auto name = file.metadata.find(prefix + "name");
  if (name == file.metadata.end()) {
    problems.add("no optimizer state in this file: its metadata has no '" + prefix +
                 "name' (a model file?)");
    return false;
  }
  if (name->second != opt.name())
    problems.add("the file holds " + name->second + " state, the optimizer is " + opt.name());
  if (const std::string* steps = meta("steps");
      steps && (!parse_int64(*steps, pending.steps) || pending.steps < 0))
    problems.add("optimizer metadata '" + prefix + "steps' is not a step count: \"" + *steps +
                 "\"");

  const std::vector<ParamGroup>& groups = opt.param_groups();
  int64_t file_groups = 0;
  const std::string* groups_text = meta("groups");
  if (!groups_text) return true;
  if (!parse_int64(*groups_text, file_groups) || file_groups != int64_t(groups.size())) {
    problems.add("the file has " + *groups_text + " parameter groups, the optimizer has " +
                 std::to_string(groups.size()));
    return true;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group = "group." + std::to_string(g) + ".";
    const std::string* params = meta(group + "params");
    const std::string* lr = meta(group + "lr");
    const std::string* weight_decay = meta(group + "weight_decay");
    int64_t count = 0;
    double value = 0;
    if (params && (!parse_int64(*params, count) || count != int64_t(groups[g].params.size())))
      problems.add("group " + std::to_string(g) + ": the file has " + *params +
                   " parameters, the optimizer has " + std::to_string(groups[g].params.size()));
    if (lr && (!parse_double(*lr, value) || value < 0))
      problems.add("group " + std::to_string(g) + ": invalid lr \"" + *lr + "\"");
    pending.lrs.push_back(value);
    if (weight_decay && (!parse_double(*weight_decay, value) || value != groups[g].weight_decay))
      problems.add("group " + std::to_string(g) + ": the file has weight_decay " + *weight_decay +
                   ", the optimizer has " + exact_decimal(groups[g].weight_decay));
  }
  return true;
}

// Splits "<k>.<rest>" into k and rest; false when it is not of that form.
// The index must be written as save_optimizer writes it, std::to_string's
// canonical digits: "state.00.exp_avg" or "state.+0.exp_avg" would otherwise
// be taken as parameter 0's too, and a file holding both would load one over
// the other. Such names are reported as unexpected tensors.
static bool split_param_index(const std::string& s, size_t& k, std::string& rest) {
  const size_t dot = s.find('.');
  int64_t index = 0;
  if (dot == std::string::npos || dot == 0 || s.find_first_not_of("0123456789") != dot ||
      !parse_int64(s.substr(0, dot), index) || s.substr(0, dot) != std::to_string(index))
    return false;
  k = size_t(index);
  rest = s.substr(dot + 1);
  return !rest.empty();
}

static PendingOptimizer stage_optimizer(const Optimizer& opt, const SafetensorsFile& file,
                                        const std::string& prefix, std::set<std::string>& used,
                                        Problems& problems) {
  PendingOptimizer pending;
  if (!stage_optimizer_metadata(opt, file, prefix, pending, problems)) return pending;
  const std::vector<const Param*> params = optimizer_params(opt);
  pending.state.resize(params.size());

  for (size_t k = 0; k < params.size(); ++k) {
    const std::string key = prefix + "state." + std::to_string(k) + ".step";
    const auto it = file.tensors.find(key);
    if (it == file.tensors.end()) {
      problems.add("missing tensor '" + key + "'");
      continue;
    }
    used.insert(key);
    const SafeTensor& t = it->second;
    int64_t step = -1;
    if (!int64_scalar_value(t, step) || step < 0)
      problems.add(key + ": expected a step count (an I64 scalar >= 0), the file has " + t.dtype +
                   " " + shape_str(t.shape));
    else
      pending.state[k].step = step;
  }

  const std::string state_prefix = prefix + "state.";
  for (const auto& [key, t] : file.tensors) {
    size_t k = 0;
    std::string name;
    if (key.compare(0, state_prefix.size(), state_prefix) != 0 ||
        !split_param_index(key.substr(state_prefix.size()), k, name) || k >= params.size() ||
        name == "step")
      continue;  // not a state tensor of this optimizer: reported as unexpected
    used.insert(key);
    if (!is_float(t.dtype))
      problems.add(key + ": dtype " + t.dtype + " is not supported (expected F32 or F64)");
    else if (t.shape != params[k]->value.shape().dims())
      problems.add(key + ": file has " + shape_str(t.shape) + ", parameter " + std::to_string(k) +
                   " ('" + params[k]->name + "') has " + params[k]->value.shape().str());
    else if (pending.state[k].step == 0)
      problems.add(key + ": state for a parameter that has not been updated (step 0)");
    else
      pending.state[k].tensors.push_back({name, decode_tensor(t)});
  }
  return pending;
}

static void apply(Optimizer& opt, PendingOptimizer& pending) {
  opt.state() = std::move(pending.state);
  opt.set_steps(pending.steps);
  for (size_t g = 0; g < pending.lrs.size(); ++g) opt.set_lr(g, pending.lrs[g]);
}

// ---------------------------------------------------------------- the public functions

void save_model(Layer& model, const std::string& path) {
  SafetensorsFile file;
  add_model(file, model, "");
  write_safetensors(path, file, "save_model");
}

void load_model(Layer& model, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Problems problems;
  std::set<std::string> used;
  std::vector<PendingCopy> copies = stage_model(model, file, "", used, problems);
  report_unexpected(file, used, problems);
  problems.throw_if_any("load_model: '" + path + "' does not match the model");
  warn_nonfinite("load_model", path, copies);
  apply(copies);
}

void save_optimizer(const Optimizer& optimizer, const std::string& path) {
  SafetensorsFile file;
  add_optimizer(file, optimizer, "");
  write_safetensors(path, file, "save_optimizer");
}

void load_optimizer(Optimizer& optimizer, const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  Problems problems;
  std::set<std::string> used;
  PendingOptimizer pending = stage_optimizer(optimizer, file, "", used, problems);
  report_unexpected(file, used, problems);
  problems.throw_if_any("load_optimizer: '" + path + "' does not match the " + optimizer.name() +
                        " optimizer");
  warn_nonfinite("load_optimizer", path, {}, &pending);
  apply(optimizer, pending);
}

void add_checkpoint(SafetensorsFile& file, Layer& model, const Optimizer& optimizer) {
  add_model(file, model, "model.");
  add_optimizer(file, optimizer, "optimizer.");
}

void save_checkpoint(Layer& model, const Optimizer& optimizer, const std::string& path) {
  SafetensorsFile file;
  add_checkpoint(file, model, optimizer);
  write_safetensors(path, file, "save_checkpoint");
}

void load_checkpoint(Layer& model, Optimizer& optimizer, const SafetensorsFile& file,
                     const std::string& path, const std::string& others_prefix,
                     const std::vector<std::string>& more_problems) {
  Problems problems;
  std::set<std::string> used;
  std::vector<PendingCopy> copies = stage_model(model, file, "model.", used, problems);
  PendingOptimizer pending = stage_optimizer(optimizer, file, "optimizer.", used, problems);
  if (!others_prefix.empty())
    for (const auto& item : file.tensors)
      if (item.first.compare(0, others_prefix.size(), others_prefix) == 0) used.insert(item.first);
  report_unexpected(file, used, problems);
  for (const std::string& p : more_problems) problems.add(p);
  problems.throw_if_any("load_checkpoint: '" + path + "' does not match the model and " +
                        optimizer.name() + " optimizer");
  warn_nonfinite("load_checkpoint", path, copies, &pending, "optimizer.");
  apply(copies);
  apply(optimizer, pending);
}

void load_checkpoint(Layer& model, Optimizer& optimizer, const std::string& path) {
  load_checkpoint(model, optimizer, read_safetensors(path), path, "");
}

}  // namespace byhand

