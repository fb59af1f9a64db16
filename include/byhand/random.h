// random.h — one small, portable random number generator.
//
// Reproducibility is a promise of byhand: one seed fixes the data order, the
// initial weights and every dropout mask, on every compiler and platform. The
// C++ standard fixes std::mt19937's bit stream but not what
// std::normal_distribution or std::shuffle do with it, so byhand draws its own
// numbers from xoshiro256** (Blackman & Vigna) and turns them into uniforms,
// normals and permutations with formulas written out here.
//
// How exactly the same: next_u64(), below() and shuffle() are integer arithmetic,
// and uniform() adds only exactly rounded IEEE double operations, so uniform
// draws are the same to the last bit everywhere (short of -ffast-math, or a
// compiler fusing uniform(lo, hi)'s multiply and add, which GCC does not in
// its standard -std=c++17 mode). normal() goes through std::log, std::sin and
// std::cos, which no standard requires to be correctly rounded: normal draws
// agree everywhere up to the math library's rounding of those.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "byhand/hd.h"

namespace byhand {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  // Spread the seed over the 256-bit state with splitmix64, as the authors advise.
  void reseed(uint64_t seed) {
    uint64_t z = seed;
    for (auto& s : s_) {
      z += 0x9e3779b97f4a7c15ULL;
      uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
      x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
      s = x ^ (x >> 31);
    }
    has_spare_ = false;
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Standard normal by the Box–Muller transform; the second value is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1;
    do u1 = uniform(); while (u1 <= 0.0);
    double u2 = uniform();
    double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }
  double normal(double mean, double std) { return mean + std * normal(); }

  // Integer in [0, n), without modulo bias (Lemire's method).
  uint64_t below(uint64_t n) {
    __uint128_t m = __uint128_t(next_u64()) * n;
    uint64_t low = uint64_t(m);
    if (low < n) {
      uint64_t threshold = -n % n;
      while (low < threshold) {
        m = __uint128_t(next_u64()) * n;
        low = uint64_t(m);
      }
    }
    return uint64_t(m >> 64);
  }

  // The whole state, to save in a checkpoint and restore (resume.h): the
  // four state words, and Box–Muller's kept value. A generator restored
  // from state() goes on with exactly the numbers the original would draw.
  struct State {
    uint64_t s[4];
    bool has_spare;
    double spare;
  };
  State state() const { return {{s_[0], s_[1], s_[2], s_[3]}, has_spare_, spare_}; }
  void set_state(const State& st) {
    for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
    has_spare_ = st.has_spare;
    spare_ = st.spare;
  }

  // Fisher–Yates shuffle, the same permutation everywhere for the same seed.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = size_t(below(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

// The default generator, like PyTorch's: layers draw their initial weights from
// it unless given another. manual_seed(s) resets it (torch.manual_seed).
Rng& global_rng();
void manual_seed(uint64_t seed);

// Counter-based draws: the i-th number of the stream named `key`, an integer
// in [0, 2^53) (times 2^-53: a uniform in [0, 1), as Rng::uniform), computed
// from (key, i) alone. Any element, in any order, on any thread, on the CPU
// or in a GPU kernel (hd.h), gets the same number. Dropout draws one key per
// forward from its generator and element i's mask from (key, i), so one seed
// gives the same masks on the CPU and the GPU. The mix is splitmix64's (as in
// reseed above): a strong function of a counter stepped by the golden ratio.
BYHAND_HD uint64_t counter_draw53(uint64_t key, uint64_t i) {
  uint64_t x = key + (i + 1) * 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return (x ^ (x >> 31)) >> 11;
}

}  // namespace byhand
