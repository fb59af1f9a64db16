"""torch_mlp.py — the same benchmark as bench_mlp.cpp, in PyTorch.

MLP 784-256-256-10 (ReLU), batch 64, Adam(lr=1e-3), one epoch of
Fashion-MNIST with the images already in memory as one float tensor,
shuffled each epoch. Run with /usr/bin/python3 (Debian's python3-torch).
The thread count must come from OMP_NUM_THREADS in the environment: Debian's
torch sends Linear layers to the system BLAS (BLIS), which ignores
torch.set_num_threads. run_bench.sh sets both.

Prints "RESULT torch_mlp_images_per_s N".
"""
import torch
import torch.nn as nn

from torch_common import fashion_train, parse_args, time_training


def main():
    threads = parse_args(threads=2).threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = fashion_train()
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                          nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    time_training("MLP 784-256-256-10", "torch_mlp_images_per_s", model, opt, x, y,
                  batch=64, threads=threads)


if __name__ == "__main__":
    main()
