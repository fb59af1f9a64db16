"""torch_conv.py — the same benchmark as bench_conv.cpp, in PyTorch.

Conv2d(64, 64, kernel_size=3, padding=1) on a batch of 32 images of 64x16x16:
the forward alone, and forward + backward with the gradient of the input too
(x.requires_grad), as byhand computes it. FLOPs are counted as in
bench_conv.cpp (forward 2*N*C_out*Ho*Wo*C_in*kh*kw, backward twice that);
GFLOP/s from the fastest of `reps` runs, median beside it. Debian's torch runs
convolutions through oneDNN (mkldnn) on the CPU. Run with /usr/bin/python3:

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_conv.py [--threads 2] [--reps 30]

Prints "RESULT torch_conv_fwd_gflops X" and "RESULT torch_conv_fwdbwd_gflops Y".
"""
import time

import torch
import torch.nn as nn

from torch_common import parse_args


def time_it(reps, f):
    """Fastest and median seconds of `reps` runs of f, after one warm-up run."""
    f()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2]


def main():
    args = parse_args(threads=2, reps=30)
    threads, reps = args.threads, args.reps
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    n, c, h, w, k = 32, 64, 16, 16, 3
    conv = nn.Conv2d(c, c, k, stride=1, padding=1)
    x = torch.randn(n, c, h, w, requires_grad=True)
    dy = torch.randn(n, c, h, w)
    fwd_flops = 2.0 * n * c * h * w * c * k * k

    def forward():
        conv(x)

    def forward_backward():
        conv(x).backward(dy)

    fwd_best, fwd_med = time_it(reps, forward)
    step_best, step_med = time_it(reps, forward_backward)
    fwd = fwd_flops / fwd_best / 1e9
    step = 3 * fwd_flops / step_best / 1e9
    print(f"PyTorch {torch.__version__} {conv}, batch {n}, {threads} thread(s), "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"forward:          {fwd_best * 1e3:6.2f} ms  {fwd:6.1f} GFLOP/s   "
          f"(median {fwd_flops / fwd_med / 1e9:.1f})")
    print(f"forward+backward: {step_best * 1e3:6.2f} ms  {step:6.1f} GFLOP/s   "
          f"(median {3 * fwd_flops / step_med / 1e9:.1f})")
    print(f"RESULT torch_conv_fwd_gflops {fwd:.1f}")
    print(f"RESULT torch_conv_fwdbwd_gflops {step:.1f}")


if __name__ == "__main__":
    main()
