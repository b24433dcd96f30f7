#!/usr/bin/env bash
# Release binary sizes of the four functions (x86_64), user-processor at opt-level 3 / "s" / "z",
# and whether an arm64 build is possible on this machine. Prints Markdown tables.
#
#   bench/sizes.sh [--build] [--opt-levels] [--try-arm64]
#     --build       bring the binaries up to date (cargo decides; a fresh one costs ~1 s): each function
#                   alone (as sam build does), one cargo at a time, under nice; with --opt-levels also the
#                   opt-level "s" and "z" user-processor builds into target/opt-s and target/opt-z (each a
#                   full LTO build the first time: 7-10 min on 2 cores)
#     --opt-levels  include the opt-level table
#     --try-arm64   run `rustup target add aarch64-unknown-linux-gnu` once (log: bench/.out/arm64.log);
#                   when that std is installed, --build also builds the arm64 binaries with cargo lambda
#   BENCH_SRC=DIR   build from that source tree (e.g. an exported commit) into this checkout's target/
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
src=${BENCH_SRC:-$repo}
out=bench/.out
mkdir -p "$out"
build=0 opt=0 arm=0
for a in "$@"; do
  case "$a" in
    --build) build=1 ;;
    --opt-levels) opt=1 ;;
    --try-arm64) arm=1 ;;
    *) echo "usage: $0 [--build] [--opt-levels] [--try-arm64]" >&2; exit 2 ;;
  esac
done
functions=(user-processor notification-processor welcome-email profile-creator)
is_arm64() { [ -f "$1" ] && file -b "$1" | grep -q aarch64; }  # cargo lambda moves its output to target/lambda/F/bootstrap

cargo_build() {  # cargo_build LOG ARGS...: one build in $src, logged, timed
  local log=$1; shift
  echo "building in $src: cargo build $* (log: $log)" >&2
  local t0=$SECONDS
  (cd "$src" && nice -n 10 cargo build "$@") >"$log" 2>&1 || { echo "build failed, see $log" >&2; tail -20 "$log" >&2; exit 1; }
  echo "  built in $((SECONDS - t0)) s" >&2
}

if [ "$build" = 1 ]; then
  for f in "${functions[@]}"; do
    cargo_build "$out/build-$f.log" --release --bin "$f" --target-dir "$repo/target"
  done
  if [ "$opt" = 1 ]; then
    for o in s z; do
      cargo_build "$out/build-opt-$o.log" --release --bin user-processor \
          --config "profile.release.opt-level=\"$o\"" --target-dir "$repo/target/opt-$o"
    done
  fi
fi

size_row() {  # size_row LABEL PATH
  if [ -f "$2" ]; then
    local b; b=$(stat -c %s "$2")
    local libs; libs=$(readelf -d "$2" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sed 's/\.so.*//' | paste -sd, -)
    printf '| %s | %s | %s | %s |\n' "$1" "$b" "$(awk -v b="$b" 'BEGIN {printf "%.2f", b / 1048576}')" "${libs:-static}"
  else
    printf '| %s | not built | — | — |\n' "$1"
  fi
}

echo
opt=$(sed -n '/^\[profile.release\]/,/^\[/s/^opt-level = //p' "$src/Cargo.toml" 2>/dev/null || true)
echo "### Release binary sizes, x86_64-unknown-linux-gnu (profile.release: opt-level ${opt:-?}, lto, codegen-units 1, strip)"
echo
echo "| function | bytes | MiB | dynamic libraries |"
echo "|---|---|---|---|"
for f in "${functions[@]}"; do size_row "$f" "target/release/$f"; done

if [ "$opt" = 1 ]; then
  echo
  echo "### user-processor by opt-level (everything else as profile.release)"
  echo
  echo "| opt-level | bytes | MiB | dynamic libraries |"
  echo "|---|---|---|---|"
  size_row '3 (target/release)' target/release/user-processor
  size_row '"s" (target/opt-s)' target/opt-s/release/user-processor
  size_row '"z" (target/opt-z)' target/opt-z/release/user-processor
fi

if [ "$arm" = 1 ]; then
  echo "trying: rustup target add aarch64-unknown-linux-gnu (log: $out/arm64.log)" >&2
  if timeout 180 rustup target add aarch64-unknown-linux-gnu >"$out/arm64.log" 2>&1; then
    echo "  rustup target add succeeded" >&2
  else
    echo "  rustup target add failed: $(tail -1 "$out/arm64.log")" >&2
  fi
fi
echo
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  if [ "$build" = 1 ]; then
    for f in "${functions[@]}"; do  # what `sam build` runs (cargo-lambda links with zig from .venv)
      {
        echo "building: cargo lambda build --release --arm64 --bin $f (log: $out/build-arm64-$f.log)" >&2
        t0=$SECONDS
        (cd "$src" && CARGO_TARGET_DIR="$repo/target" PATH="$repo/.venv/bin:$PATH" nice -n 10 \
          "$repo/.venv/bin/cargo-lambda" lambda build --release --arm64 --bin "$f") \
          >"$out/build-arm64-$f.log" 2>&1 || { echo "arm64 build failed, see $out/build-arm64-$f.log" >&2; exit 1; }
        echo "  built in $((SECONDS - t0)) s" >&2
      }
    done
  fi
  echo "### Release binary sizes, aarch64-unknown-linux-gnu (cargo lambda build --release --arm64, as sam build; target/lambda/F/bootstrap)"
  echo
  echo "| function | bytes | MiB | dynamic libraries |"
  echo "|---|---|---|---|"
  for f in "${functions[@]}"; do
    if is_arm64 "target/lambda/$f/bootstrap"; then size_row "$f" "target/lambda/$f/bootstrap"; else size_row "$f" /nonexistent; fi
  done
else
  echo "arm64: not measured: the aarch64-unknown-linux-gnu std is not installed (bench/sizes.sh --try-arm64 runs \`rustup target add\`, which downloads it from the Rust distribution server)."
fi
