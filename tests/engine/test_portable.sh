#!/bin/sh
# test_portable.sh -- canopy builds on CPUs that are not x86: every C source
# of classifier/ (and the generated ONNX code) compiles for aarch64 without a
# warning, canopy's AVX-512 and AVX2 code guarded out (CNP_X86 is 0 there,
# the engine runs OpenBLAS and plain C), and no cnp_ symbol the objects use
# is left undefined. Debian's cross toolchain has no aarch64 GDAL to link
# against, so the check ends at one relocatable object.
# Exit 0 pass, 77 on a host that is not x86 (its own build is the check),
# 99 when the cross compiler is missing (scripts/install-deps installs it).
set -eu

CC=aarch64-linux-gnu-gcc
case "$(uname -m)" in
    x86_64 | i?86) ;;
    *) echo "SKIP: this host is not x86; its own build is the check"; exit 77 ;;
esac
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "FAIL: $CC not found; run scripts/install-deps (gcc-aarch64-linux-gnu)" >&2
    exit 99
fi

src=${CANOPY_SRCDIR:?} build=${CANOPY_BUILDDIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The dependencies' headers are the host's: after the cross compiler's own.
deps=""
for f in ${CNP_DEP_CFLAGS:-}; do
    case "$f" in
        -I*) deps="$deps -idirafter ${f#-I}" ;;
        *) deps="$deps $f" ;;
    esac
done

n=0 failed=0
for f in $(find "$src/classifier" -name '*.c' ! -name main.c | sort) \
         $(find "$build/classifier" -name '*.pb-c.c' | sort); do
    n=$((n + 1))
    # shellcheck disable=SC2086 # $deps is a list of flags
    if ! "$CC" -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror -fopenmp -O1 \
            -DHAVE_CONFIG_H -DCNP_PKGDATADIR='"/usr/share/canopy"' \
            -I"$build" -I"$src" -I"$src/classifier" -I"$build/classifier" $deps \
            -idirafter /usr/include -c -o "$tmp/$n.o" "$f" 2>"$tmp/err"; then
        echo "FAIL: $f does not compile for aarch64:" >&2
        head -20 "$tmp/err" >&2
        failed=1
    fi
done
[ "$failed" = 0 ] || exit 1
[ "$n" -gt 50 ] || { echo "FAIL: only $n sources found under $src/classifier" >&2; exit 1; }

aarch64-linux-gnu-ld -r -o "$tmp/all.o" "$tmp"/[0-9]*.o
undefined=$(aarch64-linux-gnu-nm -u "$tmp/all.o" | awk '$2 ~ /^cnp_/ {print $2}')
if [ -n "$undefined" ]; then
    echo "FAIL: used but not defined on aarch64:" $undefined >&2
    exit 1
fi
echo "PASS: $n sources compile for aarch64; no cnp_ symbol undefined"
