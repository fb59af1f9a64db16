#!/usr/bin/env bash
# run_bench.sh — `make bench`: byhand's throughput, and PyTorch's on the same
# model, batch, optimizer and threads when python3-torch is installed
# (apt-get install python3-torch; it runs as /usr/bin/python3).
# Machines are noisy: compare the ratio, measured here in one run.
set -u
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
result() { grep -E "^RESULT $1 " | awk '{print $3}'; }

echo "== MLP training throughput (Fashion-MNIST, one epoch, data in memory)"
ours_out=$("$BUILD/bench/bench_mlp" --threads "$THREADS") || { echo "$ours_out"; exit 1; }
echo "$ours_out" | grep -v '^RESULT'
ours=$(echo "$ours_out" | result mlp_images_per_s)

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  torch_out=$(OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch_mlp.py "$THREADS") || { echo "$torch_out"; exit 1; }
  echo "$torch_out" | grep -v '^RESULT'
  theirs=$(echo "$torch_out" | result torch_mlp_images_per_s)
  awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "byhand / PyTorch: %.2fx\n", a / b }'
else
  echo "(PyTorch comparison skipped: install python3-torch to run it)"
fi

echo
echo "== Conv2d(64, 64, 3x3, padding 1) on 32 images of 16x16, forward and forward+backward"
conv_out=$("$BUILD/bench/bench_conv" --threads "$THREADS") || { echo "$conv_out"; exit 1; }
echo "$conv_out" | grep -v '^RESULT'
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  torch_out=$(OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch_conv.py "$THREADS") || { echo "$torch_out"; exit 1; }
  echo "$torch_out" | grep -v '^RESULT'
  for what in fwd fwdbwd; do
    a=$(echo "$conv_out" | result "conv_${what}_gflops")
    b=$(echo "$torch_out" | result "torch_conv_${what}_gflops")
    awk -v w="$what" -v a="$a" -v b="$b" 'BEGIN { printf "byhand / PyTorch, %s: %.2fx\n", w, a / b }'
  done
fi

echo
echo "== LeNet-5 with batch norm, training throughput (batch 128, SGD momentum, one epoch)"
lenet_out=$("$BUILD/bench/bench_lenet" --threads "$THREADS") || { echo "$lenet_out"; exit 1; }
echo "$lenet_out" | grep -v '^RESULT'
ours=$(echo "$lenet_out" | result lenet_images_per_s)
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  torch_out=$(OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch_lenet.py "$THREADS") || { echo "$torch_out"; exit 1; }
  echo "$torch_out" | grep -v '^RESULT'
  theirs=$(echo "$torch_out" | result torch_lenet_images_per_s)
  awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "byhand / PyTorch: %.2fx\n", a / b }'
fi
