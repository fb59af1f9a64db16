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
