// grad_pool.cpp — the pool of gradient buffers (grad_pool.h).
#include "byhand/grad_pool.h"

#include <vector>

namespace byhand {

namespace {
struct Pool {
  std::vector<Tensor> free;  // buffers nobody holds
  int64_t made = 0, numbers = 0;
};
thread_local Pool t_pool;
}  // namespace

Tensor take_grad_buffer(int64_t n, Device device) {
  // Best fit: the smallest free buffer on that device that holds n numbers.
  size_t best = t_pool.free.size();
  for (size_t i = 0; i < t_pool.free.size(); ++i) {
    const int64_t c = t_pool.free[i].capacity();
    if (t_pool.free[i].device() == device && c >= n &&
        (best == t_pool.free.size() || c < t_pool.free[best].capacity()))
      best = i;
  }
  if (best < t_pool.free.size()) {
    Tensor t = std::move(t_pool.free[best]);
    t_pool.free.erase(t_pool.free.begin() + std::ptrdiff_t(best));
    return t;
  }
  Tensor t;
  t.resize({n}, device);
  t_pool.made += 1;
  t_pool.numbers += n;
  return t;
}

void give_grad_buffer(Tensor&& t) {
  if (t.capacity() > 0) t_pool.free.push_back(std::move(t));
}

int64_t grad_buffers_made() { return t_pool.made; }
int64_t grad_pool_numbers() { return t_pool.numbers; }

}  // namespace byhand
