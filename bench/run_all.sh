#!/bin/sh
# Runs every benchmark with its defaults and keeps the output.
#
#   bench/run_all.sh BUILD_DIR [OUT_DIR]
#   BENCHES="bench_spawn bench_switch" bench/run_all.sh BUILD_DIR   # a subset
#
# BUILD_DIR is a RelWithDebInfo (or Release) build with GORT_BUILD_BENCH=ON.
# Before each benchmark the script measures how busy the CPUs are over 2 s
# (from /proc/stat) and prints it: on a 2-vCPU VM another process using one
# CPU changes the results several times over. With WAIT_IDLE=1 it waits (up
# to 10 minutes) until the machine is under 10 % busy before each benchmark.
set -eu

build=${1:?usage: run_all.sh BUILD_DIR [OUT_DIR]}
out=${2:-bench-results}
mkdir -p "$out"
if [ -z "${BENCHES:-}" ]; then
    BENCHES=$(cd "$build/bench" 2>/dev/null && for f in bench_*; do
        [ -f "$f" ] && [ -x "$f" ] && echo "$f"; done)
fi
[ -n "$BENCHES" ] || { echo "no benchmarks in $build/bench (configure with -DGORT_BUILD_BENCH=ON)" >&2; exit 1; }

# Prints the percentage of non-idle CPU time over the next 2 seconds.
busy_pct() {
    set -- $(head -1 /proc/stat)
    shift
    t0=0; for v in "$@"; do t0=$((t0 + v)); done; i0=$(($4 + $5))
    sleep 2
    set -- $(head -1 /proc/stat)
    shift
    t1=0; for v in "$@"; do t1=$((t1 + v)); done; i1=$(($4 + $5))
    dt=$((t1 - t0)); [ "$dt" -gt 0 ] || dt=1
    echo $(( (100 * (dt - (i1 - i0))) / dt ))
}

for b in $BENCHES; do
    exe="$build/bench/$b"
    [ -x "$exe" ] || { echo "missing $exe (configure with -DGORT_BUILD_BENCH=ON)" >&2; exit 1; }
    busy=$(busy_pct)
    if [ "${WAIT_IDLE:-0}" = 1 ]; then
        n=0
        while [ "$busy" -ge 10 ] && [ $n -lt 300 ]; do busy=$(busy_pct); n=$((n + 1)); done
    fi
    echo "== $b (CPUs ${busy}% busy before the run)"
    {
        echo "# cpu busy before run: ${busy}% (2 s sample of /proc/stat)"
        "$exe"
    } | tee "$out/$b.txt"
done
