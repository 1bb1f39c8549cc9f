#!/bin/busybox sh
# /init of the edu guest (apps/demo/guest/build-initramfs.sh): find QEMU's edu (1234:11e8) on the guest's PCI
# bus, DMA a pattern from guest RAM into edu and back to another page, raise an MSI, print what it saw.
# The DMA pages are the kernel's `memmap=64K$0x2000000` hole (reserved, so /dev/mem may reach them).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "EDU-GUEST: $*"; }
EDU=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && EDU=$d
done
if [ -z "$EDU" ]; then
	say "no edu device on the PCI bus"; poweroff -f
fi
BAR=$(($(head -n 1 "$EDU/resource" | cut -d' ' -f1)))
say "edu at ${EDU##*/} BAR0 $(printf 0x%x "$BAR")"
# PCI_COMMAND: memory space + bus master
printf '\006' | dd of="$EDU/config" bs=1 seek=4 conv=notrunc 2>/dev/null
r() { devmem $((BAR + $1)) 32; }
w() { devmem $((BAR + $1)) 32 "$2"; }
say "id $(r 0x0)"
w 0x4 0x12345678
say "liveness $(r 0x4) (expect 0xEDCBA987)"
SRC=0x2000000
DST=0x2001000
devmem $SRC 32 0xcafef00d; devmem $((SRC + 4)) 32 0x01234567
devmem $((SRC + 8)) 32 0x89abcdef; devmem $((SRC + 12)) 32 0xdeadbeef
for a in 0 4 8 12; do devmem $((DST + a)) 32 0; done
dma() { # src dst count cmd: wait for the run bit to clear
	w 0x80 "$1"; w 0x84 0; w 0x88 "$2"; w 0x8c 0; w 0x90 "$3"; w 0x94 0; w 0x98 "$4"
	n=0; while [ $(($(r 0x98) & 1)) -ne 0 ] && [ $n -lt 100 ]; do n=$((n + 1)); done
}
dma $SRC 0x40000 16 1
dma 0x40000 $DST 16 3
OUT="$(devmem $DST 32) $(devmem $((DST + 4)) 32) $(devmem $((DST + 8)) 32) $(devmem $((DST + 12)) 32)"
say "dma round trip wrote 0xCAFEF00D 0x01234567 0x89ABCDEF 0xDEADBEEF, read back $OUT"
# MSI: 64-bit capability at 0x40 (address 0x44/0x48, data 0x4c), vector 0xd1 on CPU 0 has no handler,
# so its arrival is the kernel's "No irq handler for vector" line.
cfgw() { # offset, 4 bytes little-endian as octal escapes
	printf "$2" | dd of="$EDU/config" bs=1 seek=$(($1)) conv=notrunc 2>/dev/null
}
cfgw 0x44 '\000\000\340\376'
cfgw 0x48 '\000\000\000\000'
cfgw 0x4c '\321\000\000\000'
cfgw 0x42 '\001'
w 0x60 1
sleep 1
say "irq status $(r 0x24)"
dmesg | grep -i "irq handler for vector" | sed 's/^/EDU-GUEST: kernel: /'
say "done"
poweroff -f
