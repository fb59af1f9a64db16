// random.cpp — the default generator (random.h).
#include "byhand/random.h"

namespace byhand {

Rng& global_rng() {
  static Rng rng(0);
  return rng;
}

void manual_seed(uint64_t seed) { global_rng().reseed(seed); }

}  // namespace byhand
