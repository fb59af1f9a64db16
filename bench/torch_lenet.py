"""torch_lenet.py — the same benchmark as bench_lenet.cpp, in PyTorch.

LeNet-5 with batch norm (lesson 5's model), batch 128, SGD(lr=0.05,
momentum=0.9), one epoch of Fashion-MNIST with the images in memory.
Run with /usr/bin/python3 and OMP_NUM_THREADS set (see torch_mlp.py).
Prints "RESULT torch_lenet_images_per_s N".
"""
import torch
import torch.nn as nn

from torch_common import fashion_train, parse_args, time_training


def main():
    threads = parse_args(threads=2).threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = fashion_train()
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    time_training("LeNet-5-BN", "torch_lenet_images_per_s", model, opt, x, y,
                  batch=128, threads=threads)


if __name__ == "__main__":
    main()
