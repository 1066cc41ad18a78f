#!/usr/bin/env bash
# Short fuzz pass (CI): build every target of this cargo-fuzz crate on the
# STABLE toolchain and run each one for FUZZ_SECONDS seconds (default 20),
# one at a time, single process. Exits non-zero if any target crashes,
# times out or runs out of memory; the input is left in
# fuzz/artifacts/<target>/ and its log in $FUZZ_LOG_DIR (default: a temp dir).
#
# How it works on stable: `cargo fuzz build -s none` (no sanitizer) passes
# only stable rustc flags (-Cpasses=sancov-module, -Cllvm-args=..., --cfg
# fuzzing); AddressSanitizer (-Zsanitizer) would need nightly and is not
# needed for this #![forbid(unsafe_code)] crate. cargo-fuzz is installed from
# crates.io when missing.
#
# Env: FUZZ_SECONDS (per target), FUZZ_TARGETS (space-separated subset),
# FUZZ_LOG_DIR, CARGO_BUILD_JOBS.
set -euo pipefail
cd "$(dirname "$0")"

SECS="${FUZZ_SECONDS:-20}"
FLAGS=(-s none -O -a)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "run-short: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz
fi

start=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
built=$(date +%s)
echo "run-short: build took $((built - start))s"

TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list)}"
# Run the built binaries directly: `cargo fuzz run` would re-check (and
# possibly rebuild) the crate before every target.
BIN="target/$(rustc -vV | sed -n 's/^host: //p')/release"
LOGS="${FUZZ_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$LOGS"
failed=()
for t in $TARGETS; do
  # New inputs go to a scratch directory (the first corpus argument), so the
  # checked-in seeds in corpus/<t> are read but never modified.
  scratch="$(mktemp -d)"
  mkdir -p "artifacts/$t"
  set +e
  "$BIN/$t" "$scratch" "corpus/$t" \
    -max_total_time="$SECS" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$LOGS/$t.log" 2>&1
  rc=$?
  set -e
  rm -rf "$scratch"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOGS/$t.log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    echo "run-short: $t FAILED (exit $rc), log $LOGS/$t.log:"
    grep -E "panicked|ERROR|SUMMARY|Test unit written|artifact" "$LOGS/$t.log" | head -20 || true
    failed+=("$t")
  else
    echo "run-short: $t ok: ${runs:-?} runs, ${speed:-?} exec/s in ${SECS}s"
  fi
done
echo "run-short: total $(( $(date +%s) - start ))s"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "run-short: crashing targets: ${failed[*]}"
  exit 1
fi
