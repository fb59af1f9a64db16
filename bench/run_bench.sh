#!/usr/bin/env bash
# run_bench.sh — `make bench`: byhand's speed (and memory), and PyTorch's on
# the same model, batch, optimizer and threads when python3-torch is installed
# (apt-get install python3-torch python3-torchvision; it runs as /usr/bin/python3).
#
# Machines are noisy, and PyTorch's own times swing from one process to the
# next (its LeNet epoch is bimodal on some machines). So each comparison is
# run as a duel: every program warms up before it times anything, the two
# sides run in turns, BENCH_RUNS times each (default 3), and the ratio
# compares the best run of each side with the best of the other; the range
# of each side's runs is printed beside it. Only ratios from one run of this
# script mean anything: the CPU differs from machine to machine.
#
#   make bench                         everything (a few minutes)
#   BENCH_RUNS=5 BENCH_ONLY=resnet make bench    more runs; one group only
#                                      (mlp, conv, guard, lenet, resnet, gpu, mpi)
set -u
BUILD=${BUILD:-build}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-}
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then have_torch=1; else have_torch=0; fi

# The value of "RESULT <key> <value>" in $1.
result() { echo "$1" | awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }'; }

# duel TITLE OURS THEIRS SPEC...
#   OURS:   byhand's command line (a program under $BUILD/bench and its flags)
#   THEIRS: PyTorch's (a script under bench/ and its arguments), or "" for none
#   SPEC:   "label|our_key|their_key|better" with better = higher or lower
# Runs the two in turns, RUNS times each, prints each side's first run in
# full and every run's figures, then per SPEC: the best of each side, the
# range of its runs, and byhand / PyTorch (best against best).
duel() {
  local title=$1 ours=$2 theirs=$3
  shift 3
  local specs=("$@")
  [ "$have_torch" = 1 ] || theirs=""
  echo "== $title"
  declare -A got  # "side|key" -> "v1 v2 ..."
  local run out side cmd spec label okey tkey better key
  for ((run = 1; run <= RUNS; run++)); do
    for side in byhand torch; do
      if [ "$side" = byhand ]; then
        out=$("$BUILD/bench/"$ours --threads "$THREADS") || { echo "$out"; exit 1; }
      else
        [ -n "$theirs" ] || continue
        out=$(cd bench && OMP_NUM_THREADS=$THREADS /usr/bin/python3 $theirs --threads "$THREADS") ||
          { echo "$out"; exit 1; }
      fi
      if [ "$run" = 1 ]; then echo "$out" | grep -v '^RESULT'; fi
      for spec in "${specs[@]}"; do
        IFS='|' read -r label okey tkey better <<<"$spec"
        key=$okey
        [ "$side" = torch ] && key=$tkey
        got["$side|$key"]+="$(result "$out" "$key") "
      done
    done
  done
  for spec in "${specs[@]}"; do
    IFS='|' read -r label okey tkey better <<<"$spec"
    awk -v label="$label" -v better="$better" -v runs="$RUNS" \
        -v ours="${got[byhand|$okey]}" -v theirs="${theirs:+${got[torch|$tkey]}}" '
      function summary(list, who,   n, v, i, best, lo, hi) {
        n = split(list, v, " ")
        lo = hi = v[1]
        for (i = 2; i <= n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        best = (better == "higher") ? hi : lo
        printf "  %-8s best %9.1f  (runs %.1f-%.1f)\n", who, best, lo, hi
        return best
      }
      BEGIN {
        printf "%s, best of %d runs each, %s is better:\n", label, runs, better
        a = summary(ours, "byhand")
        if (theirs == "") { print "  (PyTorch comparison skipped: install python3-torch and python3-torchvision)"; exit }
        b = summary(theirs, "PyTorch")
        if (better == "higher") printf "  byhand / PyTorch, best against best: %.2fx\n", a / b
        else printf "  byhand / PyTorch, best against best: %.2fx (below 1: byhand needs less)\n", a / b
      }'
  done
  echo
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# range_of "v1 v2 ...": the lowest and the highest of the runs' figures, as
# "lo hi" (each figure compared this way is a throughput: the highest is the
# best).
range_of() {
  echo "$1" | awk '{ lo = hi = $1; for (i = 2; i <= NF; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i }
                     print lo, hi }'
}

# guard_cost TITLE PROGRAM KEY: the NaN/Inf guard's cost (nan_guard.h), byhand
# against itself: PROGRAM with the guard (as fit() runs) and with
# --no-nan-guard, in turns, RUNS times each; best against best.
guard_cost() {
  local title=$1 program=$2 key=$3 run on="" off="" out
  echo "== NaN guard cost: $title"
  for ((run = 1; run <= RUNS; run++)); do
    out=$("$BUILD/bench/$program" --threads "$THREADS") || { echo "$out"; exit 1; }
    on+="$(result "$out" "$key") "
    out=$("$BUILD/bench/$program" --threads "$THREADS" --no-nan-guard) || { echo "$out"; exit 1; }
    off+="$(result "$out" "$key") "
  done
  local on_lo on_hi off_lo off_hi
  read -r on_lo on_hi <<<"$(range_of "$on")"
  read -r off_lo off_hi <<<"$(range_of "$off")"
  awk -v runs="$RUNS" -v a="$on_hi" -v al="$on_lo" -v b="$off_hi" -v bl="$off_lo" 'BEGIN {
    printf "  images/s, best of %d runs each: guard on (runs %.0f-%.0f) %.0f, off (runs %.0f-%.0f) %.0f\n", runs, al, a, a, bl, b, b
    printf "  cost of the guard, best against best: %.1f%%\n\n", 100 * (b - a) / b }'
}

if want mlp; then
  duel "MLP training throughput (Fashion-MNIST, one epoch after a warm-up, data in memory)" \
    "bench_mlp" "torch_mlp.py" "images/s|mlp_images_per_s|torch_mlp_images_per_s|higher"
fi
if want conv; then
  duel "Conv2d(64, 64, 3x3, padding 1) on 32 images of 16x16, forward and forward+backward" \
    "bench_conv" "torch_conv.py" \
    "forward GFLOP/s|conv_fwd_gflops|torch_conv_fwd_gflops|higher" \
    "forward+backward GFLOP/s|conv_fwdbwd_gflops|torch_conv_fwdbwd_gflops|higher" \
    "forward+backward GFLOP/s, byhand's im2col road|conv_im2col_fwdbwd_gflops|torch_conv_fwdbwd_gflops|higher"
fi
if want guard; then
  guard_cost "MLP training (bench_mlp)" bench_mlp mlp_images_per_s
  guard_cost "LeNet-5 training (bench_lenet)" bench_lenet lenet_images_per_s
fi
if want lenet; then
  duel "LeNet-5 with batch norm, training throughput (batch 128, SGD momentum, one epoch after a warm-up)" \
    "bench_lenet" "torch_lenet.py" "images/s|lenet_images_per_s|torch_lenet_images_per_s|higher"
fi
if want resnet; then
  declare -A input=([resnet18]=1x64x64 [resnet50]=3x64x64)
  declare -A what=([train]="training (SGD momentum)" [infer]="inference (eval mode)")
  for model in resnet18 resnet50; do
    for mode in train infer; do
      duel "$model ${what[$mode]}, ${input[$model]} images, batch 32, 10 classes" \
        "bench_resnet --model $model --mode $mode" "torch_resnet.py --model $model --mode $mode" \
        "images/s|${model}_${mode}_images_per_s|torch_${model}_${mode}_images_per_s|higher" \
        "peak RSS MB|${model}_${mode}_peak_rss_mb|torch_${model}_${mode}_peak_rss_mb|lower"
    done
  done
fi

# The GPU (a build with the CUDA path, on a machine with an NVIDIA GPU): the
# model of the ImageNet papers at their size, ResNet-50 on 3x224x224 images,
# batch 64, training, best of RUNS runs; then one profiled run for the share
# of the step spent in the GEMM layers (Conv2d, Linear). No PyTorch beside
# it: Debian's python3-torch is built without CUDA.
if want gpu; then
  echo "== GPU: ResNet-50 training, 3x224x224 images, batch 64, SGD momentum"
  probe=$("$BUILD/bench/bench_resnet" --device cuda --steps 1 --warmup 0) || { echo "$probe"; exit 1; }
  if echo "$probe" | grep -q 'skipped'; then
    echo "  GPU figures skipped: ${probe#*skipped: }"
  else
    list=""
    for ((run = 1; run <= RUNS; run++)); do
      out=$("$BUILD/bench/bench_resnet" --model resnet50 --mode train --device cuda --size 224 \
            --batch 64 --steps 20 --warmup 5 --threads "$THREADS") || { echo "$out"; exit 1; }
      [ "$run" = 1 ] && echo "$out" | grep -v '^RESULT'
      list+="$(result "$out" resnet50_train_cuda224_images_per_s) "
    done
    read -r lo hi <<<"$(range_of "$list")"
    echo "  images/s, best of $RUNS runs: $hi (runs $lo-$hi)"
    out=$("$BUILD/bench/bench_resnet" --model resnet50 --mode train --device cuda --size 224 \
          --batch 64 --steps 10 --warmup 5 --threads "$THREADS" --profile) || { echo "$out"; exit 1; }
    echo "  profiled run (each layer waits for its kernels, so the step is slower):"
    echo "$out" | grep 'share of the step'
  fi
  echo
fi

# Data parallelism on this machine (distributed.h, lesson 15): the same
# training, one process with 2 threads against 2 processes (mpirun -np 2)
# with 1 thread each, in turns, RUNS times each; the job's images/s (best,
# range) and the allreduce's share of the ranks' time.
if want mpi; then
  echo "== Data parallel: 1 rank x 2 threads vs 2 ranks x 1 thread (lesson 15, one epoch each)"
  lesson=$BUILD/tutorials/15_data_parallel
  if ! command -v mpirun >/dev/null || ! ldd "$lesson" 2>/dev/null | grep -q libmpi; then
    echo "  skipped: needs mpirun and a build with MPI (make MPI=1, libopenmpi-dev)"
  else
    root=""
    [ "$(id -u)" = 0 ] && root=--allow-run-as-root
    declare -A subset=([mlp]=60000 [lenet]=30000 [resnet18]=2048)
    for model in mlp lenet resnet18; do
      one="" two="" share=""
      for ((run = 1; run <= RUNS; run++)); do
        args="--model $model --epochs 1 --subset ${subset[$model]}"
        out=$("$lesson" $args --threads 2) || { echo "$out"; exit 1; }
        one+="$(result "$out" dp_${model}_images_per_s) "
        out=$(mpirun -np 2 --oversubscribe $root "$lesson" $args --threads 1) || { echo "$out"; exit 1; }
        [ "$run" = 1 ] && echo "$out" | grep -E '^(model|rank|the job)' | sed 's/^/  /'
        two+="$(result "$out" dp_${model}_images_per_s) "
        share+="$(result "$out" dp_${model}_allreduce_pct) "
      done
      read -r one_lo one_hi <<<"$(range_of "$one")"
      read -r two_lo two_hi <<<"$(range_of "$two")"
      read -r share_lo share_hi <<<"$(range_of "$share")"
      awk -v m="$model" -v runs="$RUNS" -v a="$one_hi" -v al="$one_lo" -v b="$two_hi" -v bl="$two_lo" \
          -v sl="$share_lo" -v sh="$share_hi" 'BEGIN {
        printf "  %s, images/s, best of %d: 1 rank x 2 threads %.0f (runs %.0f-%.0f); 2 ranks x 1 thread %.0f (runs %.0f-%.0f): %.2fx; allreduce %.1f-%.1f%% of the time\n\n", m, runs, a, al, a, b, bl, b, b / a, sl, sh }'
    done
  fi
  echo
fi
