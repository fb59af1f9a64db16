"""torch_mlp.py — the same benchmark as bench_mlp.cpp, in PyTorch.

MLP 784-256-256-10 (ReLU), batch 64, Adam(lr=1e-3), one epoch of
Fashion-MNIST with the images already in memory as one float tensor,
shuffled each epoch. Run with /usr/bin/python3 (Debian's python3-torch).
The thread count must come from OMP_NUM_THREADS in the environment: Debian's
torch sends Linear layers to the system BLAS (BLIS), which ignores
torch.set_num_threads. run_bench.sh sets both.

Prints "RESULT torch_mlp_images_per_s N".
"""
import gzip
import struct
import sys
import time

import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        t = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8)
        return t.view(n, 1, rows, cols).float() / 255.0
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    batch = 64
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    root = "/usr/share/datasets/fashion-mnist/"
    x = read_idx(root + "train-images-idx3-ubyte.gz")
    y = read_idx(root + "train-labels-idx1-ubyte.gz")
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                          nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            seen += len(idx)
    total = time.perf_counter() - start
    print(f"PyTorch {torch.__version__} MLP 784-256-256-10, batch {batch}, Adam, "
          f"{threads} thread(s): {total:.2f} s for {epochs} epoch(s), {seen / total:.0f} images/s")
    print(f"RESULT torch_mlp_images_per_s {seen / total:.0f}")


if __name__ == "__main__":
    main()
