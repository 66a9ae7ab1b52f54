#!/usr/bin/env bash
# Build the libFuzzer harness of the C accelerator with AddressSanitizer and
# UndefinedBehaviorSanitizer (needs clang with libFuzzer: the Debian packages clang and
# libclang-rt-dev), then, given arguments, run it:
#
#     fuzz/native/build.sh                                 # build fuzz/native/fuzz_speedups
#     fuzz/native/build.sh -runs=10000000 -jobs=1 CORPUS   # build, then run with those flags
#
# Every input goes to Layout.decode / Layout.encode (whole messages) with FUZZ_TARGET=layout;
# FUZZ_LAYOUT_SEEDS=DIR writes seeds for them at start-up (valid encodings of a schema that
# holds every form and field kind, and the inputs that built values of it):
#
#     FUZZ_TARGET=layout FUZZ_LAYOUT_SEEDS=CORPUS fuzz/native/build.sh -runs=10000000 \
#         -max_len=256 CORPUS
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/../../.venv/bin/python}"
config="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("BINDIR"))')/python3-config"
clang -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    $("$config" --includes) "$here/fuzz_speedups.c" -o "$here/fuzz_speedups" \
    $("$config" --embed --ldflags)
if [ "$#" -gt 0 ]; then
    # Python's own allocations at exit are not this harness's: leak checks are the test suite's
    # (tests/test_accel.py repeats every entry point and checks that memory stays flat).
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        "$here/fuzz_speedups" "$@"
fi
