// fuzz_model.h — the small model and optimizer whose files seed and drive
// fuzz_safetensors (make_seeds.cpp writes them; the target loads into them):
// a Linear, a BatchNorm1d (running statistics and its I64 counter) and Adam
// (per-parameter state and step counts), so that a mutated file that keeps
// the names reaches every check of load_model and load_checkpoint.
#pragma once

#include <memory>

#include "byhand/layers/batchnorm.h"
#include "byhand/layers/linear.h"
#include "byhand/optim.h"
#include "byhand/sequential.h"

namespace fuzz {

struct SmallModel {
  std::unique_ptr<byhand::Sequential> net = std::make_unique<byhand::Sequential>();
  std::unique_ptr<byhand::Adam> adam;
  SmallModel() {
    net->add_named<byhand::Linear>("fc", 4, 3);
    net->add_named<byhand::BatchNorm1d>("bn", 3);
    adam = std::make_unique<byhand::Adam>(net->params(), 1e-3);
  }
};

}  // namespace fuzz
