// gradcheck.cpp — the numerical gradient check (gradcheck.h).
#include "byhand/gradcheck.h"

#include <cmath>
#include <sstream>

#include "byhand/nan_guard.h"

namespace byhand {

std::string index_string(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(size_t(shape.rank()));
  for (int d = shape.rank() - 1; d >= 0; --d) {
    idx[size_t(d)] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

Tensor kink_free_uniform(const Shape& shape, Rng& rng, double min_abs, double max_abs) {
  Tensor t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = rng.uniform(min_abs, max_abs);
    t[i] = real(rng.uniform() < 0.5 ? -v : v);
  }
  return t;
}

std::string GradcheckResult::report() const {
  std::ostringstream os;
  os << (passed ? "gradcheck passed" : "gradcheck FAILED") << ": " << entries_checked
     << " entries, worst relative error " << worst_error;
  if (!worst_where.empty())
    os << " at " << worst_where << " (analytic " << worst_analytic << ", numeric " << worst_numeric
       << ")";
  os << "\n";
  for (auto& p : problems) os << "  - " << p << "\n";
  return os.str();
}

namespace {

// Sets Layer::nan_fill for the lifetime of the check, restoring it after.
struct NanFillScope {
  bool old = Layer::nan_fill();
  NanFillScope() { Layer::set_nan_fill(true); }
  ~NanFillScope() { Layer::set_nan_fill(old); }
};

constexpr size_t kMaxProblems = 8;

void add_problem(GradcheckResult& r, const std::string& what) {
  r.passed = false;
  if (r.problems.size() < kMaxProblems) r.problems.push_back(what);
}

// Which entries of a tensor of n elements to check.
std::vector<int64_t> entries_to_check(int64_t n, int64_t max_entries, Rng& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
  if (max_entries > 0 && n > max_entries) {
    rng.shuffle(all);
    all.resize(size_t(max_entries));
  }
  return all;
}

// Compare analytic[i] with the central difference of L over value[i] for the
// chosen entries; L() recomputes the scalar from the current values.
void compare_entries(GradcheckResult& r, const std::string& label, Tensor& value,
                     const Tensor& analytic, const std::function<double()>& L,
                     const GradcheckOptions& opts, Rng& rng) {
  for (int64_t i : entries_to_check(value.numel(), opts.max_entries, rng)) {
    const real saved = value[i];
    value[i] = real(saved + opts.eps);
    const double plus = L();
    value[i] = real(saved - opts.eps);
    const double minus = L();
    value[i] = saved;
    // The step actually taken, after rounding to real.
    const double step = double(real(saved + opts.eps)) - double(real(saved - opts.eps));
    const double numeric = (plus - minus) / step;
    const double a = analytic[i];
    const double denom = std::max({std::fabs(a), std::fabs(numeric), opts.floor});
    const double err = std::fabs(a - numeric) / denom;
    ++r.entries_checked;
    const std::string where = label + index_string(value.shape(), i);
    if (!(err <= r.worst_error) || r.worst_where.empty()) {  // NaN counts as worst
      if (!(err <= r.worst_error)) r.worst_error = std::isnan(err) ? INFINITY : err;
      r.worst_where = where;
      r.worst_analytic = a;
      r.worst_numeric = numeric;
    }
    if (!(err <= opts.tolerance)) {
      std::ostringstream os;
      os << where << ": analytic " << a << " vs numeric " << numeric << " (relative error " << err
         << ")";
      add_problem(r, os.str());
    }
  }
}

}  // namespace

GradcheckResult gradcheck(Layer& layer, const Tensor& x_in, const GradcheckOptions& opts) {
  NanFillScope nan_fill;
  GradcheckResult r;
  Rng rng(opts.seed);
  Tensor x = x_in;
  auto run_forward = [&]() -> const Tensor& {
    if (opts.before_forward) opts.before_forward();
    return layer.forward(x);
  };

  // R, the fixed weights of L = sum(y * R).
  const Tensor& y0 = run_forward();
  if (int64_t i = first_nonfinite(y0); i >= 0)
    add_problem(r, "forward left y" + index_string(y0.shape(), i) +
                       " unwritten or not finite (y is NaN-filled before forward)");
  Tensor R(y0.shape());
  for (int64_t i = 0; i < R.numel(); ++i) R[i] = real(rng.normal());
  auto L = [&]() {
    const Tensor& y = run_forward();
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += double(y[i]) * double(R[i]);
    return s;
  };

  // Analytic gradients from one backward, parameter gradients starting at 0.
  std::vector<Param*> params;
  std::vector<std::string> names;  // state_dict names, e.g. "0.weight"
  for (auto& np : layer.named_parameters()) {
    params.push_back(np.param);
    names.push_back(np.name);
  }
  for (Param* p : params) p->grad.zero();
  run_forward();
  Tensor dx1 = layer.backward(R);
  std::vector<Tensor> grads1;
  for (Param* p : params) grads1.push_back(p->grad);

  // dx exists only when the layer is asked for it (layer.h, set_input_grad).
  const bool want_dx = layer.input_grad();
  if (want_dx) {
    check_shape(layer.who() + " gradcheck", "dx", x.shape(), dx1.shape());
    if (int64_t i = first_nonfinite(dx1); i >= 0)
      add_problem(r, "backward did not write dx" + index_string(dx1.shape(), i) +
                         " (dx is NaN-filled before backward: it must be overwritten)");
  } else if (dx1.numel() != 0) {
    add_problem(r, "input_grad is off, yet backward returned a dx of shape " +
                       dx1.shape().str() + ": it must return an empty tensor");
  }

  // Contract: a second backward overwrites dx (same values) and accumulates
  // parameter gradients (twice the values).
  Tensor dx2 = layer.backward(R);
  if (want_dx)
    for (int64_t i = 0; i < dx1.numel(); ++i)
      if (!(dx2[i] == dx1[i])) {
        add_problem(r, "a second backward changed dx" + index_string(dx1.shape(), i) +
                           ": dx must be overwritten, not accumulated");
        break;
      }
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& g1 = grads1[k];
    const Tensor& g2 = params[k]->grad;
    for (int64_t i = 0; i < g1.numel(); ++i) {
      double expect = 2.0 * double(g1[i]);
      if (!(std::fabs(double(g2[i]) - expect) <= 1e-5 * std::max(1.0, std::fabs(expect)))) {
        add_problem(r, "parameter " + names[k] + " gradient" +
                           index_string(g1.shape(), i) + " is " + std::to_string(double(g2[i])) +
                           " after two backwards, expected twice " + std::to_string(g1[i]) +
                           ": parameter gradients must accumulate (+=)");
        break;
      }
    }
  }

  // Numeric gradients.
  if (want_dx) compare_entries(r, "x", x, dx1, L, opts, rng);
  for (size_t k = 0; k < params.size(); ++k)
    compare_entries(r, names[k], params[k]->value, grads1[k], L, opts, rng);
  for (size_t k = 0; k < params.size(); ++k) params[k]->grad = grads1[k];
  return r;
}

GradcheckResult gradcheck_scalar(const std::function<double(const Tensor&)>& value,
                                 const std::function<Tensor(const Tensor&)>& grad,
                                 const Tensor& x_in, const GradcheckOptions& opts) {
  GradcheckResult r;
  Rng rng(opts.seed);
  Tensor x = x_in;
  Tensor analytic = grad(x);
  check_shape("gradcheck_scalar", "gradient", x.shape(), analytic.shape());
  if (int64_t i = first_nonfinite(analytic); i >= 0)
    add_problem(r, "gradient" + index_string(analytic.shape(), i) + " is not finite");
  compare_entries(r, "x", x, analytic, [&] { return value(x); }, opts, rng);
  return r;
}

}  // namespace byhand
