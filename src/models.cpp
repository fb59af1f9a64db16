// models.cpp — the shared networks (models.h). Shape comments are for one
// (N, 1, 28, 28) batch.
#include "byhand/models.h"

#include <stdexcept>

#include "byhand/layers/activation.h"
#include "byhand/layers/batchnorm.h"
#include "byhand/layers/conv2d.h"
#include "byhand/layers/flatten.h"
#include "byhand/layers/linear.h"
#include "byhand/layers/pooling.h"

namespace byhand::models {

std::unique_ptr<Sequential> mlp(const std::vector<int64_t>& hidden, const std::string& activation) {
  if (activation != "relu" && activation != "sigmoid" && activation != "tanh")
    throw std::invalid_argument("mlp: activation must be relu, sigmoid or tanh, got '" +
                                activation + "'");
  auto net = std::make_unique<Sequential>();
  net->add<Flatten>();                       // (N, 1, 28, 28) -> (N, 784)
  int64_t width = 28 * 28;
  for (int64_t h : hidden) {
    net->add<Linear>(width, h);              // (N, width) -> (N, h)
    if (activation == "relu") net->add<ReLU>();
    else if (activation == "sigmoid") net->add<Sigmoid>();
    else net->add<Tanh>();
    width = h;
  }
  net->add<Linear>(width, 10);               // (N, width) -> (N, 10): one score per class
  return net;
}

// A "features" part that looks at the image and a "classifier" part that
// decides, as in torchvision's models.
std::unique_ptr<Sequential> lenet5(int64_t conv2_channels) {
  auto features = std::make_unique<Sequential>();
  features->add<Conv2d>(1, 6, 5, 1, 2);                // -> (N, 6, 28, 28): pad 2 keeps 28x28
  features->add<BatchNorm2d>(6);                       // normalise each of the 6 channels
  features->add<ReLU>();
  features->add<MaxPool2d>(2);                         // -> (N, 6, 14, 14)
  features->add<Conv2d>(6, conv2_channels, 5);         // -> (N, 16, 10, 10)
  features->add<BatchNorm2d>(conv2_channels);
  features->add<ReLU>();
  features->add<MaxPool2d>(2);                         // -> (N, 16, 5, 5)

  auto classifier = std::make_unique<Sequential>();
  classifier->add<Flatten>();                          // -> (N, 400)
  classifier->add<Linear>(conv2_channels * 5 * 5, 120);
  classifier->add<ReLU>();
  classifier->add<Linear>(120, 84);
  classifier->add<ReLU>();
  classifier->add<Linear>(84, 10);                     // -> (N, 10) class scores

  auto net = std::make_unique<Sequential>();
  net->add("features", std::move(features));
  net->add("classifier", std::move(classifier));
  return net;
}

}  // namespace byhand::models
