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
    lib=$prefix/usr/lib/$multiarch
    cudnn=$(readelf -d "$lib/libtorch_cuda.so" | sed -n 's/.*NEEDED.*\[\(libcudnn[^]]*\)\]/\1/p')
    [ -n "$cudnn" ] || fail "libtorch_cuda.so does not name cuDNN; update this script"
    echo 'int diffclip_cudnn_stand_in;' > "$cache/stub.c"
    cc -shared -Wl,-soname,"$cudnn" -o "$lib/$cudnn" "$cache/stub.c"
    rm "$cache/stub.c"
    mkdir -p "$libtorch"
    ln -s "$prefix/usr/include" "$libtorch/include"
    ln -s "$lib" "$libtorch/lib"
    touch "$cache/.complete"
fi

# The check's own build tree: the CPU build in build/ is left as it is. cuDNN's stand-in has
# none of cuDNN's symbols: executables may link against it with those left undefined.
make -j"$jobs" LIBTORCH="$libtorch" BUILD="$build" LIBOUT="$build/lib" \
    LDFLAGS=-Wl,--allow-shlib-undefined all "$build/test/unit/test_ctorch"

lib=$build/lib/libdiffclip.so
needed=$(readelf -d "$lib" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')
for want in libtorch_cuda.so libc10_cuda.so; do
    case " $needed " in
    *" $want "*) ;;
    *) fail "$lib does not need $want (NEEDED: $needed)" ;;
    esac
done
echo "check-cuda-build: $lib needs $needed"

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
