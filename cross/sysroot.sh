#!/bin/sh
# A sysroot with the target's libraries the C engines link (libcrypto, libargon2), from
# Debian's own packages for that architecture: `cross/sysroot.sh arm64 build/sysroot`
# writes build/sysroot/arm64/ and build/sysroot/arm64.ini (the path, for the cross file).
#
# Why not `apt-get install libssl-dev:arm64`: multiarch packages must match the host's
# version to the byte, and a mirror whose security index for one architecture lags
# (it happens) then blocks the install, or drags the host's own libssl along. Unpacking
# the target's packages into a directory touches nothing on the host, like a Yocto or
# vendor SDK sysroot would. apt still needs the architecture's index:
#   dpkg --add-architecture arm64 && apt-get update
set -eu
arch=$1
dest=$(realpath -m "$2")
case $arch in
arm64 | armhf) ;;
*) echo "sysroot.sh: arm64 or armhf, not $arch" >&2; exit 2 ;;
esac
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    echo "sysroot.sh: apt knows no $arch packages: dpkg --add-architecture $arch && apt-get update" >&2
    exit 1
fi
root=$dest/$arch
rm -rf "$root"
mkdir -p "$root"
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
# apt-get download drops to its sandbox user (_apt) where that user may write: give it
# this private directory, and nobody else.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$debs"; fi
(cd "$debs" && apt-get download -q \
    "libssl-dev:$arch" "libssl3:$arch" "libargon2-dev:$arch" "libargon2-1:$arch")
for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$root"
done
printf "# written by cross/sysroot.sh\n[constants]\nsysroot = '%s'\n" "$root" > "$dest/$arch.ini"
echo "sysroot: $root"
