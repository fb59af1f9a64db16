#!/usr/bin/env bash
# run_bench.sh — `make bench`: byhand's throughput, and PyTorch's on the same
# model, batch, optimizer and threads when python3-torch is installed
# (apt-get install python3-torch; it runs as /usr/bin/python3).
# Machines are noisy: compare the ratio, measured here in one run.
set -u
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
result() { grep -E "^RESULT $1 " | awk '{print $3}'; }
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then have_torch=1; else have_torch=0; fi

# ours BENCH: runs $BUILD/bench/BENCH and prints its lines but the RESULT ones;
# its whole output stays in $ours_out. A failure prints it all and stops here.
ours() {
  ours_out=$("$BUILD/bench/$1" --threads "$THREADS") || { echo "$ours_out"; exit 1; }
  echo "$ours_out" | grep -v '^RESULT'
}

# theirs SCRIPT: the same for bench/SCRIPT in PyTorch; output in $torch_out.
theirs() {
  torch_out=$(OMP_NUM_THREADS=$THREADS /usr/bin/python3 "bench/$1" "$THREADS") ||
    { echo "$torch_out"; exit 1; }
  echo "$torch_out" | grep -v '^RESULT'
}

# compare SCRIPT [WHAT OUR_KEY THEIR_KEY]...: runs bench/SCRIPT in PyTorch
# and prints "byhand / PyTorch<WHAT>: N.NNx" for each pair of RESULT keys
# (ours from $ours_out), or says why there is no comparison.
compare() {
  local script=$1
  shift
  if [ "$have_torch" != 1 ]; then
    echo "(PyTorch comparison skipped: install python3-torch to run it)"
    return
  fi
  theirs "$script"
  while [ $# -ge 3 ]; do
    awk -v w="$1" -v a="$(echo "$ours_out" | result "$2")" -v b="$(echo "$torch_out" | result "$3")" \
      'BEGIN { printf "byhand / PyTorch%s: %.2fx\n", w, a / b }'
    shift 3
  done
}

echo "== MLP training throughput (Fashion-MNIST, one epoch, data in memory)"
ours bench_mlp
compare torch_mlp.py "" mlp_images_per_s torch_mlp_images_per_s

echo
echo "== Conv2d(64, 64, 3x3, padding 1) on 32 images of 16x16, forward and forward+backward"
ours bench_conv
compare torch_conv.py ", fwd" conv_fwd_gflops torch_conv_fwd_gflops \
                      ", fwdbwd" conv_fwdbwd_gflops torch_conv_fwdbwd_gflops \
                      ", fwdbwd, byhand's im2col road" conv_im2col_fwdbwd_gflops torch_conv_fwdbwd_gflops

echo
echo "== LeNet-5 with batch norm, training throughput (batch 128, SGD momentum, one epoch)"
ours bench_lenet
compare torch_lenet.py "" lenet_images_per_s torch_lenet_images_per_s
