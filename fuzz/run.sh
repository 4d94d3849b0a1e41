#!/usr/bin/env bash
# The hostile-input fuzz campaign (docs/RELIABILITY.md): builds every fuzz target with cargo-fuzz
# (nightly), writes the seed corpus from real values (fuzz/seeds/), then runs each target in turn.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   # default 60 s, every target
#   fuzz/run.sh --replay [TARGET...]               # each target over its seeds and corpus once
#
# Env: FUZZ_SANITIZER=none|address (default none: the code under test is safe Rust, and
# without ASan twice as many inputs run), FUZZ_MAX_LEN (default 16384).
# Inputs found are kept in fuzz/corpus/<target>/, crashes in fuzz/artifacts/<target>/, logs in
# fuzz/logs/. Exit status 1 if any target crashed (the others still run).
set -uo pipefail
cd "$(dirname "$0")/.."

ALL=(csr link_frame wire_message signing_message ca_request api_json policy)
replay=false
seconds=60
if [ "${1:-}" = "--replay" ]; then
  replay=true
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL[@]}")
sanitizer=${FUZZ_SANITIZER:-none}
max_len=${FUZZ_MAX_LEN:-16384}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "the nightly toolchain is required (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || exit 2
fi

cargo +nightly fuzz build -s "$sanitizer" || exit 2
bin=fuzz/target/x86_64-unknown-linux-gnu/release
ITCA_SEEDS_DIR=fuzz/seeds "$bin/seeds" >/dev/null || exit 2

mkdir -p fuzz/logs
status=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log="fuzz/logs/$target.log"
  if $replay; then
    args=(-runs=0 -print_final_stats=1)
    echo "== $target: replaying its corpus"
  else
    args=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    echo "== $target: $seconds s"
  fi
  # Run the built binary directly: `cargo fuzz run` would rebuild and adds nothing here.
  "$bin/$target" "${args[@]}" -artifact_prefix="fuzz/artifacts/$target/" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" >"$log" 2>&1
  code=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  if [ $code -ne 0 ]; then
    status=1
    crash=$(grep -o 'Test unit written to .*' "$log" | tail -n 1)
    summary+=("$target: FAILED (exit $code) after ${execs:-?} execs; $crash; see $log")
  else
    summary+=("$target: ok, ${execs:-?} execs, corpus $corpus")
  fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status
