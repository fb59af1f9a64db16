"""torch_lenet.py — the same benchmark as bench_lenet.cpp, in PyTorch.

LeNet-5 with batch norm (lesson 5's model), batch 128, SGD(lr=0.05,
momentum=0.9), one epoch of Fashion-MNIST with the images in memory.
Run with /usr/bin/python3 and OMP_NUM_THREADS set (see torch_mlp.py).
Prints "RESULT torch_lenet_images_per_s N".
"""
import sys
import time

import torch
import torch.nn as nn

from torch_mlp import read_idx


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    batch = 128
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    root = "/usr/share/datasets/fashion-mnist/"
    x = read_idx(root + "train-images-idx3-ubyte.gz")
    y = read_idx(root + "train-labels-idx1-ubyte.gz")
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n = x.shape[0]
    start = time.perf_counter()
    perm = torch.randperm(n)
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    total = time.perf_counter() - start
    print(f"PyTorch {torch.__version__} LeNet-5-BN, batch {batch}, SGD momentum, "
          f"{threads} thread(s): {total:.2f} s for 1 epoch, {n / total:.0f} images/s")
    print(f"RESULT torch_lenet_images_per_s {n / total:.0f}")


if __name__ == "__main__":
    main()
