// gradcheck.h — prove a backward pass right, numerically.
//
// For a layer y = f(x; params), pick a fixed random tensor R shaped like y and
// the scalar L = sum(y * R). Then dL/dy = R, so one backward(R) gives the
// analytic dL/dx and dL/dparams. Each is compared with the central difference
//     dL/dv ~ (L(v + eps) - L(v - eps)) / (2 eps)
// for every element v of x and of every parameter (or a random sample of them,
// see max_entries). The error of one entry is
//     |analytic - numeric| / max(|analytic|, |numeric|, floor)
// and the check passes when the worst error is below the tolerance.
//
// It also checks the Layer contract (layer.h):
//   * dx is overwritten: every layer fills dx (and y) with NaN before computing
//     them during the check, so an element backward forgot shows up as NaN;
//     a second backward must give the same dx;
//   * parameter gradients accumulate: the second backward must double them.
// dx is checked when the layer computes it, i.e. when layer.input_grad() is
// on (the default). After set_input_grad(false) only the parameters are
// checked, and backward must return an empty dx.
//
// Use double precision for a meaningful check (the tests build byhand with
// -DBYHAND_DOUBLE; a relative error near 1e-6 is demanded). In a float build
// the defaults loosen to what float can resolve. Keep inputs away from kinks
// (ReLU at 0, max-pool ties): a finite difference across a kink measures
// nothing. kink_free_uniform() makes such inputs.
//
//   GradcheckResult r = gradcheck(my_layer, x);
//   if (!r.passed) std::cerr << r.report();
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "byhand/layer.h"
#include "byhand/random.h"

namespace byhand {

struct GradcheckOptions {
  double eps = sizeof(real) == 8 ? 1e-5 : 1e-2;        // finite-difference step
  double tolerance = sizeof(real) == 8 ? 1e-6 : 3e-2;  // worst relative error allowed
  double floor = sizeof(real) == 8 ? 1e-3 : 1e-2;      // denominator floor for tiny gradients
  uint64_t seed = 1234;         // for R and for sampling entries
  int64_t max_entries = 0;      // per tensor; 0 = check every entry
  // Called before every forward, e.g. to reseed a Dropout so each forward
  // draws the same mask.
  std::function<void()> before_forward;
};

struct GradcheckResult {
  bool passed = true;
  int64_t entries_checked = 0;
  double worst_error = 0;       // worst relative error seen
  std::string worst_where;      // e.g. "weight[3, 1]" or "x[0, 2]"
  double worst_analytic = 0, worst_numeric = 0;
  std::vector<std::string> problems;  // contract violations and failing entries (first few)
  std::string report() const;
  explicit operator bool() const { return passed; }
};

GradcheckResult gradcheck(Layer& layer, const Tensor& x, const GradcheckOptions& opts = {});

// The same check for any scalar function of one tensor, e.g. a loss:
//   value(x) returns the scalar, grad(x) its analytic gradient (shape of x).
GradcheckResult gradcheck_scalar(const std::function<double(const Tensor&)>& value,
                                 const std::function<Tensor(const Tensor&)>& grad,
                                 const Tensor& x, const GradcheckOptions& opts = {});

// Uniform values with |v| in [min_abs, max_abs] and random sign: at least
// min_abs away from 0, where ReLU-like functions have their kink.
Tensor kink_free_uniform(const Shape& shape, Rng& rng, double min_abs = 0.1, double max_abs = 1.0);

// "(1, 2)" style index of a flat position, for messages.
std::string index_string(const Shape& shape, int64_t flat);

}  // namespace byhand
