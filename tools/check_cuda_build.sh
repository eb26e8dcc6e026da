#!/bin/sh
# make check-cuda-build, inside the Debian 13 root (tools/debian13.sh run): builds the library
# and diffclip against Debian 13's CUDA LibTorch 2.6 through `make LIBTORCH=dir`, and checks
# that the result links libtorch_cuda and that LibTorch's CUDA backend registers when it is
# loaded (this machine has no GPU: the check ends at "no CUDA device", reported as DC_EDEVICE).
#
# libtorch-cuda-dev cannot be installed beside libtorch-dev (they conflict), and its
# nvidia-cudnn downloads cuDNN from outside at install time; so the packages libtorch_cuda
# needs are fetched with apt-get download and unpacked with dpkg-deb -x under CACHE (kept in
# the root, so that a later run only builds), cuDNN excepted: an empty libcudnn.so.9 with the
# real soname stands in for it, enough for the loader (nothing of cuDNN runs without a GPU).
#   tools/check_cuda_build.sh [JOBS]
set -eu
jobs=${1:-2}
cache=/var/cache/diffclip-cuda
prefix=$cache/prefix
libtorch=$cache/libtorch            # the LIBTORCH layout (include/, lib/) over the prefix
build=build/cuda
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

fail() { echo "check-cuda-build: FAIL: $*" >&2; exit 1; }

# The packages to unpack: libtorch-cuda-dev, libtorch-cuda-2.6, and what libtorch-cuda-2.6
# depends on, recursively, that the root lacks, as apt would choose them (the driver library
# libcuda1 and its JIT among them), without nvidia-cudnn and what only it brings (the 900 MB
# nvidia-cuda-dev).
cuda_packages()
{
    chosen=$(apt-get install -s -q libtorch-cuda-dev | awk '/^Inst /{print $2}' | sort -u)
    direct=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
                 --no-replaces --no-enhances libtorch-cuda-2.6 |
             awk '$1 ~ /Depends:/ && $2 !~ /^</ {print $2}' | grep -vx nvidia-cudnn)
    # shellcheck disable=SC2086 # one word per package
    closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
                  --no-breaks --no-replaces --no-enhances $direct libcuda1 | grep -v '^[ <]' | sort -u)
    printf '%s\n' "$chosen" > "$cache/chosen"
    printf '%s\n' "$closure" > "$cache/closure"
    { comm -12 "$cache/chosen" "$cache/closure"; echo libtorch-cuda-2.6; echo libtorch-cuda-dev; } |
        grep -vx nvidia-cudnn | sort -u
    rm -f "$cache/chosen" "$cache/closure"
}

if [ ! -f "$cache/.complete" ]; then
    rm -rf "$cache"
    mkdir -p "$cache/debs"
    apt-get update -q
    packages=$(cuda_packages | tr "\n" " ")
    echo "check-cuda-build: unpacking $packages"
    # shellcheck disable=SC2086 # one word per package
    (cd "$cache/debs" && apt-get download -q $packages)
    for deb in "$cache"/debs/*.deb; do
        dpkg-deb -x "$deb" "$prefix"
    done
    rm -rf "$cache/debs"
    mkdir -p "$libtorch"
    ln -s "$prefix/usr/include" "$libtorch/include"
    ln -s "$prefix/usr/lib/$multiarch" "$libtorch/lib"
    touch "$cache/.complete"
fi

# cuDNN's stand-in: its soname, symbol version and functions, cudnnGetVersion answering 9.1
# (what Debian 13's LibTorch was built with); none of them runs without a GPU.
torchlib=$prefix/usr/lib/$multiarch
cudnn=$(readelf -d "$torchlib/libtorch_cuda.so" | sed -n 's/.*NEEDED.*\[\(libcudnn[^]]*\)\]/\1/p')
[ -n "$cudnn" ] || fail "libtorch_cuda.so does not name cuDNN; update this script"
printf '%s { global: *; };\n' "$cudnn" > "$cache/stub.map"
# Every cuDNN function libtorch_cuda imports (some are bound when it loads) returns 0 here.
{
    printf '%s\n' '#include <stddef.h>' 'size_t cudnnGetVersion(void) { return 90100; }'
    nm -D --undefined-only "$torchlib/libtorch_cuda.so" | sed -n 's/.* \(cudnn[A-Za-z0-9_]*\)@.*/\1/p' |
        sort -u | grep -vx cudnnGetVersion | sed 's/.*/int &(void) { return 0; }/'
} > "$cache/stub.c"
cc -shared -fPIC -Wl,-soname,"$cudnn" -Wl,--version-script="$cache/stub.map" \
    -o "$torchlib/$cudnn" "$cache/stub.c"

# The check's own build tree: the CPU build in build/ is left as it is. cuDNN's stand-in has
# none of cuDNN's symbols: executables may link against it with those left undefined.
make -j"$jobs" LIBTORCH="$libtorch" BUILD="$build" LIBOUT="$build/lib" \
    LDFLAGS=-Wl,--allow-shlib-undefined all "$build/test/unit/test_ctorch"

lib=$build/lib/libdiffclip.so
needed=$(readelf -d "$lib" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')
# Debian's sonames carry the version (libtorch_cuda.so.2.6), pip's do not.
for want in libtorch_cuda.so libc10_cuda.so; do
    case " $needed " in
    *" $want "* | *" $want".*) ;;
    *) fail "$lib does not need $want (NEEDED: $needed)" ;;
    esac
done
echo "check-cuda-build: $lib needs $needed"

# Installed, these libraries would lie in the loader's default paths (the driver's through
# ld.so.conf); unpacked, the libraries libtorch_cuda needs are found through the path (our
# rpath reaches only our direct dependencies).
export LD_LIBRARY_PATH="$torchlib:$prefix/usr/lib:$torchlib/nvidia/current"

# LibTorch's CUDA backend registers when libtorch_cuda loads; asking for a device, which this
# machine lacks, is then DC_EDEVICE saying so (the tool exits 1).
cli=$build/bin/diffclip
version=$("$cli" --version) || fail "diffclip --version failed"
echo "$version"
case $version in
*"CUDA backend registered, 0 CUDA device(s)"*) ;;
*) fail "diffclip --version does not show the CUDA backend registered" ;;
esac
status=0
error=$("$cli" invert --model none.pt --x none.npy --out none.npy --device cuda 2>&1) || status=$?
echo "$error"
[ "$status" -eq 1 ] || fail "--device cuda exited $status, not 1"
case $error in
*"finds no CUDA device"*) ;;
*) fail "--device cuda did not say that no CUDA device was found" ;;
esac
# The shim's own tests of the CUDA build: the no-device branch of the device and memory tests.
"$build/test/unit/test_ctorch" || fail "test_ctorch failed against the CUDA build"
echo "check-cuda-build: PASS"
