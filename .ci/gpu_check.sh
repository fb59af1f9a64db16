#!/usr/bin/env bash
# gpu_check.sh — everything the CUDA path needs checked on a machine with an
# NVIDIA GPU, in one go (GPU time is short): build with CUDA=1 on all cores,
# run the [gpu] and [cuda_bodies] tests, a lesson with --device cuda, then the
# GPU benchmark (ResNet-50, 224x224, batch 64). Each part's output goes to the
# terminal and to $OUT/gpu_check/*.log when OUT is set.
#
#   bash .ci/gpu_check.sh            # from the repository root
#   GPU_CHECK_SKIP_BUILD=1 bash .ci/gpu_check.sh   # reuse build/ as it is
set -u
cd "$(dirname "$0")/.."
logs=${OUT:+$OUT/gpu_check}
logs=${logs:-build/gpu_check}
mkdir -p "$logs"
status=0
step() {  # step NAME COMMAND...: runs it, logs it, remembers a failure
  local name=$1
  shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || status=1
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$logs/gpu.log"
if [ -z "${GPU_CHECK_SKIP_BUILD:-}" ]; then
  step build make -j"$(nproc)" CUDA=1 build/tests/byhand_tests_f32 build/tutorials/05_lenet \
    build/bench/bench_resnet
fi
f32=build/tests/byhand_tests_f32
step gpu_status "$f32" --gpu-status
step gpu_tests "$f32" "[gpu],[cuda_bodies],[device]"
step lesson_lenet build/tutorials/05_lenet --quick --device cuda
step bench_gpu env BENCH_ONLY=gpu BENCH_RUNS=3 BUILD=build bash bench/run_bench.sh
echo "gpu_check: $([ $status = 0 ] && echo all passed || echo SOME FAILED); logs in $logs"
exit $status
