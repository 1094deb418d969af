#!/usr/bin/env bash
# Runs every fuzz target of fuzz/fuzz_targets/ for a while and fails on the first crash.
#
#   bash fuzz/smoke.sh [seconds per target, default 20]
#
# cargo-fuzz is installed from crates.io when missing. It passes nightly-only flags
# (-Zsanitizer=address, sancov passes) to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>   (from fuzz/)
set -euo pipefail

secs="${1:-20}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1

start=$(date +%s)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
fi
# The fuzz build has flags of its own: keep it out of any target directory set for the
# main crate.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$here/target}"

if ! targets=$(cargo fuzz list); then
    echo "fuzz smoke FAILED: \`cargo fuzz list\` failed in $here" >&2
    exit 1
fi
if [ -z "$targets" ]; then
    echo "fuzz smoke FAILED: \`cargo fuzz list\` found no targets in $here" >&2
    exit 1
fi
# A target file without its [[bin]] in Cargo.toml would silently never run.
for f in fuzz_targets/*.rs; do
    t=$(basename "$f" .rs)
    if ! grep -qx "$t" <<<"$targets"; then
        echo "fuzz smoke FAILED: $f is not a target of fuzz/Cargo.toml" >&2
        exit 1
    fi
done
echo "== building fuzz targets: $(echo $targets)"
cargo fuzz build
built=$(date +%s)

failed=()
for t in $targets; do
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    flags=(-max_total_time="$secs" -timeout=10 -print_final_stats=1)
    [ -f "dict/$t.dict" ] && flags+=(-dict="dict/$t.dict")
    # A target's own libFuzzer flags, one a line (why: in a comment of that file).
    # `-detect_leaks=0` also turns off the leak check LeakSanitizer runs at exit.
    run_env=()
    if [ -f "options/$t.flags" ]; then
        while read -r flag; do
            case "$flag" in '' | '#'*) continue ;; esac
            flags+=("$flag")
            if [ "$flag" = -detect_leaks=0 ]; then
                run_env=(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
            fi
        done <"options/$t.flags"
    fi
    echo "== fuzzing $t for ${secs}s"
    if env "${run_env[@]}" cargo fuzz run "$t" "${dirs[@]}" -- "${flags[@]}" >"$CARGO_TARGET_DIR/fuzz-$t.log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|Done )' "$CARGO_TARGET_DIR/fuzz-$t.log" || true
    else
        failed+=("$t")
        echo "!! fuzz target $t failed; its output:"
        grep -v -E '^(#[0-9]|\s+NEW_FUNC)' "$CARGO_TARGET_DIR/fuzz-$t.log" | tail -n 60
        ls -1 "artifacts/$t/" 2>/dev/null | sed "s|^|   reproducer: fuzz/artifacts/$t/|" || true
    fi
done

end=$(date +%s)
echo "== fuzz smoke: $(( built - start ))s install+build, $(( end - built ))s fuzzing"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz smoke passed: ${targets//$'\n'/ }"
