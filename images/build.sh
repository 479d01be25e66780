#!/usr/bin/env bash
# Builds the example ACIs the functional tests run:
#
#   OUTDIR/busybox.aci    rkt.dev/examples/busybox: busybox-static with every
#                         applet linked under /bin; runs /bin/sh.
#   OUTDIR/inspector.aci  rkt.dev/examples/inspector: the static
#                         tests/inspector binary as /inspector, plus
#                         /bin/busybox and /bin/sh so that `rkt enter` has a
#                         shell to start.
#
# Both carry /etc/passwd and /etc/group with root (0) and user (1000), so
# tests can run apps as a name or as a non-root ID, and empty /tmp, /proc,
# /sys and /dev as mount targets.
#
# Usage: images/build.sh OUTDIR VERSION
#
# The images are built in a staging directory and renamed into place, so an
# interrupted build never leaves a half-written ACI, and running the script
# again simply rebuilds. Every file gets the same mtime (SOURCE_DATE_EPOCH,
# default 0) so the rootfs content does not depend on when it was built;
# actool stamps the manifest entry with the current time, so image IDs still
# differ between builds.
#
# Environment: BUSYBOX (default /bin/busybox, must be static: Debian's
# busybox-static), ACTOOL (default build/tools/actool, built if missing), GO.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 OUTDIR VERSION" >&2
	exit 2
fi
outdir=$1
version=$2
# The version is substituted into JSON; keep it to characters that need no
# escaping there or in sed.
if [[ ! $version =~ ^[A-Za-z0-9._+~-]+$ ]]; then
	echo "$0: version '$version' must match [A-Za-z0-9._+~-]+" >&2
	exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
go=${GO:-go}
busybox=${BUSYBOX:-/bin/busybox}
actool=${ACTOOL:-$repo/build/tools/actool}
epoch=${SOURCE_DATE_EPOCH:-0}

if [[ ! -x $busybox ]]; then
	echo "$0: $busybox not found; install busybox-static" >&2
	exit 1
fi
# A dynamically linked busybox would not run in an image without libc.
if ldd "$busybox" >/dev/null 2>&1; then
	echo "$0: $busybox is dynamically linked; install busybox-static" >&2
	exit 1
fi
if [[ ! -x $actool ]]; then
	(cd "$repo" && GOFLAGS=-mod=mod "$go" build -o "$actool" github.com/appc/spec/actool)
fi

mkdir -p "$outdir"
stage=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# base_rootfs DIR creates what both images share.
base_rootfs() {
	local root=$1
	mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
	chmod 1777 "$root/tmp"
	cat >"$root/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		user:x:1000:1000:user:/home/user:/bin/sh
	EOF
	cat >"$root/etc/group" <<-'EOF'
		root:x:0:
		user:x:1000:
	EOF
	install -m 0755 "$busybox" "$root/bin/busybox"
}

# finish NAME writes the manifest, pins mtimes, builds and checks the ACI,
# then moves it into OUTDIR.
finish() {
	local name=$1 dir=$stage/$1
	sed "s|@VERSION@|$version|g" "$repo/images/$name/manifest.in" >"$dir/manifest"
	find "$dir" -exec touch -h -d "@$epoch" {} +
	"$actool" build --owner-root --overwrite "$dir" "$stage/$name.aci"
	"$actool" validate "$stage/$name.aci"
	mv -f "$stage/$name.aci" "$outdir/$name.aci"
}

base_rootfs "$stage/busybox/rootfs"
# One process for ~400 links: a fork per `ln` takes seconds on a busy host.
(cd "$stage/busybox/rootfs/bin" && "$busybox" --list | grep -vx busybox |
	perl -nle 'symlink("busybox", $_) or die "$_: $!\n"')
finish busybox

base_rootfs "$stage/inspector/rootfs"
ln -s busybox "$stage/inspector/rootfs/bin/sh"
mkdir "$stage/inspector/rootfs/data"
(cd "$repo" && CGO_ENABLED=0 GOFLAGS=-mod=mod "$go" build -trimpath -buildvcs=false -ldflags='-s -w' \
	-o "$stage/inspector/rootfs/inspector" ./tests/inspector)
finish inspector
