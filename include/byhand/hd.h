// hd.h — BYHAND_HD marks a function that runs on both sides: compiled by
// nvcc it is __host__ __device__ (a kernel's thread calls it), compiled by
// g++ it is a plain inline function (the host-side tests call it, element by
// element, and compare with the CPU layer). The CUDA path keeps each kernel's
// per-element math in such a function, in a .cuh file beside the .cu that
// launches it, so the math is tested on every machine, GPU or not.
#pragma once

#ifdef __CUDACC__
#define BYHAND_HD __host__ __device__ inline
#else
#define BYHAND_HD inline
#endif
