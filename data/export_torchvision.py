#!/usr/bin/env python3
"""export_torchvision.py -- a torchvision classification model's weights as a
safetensors file that byhand's load_model() reads.

What it does. It builds a torchvision model (resnet18, resnet50, vgg11, ...:
any name torchvision.models knows), with torchvision's random initialisation
(seeded) or with its pretrained ImageNet weights, and writes the model's
state_dict with PyTorch's names ("conv1.weight", "bn1.running_mean",
"layer1.0.downsample.0.weight", "fc.bias") to a .safetensors file:
floating-point tensors as F32, batch norm's num_batches_tracked as I64.
byhand's models with the same structure (byhand::models::resnet18/34/50/101)
use the same names, so

    auto net = byhand::models::resnet50();        // 1000 classes, RGB
    byhand::load_model(*net, "resnet50.safetensors");
    net->eval();

gives byhand the torchvision model's weights. It needs only python3, torch and
torchvision (no `safetensors` package: the format is written here with struct
and json, byte for byte as include/byhand/io.h describes it).

Usage:

    python3 data/export_torchvision.py --model resnet50 --seed 0 --out r50.safetensors
        random init (torchvision's own), seeded; no network needed

    python3 data/export_torchvision.py --model resnet18 --num-classes 10 \\
        --in-channels 1 --seed 0 --out r18.safetensors
        10 classes, gray images: conv1 is replaced by a new Conv2d with the
        same configuration but 1 input channel

    python3 data/export_torchvision.py --model resnet50 --pretrained \\
        --out resnet50.safetensors --labels imagenet_classes.txt
        torchvision's default ImageNet weights (for resnet50, IMAGENET1K_V2,
        80.9 % top-1) and the 1000 class names, one per line in class order.
        This downloads the weights (about 100 MB for ResNet-50) from
        PyTorch's download server into torch's cache ($TORCH_HOME/hub/checkpoints,
        ~/.cache/torch/hub/checkpoints by default), so it needs a network once;
        later runs, or a machine where the .pth file was copied into that
        folder, need none. Without a network it stops with a message saying
        which file to fetch and where to put it. The class names come from
        torchvision's weights metadata and need no network.

    --randomize-bn      batch norm's running statistics and affine parameters
                        drawn at random (seeded) instead of torchvision's
                        fresh values (mean 0, variance 1, weight 1, bias 0),
                        so that eval-mode batch norm does something to check
    --reference-input-shape N,C,H,W --reference PREFIX
                        also write PREFIX_input.safetensors (tensor "x", a
                        seeded N(0, 1) batch) and PREFIX_logits.safetensors
                        (tensor "logits", the model's output on x in eval
                        mode), to check another implementation against
                        (tests/test_torchvision.cpp does)

Preprocessing for the pretrained weights is torchvision's ImageNet recipe
(include/byhand/imagenet.h): resize the shorter side to 256 (232 for
resnet50's IMAGENET1K_V2), center crop 224, scale to [0, 1], normalise with
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

Every problem (a bad argument, torch missing, no network for --pretrained)
ends in one line "export_torchvision.py: error: ..." (after the usage, for a
bad argument) and exit status 2 (1 for a failure while writing), not a
traceback.
"""

import argparse
import json
import os
import struct
import sys

PROG = "export_torchvision.py"


def fail(message, status=2):
    sys.stderr.write("%s: error: %s\n" % (PROG, message))
    sys.exit(status)


try:
    import torch
    import torchvision
except Exception as e:  # ImportError, or a broken installation
    fail("needs PyTorch and torchvision, which python3 (%s) cannot import: %s. "
         "Install them (pip install torch torchvision, or on Debian/Ubuntu "
         "apt-get install python3-torch python3-torchvision)." % (sys.executable, e))


# ---------------------------------------------------------------- safetensors

# Bytes per element of the two element types written here.
ELEMENT_BYTES = {"F32": 4, "I64": 8}


def tensor_bytes(t, dtype):
    """The tensor's elements, row-major, little-endian."""
    t = t.detach().to("cpu").contiguous()
    t = t.to(torch.float32 if dtype == "F32" else torch.int64)
    try:
        import numpy
        return t.numpy().astype("<f4" if dtype == "F32" else "<i8").tobytes()
    except ImportError:  # slower, but needs nothing
        code = "f" if dtype == "F32" else "q"
        values = t.reshape(-1).tolist()
        return struct.pack("<%d%s" % (len(values), code), *values)


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: torch.Tensor}. Floating-point tensors are written as
    F32, integer ones as I64 (PyTorch's num_batches_tracked). The layout is
    the reference writer's (and byhand's): larger elements first, then by
    name, each tensor's bytes right after the previous one, the JSON header
    padded with spaces to a multiple of 8 bytes. Written to a temporary file
    and renamed, so a failed run leaves no half file."""
    entries = []
    for name, t in tensors.items():
        if t.is_floating_point():
            dtype = "F32"
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            dtype = "I64"
        else:
            fail("tensor %r has dtype %s, which this script does not export" % (name, t.dtype))
        entries.append((name, dtype, t))
    entries.sort(key=lambda e: (-ELEMENT_BYTES[e[1]], e[0]))

    header, blobs, offset = {}, [], 0
    for name, dtype, t in entries:
        blob = tensor_bytes(t, dtype)
        assert len(blob) == t.numel() * ELEMENT_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)

    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for blob in blobs:
                f.write(blob)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        fail("cannot write %r: %s" % (path, e.strerror or e), status=1)


# ---------------------------------------------------------------- the model

def model_names():
    if hasattr(torchvision.models, "list_models"):  # torchvision >= 0.14
        try:
            return sorted(torchvision.models.list_models(module=torchvision.models))
        except TypeError:
            return sorted(torchvision.models.list_models())
    return sorted(n for n, f in vars(torchvision.models).items()
                  if callable(f) and n[:1].islower() and not n.startswith("_"))


def weights_enum(name):
    """The model's weights enum (ResNet50_Weights), or None."""
    if hasattr(torchvision.models, "get_model_weights"):
        try:
            return torchvision.models.get_model_weights(name)
        except (ValueError, KeyError):
            return None
    return None


def imagenet_categories(name):
    """The 1000 ImageNet class names from torchvision's weights metadata
    (shipped with torchvision: no network)."""
    for source in (name, "resnet50"):
        enum = weights_enum(source)
        if enum is not None:
            meta = enum.DEFAULT.meta
            if "categories" in meta and len(meta["categories"]) == 1000:
                return list(meta["categories"])
    fail("this torchvision (%s) has no ImageNet class names in its weights "
         "metadata (torchvision >= 0.13 has them)" % torchvision.__version__)


def set_submodule(model, path, module):
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, module)


def build(args):
    builder = getattr(torchvision.models, args.model, None)
    if args.model not in model_names() or builder is None:
        close = [n for n in model_names() if n.startswith(args.model[:3])]
        fail("unknown model %r; torchvision %s has %s" %
             (args.model, torchvision.__version__,
              ", ".join(close or model_names()) + (" (and others)" if close else "")))
    torch.manual_seed(args.seed)  # torchvision's init draws from torch's generator
    if args.pretrained:
        enum = weights_enum(args.model)
        if enum is None:
            fail("torchvision %s has no pretrained weights enum for %r" %
                 (torchvision.__version__, args.model))
        weights = enum.DEFAULT
        try:
            model = builder(weights=weights)
        except Exception as e:
            checkpoints = os.path.join(torch.hub.get_dir(), "checkpoints")
            fail("cannot get the pretrained weights %s (%s): %s: %s. Downloading them "
                 "needs a network; without one, fetch that URL elsewhere and put the "
                 "file, under its own name %r, into %s" %
                 (weights, weights.url, type(e).__name__, e, os.path.basename(weights.url),
                  checkpoints))
        print("pretrained: %s (%s)" % (weights, weights.url))
    else:
        try:
            model = builder(weights=None, num_classes=args.num_classes)
        except TypeError:  # torchvision < 0.13: no `weights` argument
            model = builder(pretrained=False, num_classes=args.num_classes)

    # A new head when pretrained weights (1000 classes) meet another count:
    # the last Linear layer, replaced by a fresh one (not pretrained).
    if args.pretrained and args.num_classes != 1000:
        linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
        if not linears or linears[-1][1].out_features != 1000:
            fail("cannot find %s's 1000-class Linear layer to replace with a %d-class one" %
                 (args.model, args.num_classes))
        name, old = linears[-1]
        set_submodule(model, name, torch.nn.Linear(old.in_features, args.num_classes,
                                                   bias=old.bias is not None))
        print("note: %s is a new, randomly initialised %d-class Linear (not pretrained)" %
              (name, args.num_classes))

    # Another number of input channels: the first convolution, which reads
    # the RGB image, replaced by one with the same configuration otherwise.
    if args.in_channels != 3:
        convs = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
        if not convs or convs[0][1].in_channels != 3:
            fail("cannot find %s's first convolution on 3 channels to replace" % args.model)
        name, old = convs[0]
        new = torch.nn.Conv2d(args.in_channels, old.out_channels, old.kernel_size,
                              stride=old.stride, padding=old.padding, dilation=old.dilation,
                              groups=old.groups, bias=old.bias is not None,
                              padding_mode=old.padding_mode)
        # torchvision's init of convolutions (ResNet, VGG, MobileNet, ...)
        torch.nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        if new.bias is not None:
            torch.nn.init.zeros_(new.bias)
        set_submodule(model, name, new)
        print("note: %s is a new %d-channel Conv2d%s" %
              (name, args.in_channels, " (not pretrained)" if args.pretrained else ""))

    if args.randomize_bn:
        randomize_batch_norm(model, args.seed)
    return model.eval()


def randomize_batch_norm(model, seed):
    """Every batch norm's running statistics and affine parameters drawn at
    random, seeded, so that eval-mode batch norm,
        y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,
    has something to get wrong:
        running_mean ~ U(-0.2, 0.2), running_var ~ U(0.5, 2),
        weight ~ U(0.5, 1.5), bias ~ U(-0.2, 0.2),
        num_batches_tracked = a count in [1, 1000]."""
    g = torch.Generator().manual_seed(seed + 12345)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)
                if m.running_mean is not None:
                    m.running_mean.copy_(u(-0.2, 0.2))
                    m.running_var.copy_(u(0.5, 2.0))
                    m.num_batches_tracked.fill_(int(torch.randint(1, 1001, (1,), generator=g)))
                if m.affine:
                    m.weight.copy_(u(0.5, 1.5))
                    m.bias.copy_(u(-0.2, 0.2))


# ---------------------------------------------------------------- command line

def parse_shape(text):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        dims = []
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            "expected four positive integers N,C,H,W (e.g. 2,3,224,224), got %r" % text)
    return dims


def positive(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError("expected a positive integer, got %r" % text)
    return v


def main():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export a torchvision classification model's state_dict as a "
                    "safetensors file for byhand (F32, num_batches_tracked I64).")
    p.add_argument("--model", required=True, help="torchvision model name, e.g. resnet50")
    p.add_argument("--num-classes", type=positive, default=1000, help="default 1000")
    p.add_argument("--in-channels", type=positive, default=3,
                   help="default 3; otherwise the first conv is replaced")
    p.add_argument("--pretrained", action="store_true",
                   help="torchvision's default ImageNet weights (downloads them once)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random init (default 0)")
    p.add_argument("--randomize-bn", action="store_true",
                   help="random running statistics and affine parameters in batch norm")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--labels", help="also write the 1000 ImageNet class names here")
    p.add_argument("--reference-input-shape", type=parse_shape, metavar="N,C,H,W",
                   help="shape of the reference input (with --reference)")
    p.add_argument("--reference", metavar="PREFIX",
                   help="write PREFIX_input.safetensors (x) and PREFIX_logits.safetensors")
    args = p.parse_args()

    if (args.reference is None) != (args.reference_input_shape is None):
        p.error("--reference and --reference-input-shape go together")
    if args.reference_input_shape and args.reference_input_shape[1] != args.in_channels:
        p.error("--reference-input-shape has %d channels, the model reads %d (--in-channels)" %
                (args.reference_input_shape[1], args.in_channels))
    if args.labels and args.num_classes != 1000:
        p.error("--labels writes ImageNet's 1000 class names, but the model has "
                "--num-classes %d" % args.num_classes)
    for path in [args.out, args.labels] + ([args.reference] if args.reference else []):
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                p.error("cannot write %r: the folder %r does not exist" % (path, folder))

    model = build(args)
    state = model.state_dict()
    metadata = {"format": "pt", "source": "torchvision %s %s" % (torchvision.__version__,
                                                                args.model),
                "weights": "pretrained" if args.pretrained else "random, seed %d" % args.seed}
    write_safetensors(args.out, dict(state), metadata)
    count = sum(t.numel() for n, t in state.items() if t.is_floating_point())
    print("wrote %s: %d tensors, %d numbers" % (args.out, len(state), count))

    if args.labels:
        try:
            with open(args.labels, "w") as f:
                f.write("\n".join(imagenet_categories(args.model)) + "\n")
        except OSError as e:
            fail("cannot write %r: %s" % (args.labels, e.strerror or e), status=1)
        print("wrote %s: 1000 class names" % args.labels)

    if args.reference:
        g = torch.Generator().manual_seed(args.seed + 1)
        x = torch.randn(*args.reference_input_shape, generator=g)
        with torch.no_grad():
            logits = model(x)
        write_safetensors(args.reference + "_input.safetensors", {"x": x})
        write_safetensors(args.reference + "_logits.safetensors", {"logits": logits})
        print("wrote %s_input.safetensors (x %s) and %s_logits.safetensors (logits %s)" %
              (args.reference, tuple(x.shape), args.reference, tuple(logits.shape)))


if __name__ == "__main__":
    main()
