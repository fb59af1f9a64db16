#!/usr/bin/env bash
# run_tests.sh — runs both test binaries and prints one closing line,
#   "tests: N passed, N failed"
# exiting non-zero when anything failed.
#
#   byhand_tests_f64  every test, the library built with real = double
#                     (gradient checks demand ~1e-6 relative error there)
#   byhand_tests_f32  the same tests minus [gradcheck] and [lessons] (the lesson
#                     binaries are float already), on the float library
#                     that users and lessons run, with the CUDA path when it
#                     was built; its [gpu] tests run where a GPU answers, and
#                     are otherwise left out with "skipped: no GPU"
#                     (not counted as failures)
set -u
BUILD=${BUILD:-build}
passed=0; failed=0; status=0
run() {
  local label=$1; shift
  echo "== $label: $*"
  local out; out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E '^byhand-tests: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  rm -f "$out"
  if [ -z "$line" ]; then
    echo "!! $label printed no totals (crashed?), exit code $rc"
    failed=$((failed + 1)); status=1; return
  fi
  local p f
  p=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
  [ "$rc" -ne 0 ] && status=1
}
f32=$BUILD/tests/byhand_tests_f32
gpu_filter="~[gpu]"
if gpu=$("$f32" --gpu-status 2>&1); then
  echo "gpu: $gpu: the [gpu] tests run"
  gpu_filter=""
else
  n=$("$f32" --list-test-names-only "[gpu]" 2>/dev/null | grep -c '^gpu:')
  echo "skipped: no GPU ($n [gpu] tests left out): ${gpu#no GPU: }"
fi
run "double build (all tests but [gpu])" "$BUILD/tests/byhand_tests_f64" "~[gpu]"
run "float build" "$f32" "~[gradcheck]~[lessons]$gpu_filter"
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
