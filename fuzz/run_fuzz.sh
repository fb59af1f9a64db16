#!/usr/bin/env bash
# run_fuzz.sh — runs each fuzz target for a bounded time, one after another
# on one core, and prints what each did (make fuzz calls it):
#
#   run_fuzz.sh BUILD SECONDS RSS_MB TIMEOUT TARGET...
#
# Each target reads BUILD/corpus/<t> (which it grows) and BUILD/seeds/<t>,
# with -max_total_time=SECONDS, -rss_limit_mb=RSS_MB (also the largest single
# allocation allowed) and -timeout=TIMEOUT seconds per input. A crash, leak,
# timeout, out-of-memory or sanitizer report stops that target; the input is
# kept as BUILD/artifacts/<t>-crash-... (or leak-, timeout-, oom-), its log as
# BUILD/logs/<t>.log, and the script exits non-zero after the table.
set -u
build=$1 seconds=$2 rss=$3 timeout=$4
shift 4
mkdir -p "$build/artifacts" "$build/logs"
# One core: no OpenMP or BLIS threads in the library under test.
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
# halt_on_error: the one recoverable check (fuzz.mk) stops the run too,
# unless fuzz/ubsan.supp names it.
supp=$(cd "$(dirname "$0")" && pwd)/ubsan.supp
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp}

failed=()
rows=()
for t in "$@"; do
  bin="$build/fuzz_$t"
  corpus="$build/corpus/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$build/seeds/$t"
  echo "== fuzz_$t: ${seconds} s"
  start=$(date +%s)
  "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="$timeout" \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    "$corpus" "$build/seeds/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  files=$(find "$corpus" -type f | wc -l)
  rate=$(( ${execs:-0} / (took > 0 ? took : 1) ))
  status=ok
  if [ "$rc" -ne 0 ]; then
    status="FAILED (exit $rc)"
    failed+=("$t")
    grep -E 'ERROR|BUG|SUMMARY|runtime error|Test unit written|==[0-9]+==' "$log" | head -n 20
  fi
  rows+=("$(printf '%-12s %12s %7s %8s %8s %8s %10s  %s' "$t" "${execs:-?}" "$took" \
    "$rate" "${cov:-?}" "${ft:-?}" "$files" "$status")")
done

echo
printf '%-12s %12s %7s %8s %8s %8s %10s  %s\n' target executions seconds exec/s cov ft corpus status
for r in "${rows[@]}"; do echo "$r"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} found a problem; inputs under $build/artifacts, logs under $build/logs"
  exit 1
fi
echo "fuzz: no crash, leak, timeout or sanitizer report"
