// grad_pool.h — where the gradients flowing backward through a model live.
//
// A layer's dx (dL/dx, layer.h) is needed only until the layer below has
// used it as its dy. Kept in every layer, the dx buffers of a deep network
// add up to as much memory again as all its activations; handed on as soon
// as they are spent, a handful of buffers serves the whole backward pass,
// however deep the model. So a layer takes its dx buffer from this pool when
// its backward runs, and gives it back when whoever called its backward says
// it is done with it (Layer::release_grad). Sequential and the residual
// blocks do that, child after child; a layer nobody releases simply keeps its
// buffer (the gradient check reads dx that way).
//
// The pool hands out the smallest free buffer that is big enough, or makes a
// new one. The steps of training are alike, so after the first step the pool
// holds every buffer a step needs and nothing more is allocated.
//
// The pool is the calling thread's (thread_local), as Scratch is (scratch.h).
#pragma once

#include <cstdint>

#include "byhand/tensor.h"

namespace byhand {

// A buffer of at least n numbers on `device` (its shape is (n) or bigger;
// resize it). Each device's buffers are pooled apart.
Tensor take_grad_buffer(int64_t n, Device device = Device::CPU);
// Back to the pool. An empty tensor (no memory) is ignored.
void give_grad_buffer(Tensor&& t);

// Buffers this thread's pool has made so far, and the numbers they hold
// (for tests and the benchmark: constant after the first training step).
int64_t grad_buffers_made();
int64_t grad_pool_numbers();

}  // namespace byhand
