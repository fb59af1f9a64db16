// summary.cpp — the model summary table (summary.h).
#include "byhand/summary.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "byhand/sequential.h"

namespace byhand {

namespace {

struct Row {
  std::string path, type, shape;
  int64_t params;
};

// Walks into Sequential containers; any other layer (a block included) is one
// row, its parameters counted with all of its sub-layers'.
Shape collect(Layer& layer, const std::string& path, const Shape& in, std::vector<Row>& rows) {
  if (auto* seq = dynamic_cast<Sequential*>(&layer)) {
    Shape s = in;
    for (auto& c : seq->children())
      s = collect(*c.second, path.empty() ? c.first : path + "." + c.first, s, rows);
    return s;
  }
  Shape out = layer.output_shape(in);
  rows.push_back({path.empty() ? "-" : path, layer.name(), out.str(), layer.num_parameters()});
  return out;
}

}  // namespace

std::string summary(Layer& model, const Shape& input) {
  std::vector<Row> rows;
  collect(model, "", input, rows);
  size_t wp = 5, wt = 4, ws = 12;
  for (auto& r : rows) {
    wp = std::max(wp, r.path.size());
    wt = std::max(wt, r.type.size());
    ws = std::max(ws, r.shape.size());
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10s\n", int(wp), "layer", int(wt), "type",
                int(ws), "output shape", "params");
  out += line;
  std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10s\n", int(wp), "", int(wt), "", int(ws),
                input.str().c_str(), "(input)");
  out += line;
  int64_t total = 0;
  for (auto& r : rows) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %10lld\n", int(wp), r.path.c_str(),
                  int(wt), r.type.c_str(), int(ws), r.shape.c_str(), (long long)r.params);
    out += line;
    total += r.params;
  }
  std::snprintf(line, sizeof line, "total parameters: %lld (%.1f KiB as float)\n",
                (long long)total, double(total) * 4.0 / 1024.0);
  out += line;
  return out;
}

}  // namespace byhand
