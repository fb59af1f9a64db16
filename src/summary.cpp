// summary.cpp — the model summary table (summary.h).
#include "byhand/summary.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace byhand {

namespace {

struct Row {
  std::string path, type, shape;
  int64_t params;
};

int depth_of(const std::string& path) {
  return 1 + int(std::count(path.begin(), path.end(), '.'));
}

}  // namespace

std::string summary(Layer& model, const Shape& input, int max_depth) {
  // One forward on zeros, in eval mode (batch norm then needs no batch
  // statistics, so even one image works), to read every layer's output.
  const bool was_training = model.training();
  model.eval();
  try {
    model.forward(Tensor(input));
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);

  std::vector<Row> rows;
  for (auto& [path, layer] : named_modules(model)) {
    if (path.empty()) continue;  // the model itself: its total closes the table
    const int depth = depth_of(path);
    if (max_depth >= 0 && depth > max_depth) continue;
    rows.push_back({path, std::string(2 * size_t(depth - 1), ' ') + layer->name(),
                    layer->output().shape().str(), layer->num_parameters()});
  }
  if (rows.empty())  // a single layer: one row for it
    rows.push_back({"-", model.name(), model.output().shape().str(), model.num_parameters()});

  size_t wp = 5, wt = 4, ws = 12;
  for (auto& r : rows) {
    wp = std::max(wp, r.path.size());
    wt = std::max(wt, r.type.size());
    ws = std::max(ws, r.shape.size());
  }
  std::string out;
  char line[1024];
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10s\n", int(wp), "layer", int(wt), "type",
                int(ws), "output shape", "params");
  out += line;
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10s\n", int(wp), "", int(wt), "", int(ws),
                input.str().c_str(), "(input)");
  out += line;
  for (auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10lld\n", int(wp), r.path.c_str(),
                  int(wt), r.type.c_str(), int(ws), r.shape.c_str(), (long long)r.params);
    out += line;
  }
  const int64_t total = model.num_parameters();
  if (total * 4 >= (int64_t(1) << 20))
    std::snprintf(line, sizeof line, "total parameters: %lld (%.1f MiB as float)\n",
                  (long long)total, double(total) * 4.0 / (1024.0 * 1024.0));
  else
    std::snprintf(line, sizeof line, "total parameters: %lld (%.1f KiB as float)\n",
                  (long long)total, double(total) * 4.0 / 1024.0);
  out += line;
  return out;
}

}  // namespace byhand
