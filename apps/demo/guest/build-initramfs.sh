#!/bin/bash
# Builds the edu guest for `iommu-demo exec -- qemu-system-x86_64 ... -device vfio-pci,...`: a Debian 6.1
# kernel and a busybox initramfs whose /init (init.sh) drives the passed-through edu device.
# Everything comes from Debian's apt (busybox-static, cpio, linux-image-6.1.0-*-amd64); nothing is committed.
# Output: ${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/iommu-sim/guest}/{vmlinuz,initramfs.cpio}; prints OUT.
# The recorder's kernel (~/.cache/iommu-sim-recorder/x86/6.1.0-*/vmlinuz) is reused when present.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/iommu-sim/guest}"
mkdir -p "$OUT"
need=()
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ ! -s "$OUT/vmlinuz" ]; then
	cached=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/iommu-sim-recorder/x86/6.1.0-*-amd64/vmlinuz 2>/dev/null | head -n 1 || true)
	if [ -n "$cached" ]; then
		cp "$cached" "$OUT/vmlinuz"
	else
		tmp=$(mktemp -d)
		pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -n 1)
		(cd "$tmp" && apt-get download "$pkg" >&2 && dpkg-deb -x ./*.deb root)
		cp "$tmp"/root/boot/vmlinuz-* "$OUT/vmlinuz"
		rm -rf "$tmp"
	fi
fi
stage=$(mktemp -d)
mkdir -p "$stage"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$stage/bin/busybox"
cp "$HERE/init.sh" "$stage/init"
chmod 755 "$stage/init"
(cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) > "$OUT/initramfs.cpio"
rm -rf "$stage"
echo "$OUT"
