"""torch_common.py — what the PyTorch side-by-side benchmarks share.

read_idx() loads an IDX file (gzipped) into a tensor; time_training() runs
the same timed loop as bench/train_bench.h: a warm-up of a few batches, then
one epoch of shuffled mini-batches of data already in memory, zero_grad /
forward / loss / backward / step, and prints images/s and a
"RESULT <key> <images/s>" line for run_bench.sh. parse_args() reads the
flags every script takes (--threads N, and those a script adds).
"""
import argparse
import gzip
import struct
import time

import torch
import torch.nn as nn

FASHION = "/usr/share/datasets/fashion-mnist/"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        t = torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8)
        return t.view(n, 1, rows, cols).float() / 255.0
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


def fashion_train():
    return (read_idx(FASHION + "train-images-idx3-ubyte.gz"),
            read_idx(FASHION + "train-labels-idx1-ubyte.gz"))


def parse_args(**defaults):
    """--threads and the given flags (name=default, all integers)."""
    p = argparse.ArgumentParser()
    for name, value in defaults.items():
        p.add_argument("--" + name, type=int, default=value)
    return p.parse_args()


WARMUP_BATCHES = 20  # as train_bench.h


def time_training(label, key, model, opt, x, y, batch, threads):
    """A warm-up, then one timed epoch, as run_bench.sh runs byhand's side."""
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    for i in range(WARMUP_BATCHES):  # first calls allocate and pick kernels
        opt.zero_grad()
        loss_fn(model(x[i * batch:(i + 1) * batch]), y[i * batch:(i + 1) * batch]).backward()
        opt.step()
    start = time.perf_counter()
    perm = torch.randperm(n)
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    total = time.perf_counter() - start
    print(f"PyTorch {torch.__version__} {label}, batch {batch}, {type(opt).__name__}, "
          f"{threads} thread(s): {total:.2f} s for 1 epoch(s) after {WARMUP_BATCHES} warm-up "
          f"batches, {n / total:.0f} images/s")
    print(f"RESULT {key} {n / total:.0f}")
