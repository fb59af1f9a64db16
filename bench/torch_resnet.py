"""torch_resnet.py — the same benchmark as bench_resnet.cpp, in PyTorch.

torchvision's resnet18 (1 input channel, its conv1 replaced by a 1-channel
one of the same shape) on 1x64x64 images, or resnet50 on 3x64x64, 10 classes,
batch 32. train: forward, cross-entropy, backward, SGD(lr 0.01, momentum
0.9) step; infer: forward in eval mode under torch.no_grad(). Warm-up
steps first, then timed ones; one process measures one model in one mode,
so that its peak RSS is that job's alone.

  OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_resnet.py --model resnet18 --mode train
      [--threads 2] [--steps 10] [--warmup 3]

Prints "RESULT torch_<model>_<mode>_images_per_s N" and
"RESULT torch_<model>_<mode>_peak_rss_mb N".
"""
import argparse
import resource
import time

import torch
import torch.nn as nn
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["resnet18", "resnet50"], default="resnet18")
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    model_name, mode, threads, steps, warmup = a.model, a.mode, a.threads, a.steps, a.warmup
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = 32
    if model_name == "resnet18":
        channels = 1
        model = torchvision.models.resnet18(num_classes=10)
        model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        channels = 3
        model = torchvision.models.resnet50(num_classes=10)
    x = torch.randn(batch, channels, 64, 64)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = mode == "train"
    model.train(train)

    def step():
        if not train:
            with torch.no_grad():
                model(x)
            return
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    ips = batch * steps / seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    what = "training" if train else "inference"
    print(f"PyTorch {torch.__version__} {model_name} {what}, {channels}x64x64, batch {batch}, "
          f"{threads} thread(s): {ips:.1f} images/s ({steps} steps in {seconds:.2f} s after "
          f"{warmup} warm-up), peak RSS {rss:.0f} MB")
    print(f"RESULT torch_{model_name}_{mode}_images_per_s {ips:.1f}")
    print(f"RESULT torch_{model_name}_{mode}_peak_rss_mb {rss:.0f}")


if __name__ == "__main__":
    main()
