#!/bin/sh
# A cached Debian 13 (trixie) root for building and testing this checkout against LibTorch 2.6
# (make test-libtorch2, make check-cuda-build). Root only (debootstrap, mount, chroot).
#
#   tools/debian13.sh root ROOT PACKAGE...
#       makes ROOT once (debootstrap --variant=minbase trixie, main contrib non-free) and
#       installs PACKAGE... in it; a later call installs only when the list changed.
#   tools/debian13.sh run ROOT SRC GOLDEN CLIP_DATA FACEAPI COMMAND
#       copies the checkout SRC (its tracked and untracked, not ignored files) to
#       ROOT/work/libdiffclip (a build/ already there is kept, so that a second run rebuilds
#       only what changed), binds GOLDEN, CLIP_DATA and FACEAPI read-only at /work/golden,
#       /work/clip and /work/faceapi, mounts /proc, /sys and /dev, and runs COMMAND with sh -c
#       in /work/libdiffclip inside the root (CI passed on).
# Whatever it mounts is unmounted when it ends, also on failure or a signal; it never removes
# a directory with a mount inside.
set -eu

MIRROR=${DEBIAN13_MIRROR:-http://deb.debian.org/debian}
MOUNTED=""

die() { echo "debian13.sh: $*" >&2; exit 1; }

# Unmounts in the reverse order of mounting; a mount that will not go is reported, and the
# caller never removes its root.
cleanup()
{
    status=$?
    for m in $MOUNTED; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || {
            echo "debian13.sh: could not unmount $m" >&2
            status=1
        }
    done
    MOUNTED=""
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_at()  # mount_at TARGET MOUNT-ARGS...: mounts and records TARGET for cleanup
{
    target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED="$target $MOUNTED"
}

mount_system()  # mount_system ROOT
{
    mount_at "$1/proc" -t proc proc
    mount_at "$1/sys" -t sysfs sysfs
    mount_at "$1/dev" --bind /dev
}

unmount_all()
{
    for m in $MOUNTED; do
        umount "$m"
    done
    MOUNTED=""
}

in_root()  # in_root ROOT COMMAND: COMMAND with sh -c inside ROOT, a minimal environment
{
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 CI="${CI:-}" \
        DEBIAN_FRONTEND=noninteractive chroot "$1" /bin/sh -c "$2"
}

make_root()  # make_root ROOT PACKAGE...
{
    root=$1
    shift
    [ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount, chroot)"
    if [ ! -f "$root/.debootstrapped" ]; then
        command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps)"
        # A half-made root from an interrupted run: it has no mounts (they end with the run
        # that made them), but check before removing it.
        if [ -e "$root" ]; then
            grep -q " $(realpath "$root")/" /proc/mounts && die "$root has mounts inside; not removed"
            rm -rf "$root"
        fi
        mkdir -p "$(dirname "$root")"
        debootstrap --variant=minbase --components=main,contrib,non-free trixie "$root" "$MIRROR"
        # Recommends would pull in documentation and GUI libraries the build never uses.
        printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
            > "$root/etc/apt/apt.conf.d/90lean"
        touch "$root/.debootstrapped"
    fi
    wanted=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
    if [ "$(cat "$root/.packages" 2>/dev/null)" != "$wanted" ]; then
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        mount_system "$root"
        in_root "$root" "apt-get update -q && apt-get install -y -q $wanted && apt-get clean"
        unmount_all
        printf '%s' "$wanted" > "$root/.packages"
    fi
}

# bind_ro HOSTDIR ROOTDIR: a read-only bind (the remount makes it read-only where the kernel
# ignores -o ro on a bind)
bind_ro()
{
    [ -d "$1" ] || die "$1 is not a directory"
    mount_at "$2" --bind "$1"
    mount -o remount,bind,ro "$2"
}

run_in_root()  # run_in_root ROOT SRC GOLDEN CLIP_DATA FACEAPI COMMAND
{
    root=$1 src=$2 golden=$3 clip=$4 faceapi=$5 command=$6
    [ -f "$root/.packages" ] || die "$root is not made yet (tools/debian13.sh root)"
    dest=$root/work/libdiffclip
    mkdir -p "$dest"
    # The checkout as git sees it, without build outputs; files deleted from the checkout since
    # the last run are removed from the copy (build/ there is kept, and so is what the build
    # writes into lib/).
    (cd "$src" && git ls-files -z -co --exclude-standard) > "$root/work/files.new"
    if [ -f "$root/work/files" ]; then
        tr '\0' '\n' < "$root/work/files" | sort > "$root/work/files.old.txt"
        tr '\0' '\n' < "$root/work/files.new" | sort > "$root/work/files.new.txt"
        comm -23 "$root/work/files.old.txt" "$root/work/files.new.txt" | while IFS= read -r f; do
            rm -f "$dest/$f"
        done
        rm -f "$root/work/files.old.txt" "$root/work/files.new.txt"
    fi
    (cd "$src" && tar -cf - --null --no-recursion -T -) < "$root/work/files.new" | tar -xpf - -C "$dest"
    mv "$root/work/files.new" "$root/work/files"
    mount_system "$root"
    bind_ro "$golden" "$root/work/golden"
    bind_ro "$clip" "$root/work/clip"
    bind_ro "$faceapi" "$root/work/faceapi"
    # The browser test's playwright-core, as the host's make deps installed it (npm inside the
    # root does not have the host's registry certificates).
    if [ -d "$src/test/browser/node_modules" ]; then
        bind_ro "$src/test/browser/node_modules" "$dest/test/browser/node_modules"
    fi
    in_root "$root" "cd /work/libdiffclip && $command"
}

[ $# -ge 1 ] || die "usage: debian13.sh root ROOT PACKAGE... | run ROOT SRC GOLDEN CLIP_DATA FACEAPI COMMAND"
# One run at a time per root: two would copy into the same tree and mount over each other.
[ $# -ge 2 ] && mkdir -p "$(dirname "$2")" && exec 9>"$2.lock" && flock 9
case $1 in
root)
    [ $# -ge 3 ] || die "usage: debian13.sh root ROOT PACKAGE..."
    shift
    make_root "$@"
    ;;
run)
    [ $# -eq 7 ] || die "usage: debian13.sh run ROOT SRC GOLDEN CLIP_DATA FACEAPI COMMAND"
    shift
    run_in_root "$@"
    ;;
*)
    die "unknown command $1"
    ;;
esac
