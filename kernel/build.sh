#!/bin/bash
# Builds the KVM stage1 guest kernel (an uncompressed vmlinux, booted by QEMU
# through its PVH entry point) from Debian's linux-source-6.1 package:
# `make tinyconfig`, then kernel/config.fragment merged on top.
#
# Usage (from the repository root): kernel/build.sh [OUTDIR]
#   OUTDIR defaults to build/kernel; relative paths are taken from the
#   repository root. It receives vmlinux and config (the final .config).
#
# The build takes 11-15 minutes on 2 cores, so its result is cached in
# ${RKT_KERNEL_CACHE:-/var/cache/rkt/kernel}/<key>/{vmlinux,config}, where
# <key> is the sha256 of this script, the fragment and the exact
# linux-source package version: changing any of them builds anew, anything
# else is a copy. Builds happen in a temporary directory inside the cache
# and are renamed into place only when complete, so an interrupted build
# never leaves an entry behind that a later run would trust.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
script="$repo_root/kernel/build.sh"
fragment="$repo_root/kernel/config.fragment"
source_pkg=linux-source-6.1
source_tar=/usr/src/$source_pkg.tar.xz
cache_root=${RKT_KERNEL_CACHE:-/var/cache/rkt/kernel}

out=${1:-build/kernel}
case $out in
/*) ;;
*) out=$repo_root/$out ;;
esac

die() {
	echo "kernel/build.sh: $*" >&2
	exit 1
}

src_version=$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null) ||
	die "package $source_pkg is not installed; install it with: apt-get install $source_pkg"
[[ -r $source_tar ]] || die "$source_tar is missing; reinstall it with: apt-get install --reinstall $source_pkg"

key=$({
	cat "$fragment"
	printf '%s\n' "$src_version"
	cat "$script"
} | sha256sum | cut -d' ' -f1)
entry=$cache_root/$key

# install_output copies the cached kernel to OUTDIR, through a temporary name
# so a reader of OUTDIR/vmlinux never sees a half-written file.
install_output() {
	mkdir -p "$out"
	local f
	for f in vmlinux config; do
		cp "$entry/$f" "$out/.$f.tmp"
		mv -f "$out/.$f.tmp" "$out/$f"
	done
	echo "guest kernel: $out/vmlinux (cache key $key)"
}

if [[ -f $entry/vmlinux ]]; then
	install_output
	exit 0
fi

mkdir -p "$cache_root" || die "cannot create the kernel cache $cache_root; set RKT_KERNEL_CACHE to a writable directory"

# One build per key at a time: a second caller waits and then finds the
# cache entry instead of building the same kernel again.
exec {lock_fd}>"$cache_root/.$key.lock"
if ! flock -n "$lock_fd"; then
	echo "waiting for another build of this kernel (lock $cache_root/.$key.lock)"
	flock "$lock_fd"
fi
if [[ -f $entry/vmlinux ]]; then
	install_output
	exit 0
fi

for tool in make gcc flex bison bc xz; do
	command -v "$tool" >/dev/null ||
		die "$tool is needed to build the kernel; install it with: apt-get install bc bison flex libelf-dev libssl-dev dwarves make gcc xz-utils"
done

# Build trees of this key left by a killed build (SIGKILL skips the EXIT
# trap) are stale: the lock says no other build of the key is running.
rm -rf "$cache_root/.build.$key."*
tmp=$(mktemp -d "$cache_root/.build.$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Turn ^C and kill into a normal exit so the EXIT trap removes the tree.
trap 'exit 130' INT TERM

echo "building the guest kernel (first time: about 11-15 minutes on 2 cores; cached afterwards in $entry)"
echo "  unpacking $source_tar ($source_pkg $src_version)"
mkdir "$tmp/src"
tar -xJf "$source_tar" -C "$tmp/src" --strip-components=1

cd "$tmp/src"
# Fixed build user and host keep the builder's identity out of `uname -v`.
export KBUILD_BUILD_USER=rkt KBUILD_BUILD_HOST=rkt

echo "  configuring: tinyconfig + kernel/config.fragment"
make -s tinyconfig >"$tmp/config.log" 2>&1 || {
	cat "$tmp/config.log" >&2
	die "make tinyconfig failed"
}
scripts/kconfig/merge_config.sh -m .config "$fragment" >>"$tmp/config.log" 2>&1 || {
	cat "$tmp/config.log" >&2
	die "merging $fragment failed"
}
make -s olddefconfig >>"$tmp/config.log" 2>&1 || {
	cat "$tmp/config.log" >&2
	die "make olddefconfig failed"
}

# Kconfig silently drops an option whose dependencies are unmet or whose
# name changed; the guest would then lack it at run time. Check every line.
missing=()
while IFS= read -r line; do
	grep -qxF -- "$line" .config || missing+=("$line (got: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo absent))")
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$fragment")
while IFS= read -r option; do
	grep -q "^$option=" .config && missing+=("# $option is not set (got: $(grep "^$option=" .config))")
done < <(sed -nE 's/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1/p' "$fragment")
if ((${#missing[@]})); then
	printf '  %s\n' "${missing[@]}" >&2
	die "${#missing[@]} option(s) of $fragment did not end up in .config as written; fix their dependencies in the fragment"
fi

# Show progress as a running count of compiled files instead of ~1000 kbuild
# lines ("  CC      path", "  LD      path", ...); anything else make says
# (warnings, errors) goes through as is.
echo "  compiling vmlinux with $(nproc) jobs"
make -j"$(nproc)" vmlinux 2>&1 | awk '
	NF >= 2 && $1 ~ /^[A-Z][A-Z0-9_.]*$/ {
		if ($1 == "CC" && ++n % 100 == 0) { printf "  %5d files compiled (%s)\n", n, $2; fflush() }
		next
	}
	{ print; fflush() }
	END { printf "  %5d files compiled\n", n }
' || die "compiling the kernel failed; see make's errors above"

echo "  built $(make -s kernelrelease)"
mkdir "$tmp/entry"
cp vmlinux "$tmp/entry/vmlinux"
cp .config "$tmp/entry/config"
mv -T "$tmp/entry" "$entry"
install_output
