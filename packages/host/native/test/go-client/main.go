// SPDX-License-Identifier: MIT

// A Go client for the seccomp door's tests (seccomp-door-go.test.ts), built with CGO_ENABLED=0 so the
// Go runtime makes every system call itself and no preload library can reach it. It lists the group's
// devices with os.ReadDir, reads their iommu_group link, opens the container and the group with
// os.OpenFile and asks VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION(TYPE1v2), VFIO_GROUP_GET_STATUS,
// VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO (the capability chain) and MAP_DMA of a
// slice of its own memory; then opens edu, maps BAR0 with syscall.Mmap, arms its MSI on an eventfd and
// has edu DMA a string from one page of that slice into its buffer and back into the next page, each
// completion counted on the eventfd. Argument: the group number.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

const (
	vfioGetAPIVersion   = 0x3b64
	vfioCheckExtension  = 0x3b65
	vfioSetIommu        = 0x3b66
	vfioGroupGetStatus  = 0x3b67
	vfioGroupSetContain = 0x3b68
	vfioIommuGetInfo    = 0x3b70
	vfioIommuMapDma     = 0x3b71
	vfioIommuUnmapDma   = 0x3b72
	vfioGroupGetDevice  = 0x3b6a
	vfioDeviceRegion    = 0x3b6c
	vfioDeviceSetIrqs   = 0x3b6e
	vfioType1v2Iommu    = 3

	eduID, eduDmaSrc, eduDmaDst, eduDmaCount, eduDmaCmd = 0x00, 0x80, 0x88, 0x90, 0x98
	eduBuf                                              = 0x40000
	eduStart, eduToRAM, eduIrq                          = 1, 2, 4
)

var bar []byte

func rd32(off int) uint32    { return *(*uint32)(unsafe.Pointer(&bar[off])) }
func wr64(off int, v uint64) { *(*uint64)(unsafe.Pointer(&bar[off])) = v }
func regionInfo(dev uintptr, index uint32) (size, offset uint64) {
	ri := struct {
		argsz, flags, index, capOffset uint32
		size, offset                   uint64
	}{32, 0, index, 0, 0, 0}
	if _, e := ioctl(dev, vfioDeviceRegion, uintptr(unsafe.Pointer(&ri))); e != 0 {
		fmt.Println("region info", e)
		os.Exit(1)
	}
	return ri.size, ri.offset
}

// edu DMAs len bytes from src to dst with its completion interrupt; returns the eventfd's count.
func eduDma(efd int, src, dst, n uint64, toRAM bool) uint64 {
	cmd := uint64(eduStart | eduIrq)
	if toRAM {
		cmd |= eduToRAM
	}
	wr64(eduDmaSrc, src)
	wr64(eduDmaDst, dst)
	wr64(eduDmaCount, n)
	wr64(eduDmaCmd, cmd)
	var cnt [8]byte
	if k, err := syscall.Read(efd, cnt[:]); k != 8 || err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(cnt[:])
}

func ioctl(fd uintptr, req uintptr, arg uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, arg)
	return r, e
}

// show makes one ioctl and prints "name ret errno-number".
func show(name string, fd, req, arg uintptr) {
	r, e := ioctl(fd, req, arg)
	if e != 0 {
		fmt.Printf("%s -1 %d\n", name, int(e))
		return
	}
	fmt.Printf("%s %d 0\n", name, int(r))
}

func main() {
	group := os.Args[1]
	dir := "/sys/kernel/iommu_groups/" + group + "/devices"
	ents, err := os.ReadDir(dir)
	if err != nil {
		fmt.Println("readdir", err)
		os.Exit(1)
	}
	for _, e := range ents {
		link, err := os.Readlink("/sys/bus/pci/devices/" + e.Name() + "/iommu_group")
		fmt.Printf("device %s symlink %v group %s (%v)\n", e.Name(), e.Type()&os.ModeSymlink != 0, filepath.Base(link), err)
	}
	c, err := os.OpenFile("/dev/vfio/vfio", os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open container", err)
		os.Exit(1)
	}
	g, err := os.OpenFile("/dev/vfio/"+group, os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open group", err)
		os.Exit(1)
	}
	cfd, gfd := c.Fd(), g.Fd()
	show("api-version", cfd, vfioGetAPIVersion, 0)
	show("check-type1v2", cfd, vfioCheckExtension, vfioType1v2Iommu)
	st := [2]uint32{8, 0}
	show("group-status", gfd, vfioGroupGetStatus, uintptr(unsafe.Pointer(&st[0])))
	fmt.Printf("group-flags 0x%x\n", st[1])
	cnum := int32(cfd)
	show("set-container", gfd, vfioGroupSetContain, uintptr(unsafe.Pointer(&cnum)))
	show("set-iommu", cfd, vfioSetIommu, vfioType1v2Iommu)
	info := make([]byte, 4096)
	binary.LittleEndian.PutUint32(info[0:], uint32(len(info)))
	show("get-info", cfd, vfioIommuGetInfo, uintptr(unsafe.Pointer(&info[0])))
	fmt.Printf("iova_pgsizes 0x%x argsz %d\n", binary.LittleEndian.Uint64(info[8:]), binary.LittleEndian.Uint32(info[0:]))
	for off := binary.LittleEndian.Uint32(info[16:]); off != 0; off = binary.LittleEndian.Uint32(info[off+4:]) {
		fmt.Printf("cap id %d version %d at %d\n", binary.LittleEndian.Uint16(info[off:]), binary.LittleEndian.Uint16(info[off+2:]), off)
	}
	mem, err := syscall.Mmap(-1, 0, 0x2000, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Println("mmap", err)
		os.Exit(1)
	}
	mem[0], mem[0x1000] = 1, 1
	m := struct {
		argsz, flags      uint32
		vaddr, iova, size uint64
	}{32, 3, uint64(uintptr(unsafe.Pointer(&mem[0]))), 0x100000, 0x2000}
	show("map-dma", cfd, vfioIommuMapDma, uintptr(unsafe.Pointer(&m)))
	show("bad-ioctl", cfd, 0x3bff, 0)

	name := append([]byte(ents[0].Name()), 0)
	dev, e := ioctl(gfd, vfioGroupGetDevice, uintptr(unsafe.Pointer(&name[0])))
	if e != 0 {
		fmt.Println("get device fd", e)
		os.Exit(1)
	}
	size, off := regionInfo(dev, 0)
	_, cfgOff := regionInfo(dev, 7)
	bar, err = syscall.Mmap(int(dev), int64(off), int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		fmt.Println("mmap bar0", err)
		os.Exit(1)
	}
	fmt.Printf("edu id 0x%08x\n", rd32(eduID))
	var cmdReg [2]byte
	syscall.Pread(int(dev), cmdReg[:], int64(cfgOff)+4)
	cmdReg[0] |= 4 // PCI_COMMAND_MASTER
	syscall.Pwrite(int(dev), cmdReg[:], int64(cfgOff)+4)
	efd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if e != 0 {
		fmt.Println("eventfd", e)
		os.Exit(1)
	}
	irq := struct {
		argsz, flags, index, start, count uint32
		fd                                int32
	}{24, 0x4 | 0x20, 1, 0, 1, int32(efd)} // DATA_EVENTFD | ACTION_TRIGGER, the MSI index
	show("set-irqs-msi", dev, vfioDeviceSetIrqs, uintptr(unsafe.Pointer(&irq)))
	copy(mem, "hello from Go's memory\x00")
	n1 := eduDma(int(efd), 0x100000, eduBuf, 32, false)
	n2 := eduDma(int(efd), eduBuf, 0x101000, 32, true)
	fmt.Printf("dma to device: msi count %d; dma to memory: msi count %d\n", n1, n2)
	fmt.Printf("page 1 now reads %q\n", string(mem[0x1000:0x1000+22]))
	syscall.Munmap(bar)
	syscall.Close(int(dev))
	u := struct {
		argsz, flags uint32
		iova, size   uint64
	}{24, 0, 0x100000, 0x2000}
	show("unmap-dma", cfd, vfioIommuUnmapDma, uintptr(unsafe.Pointer(&u)))
	fmt.Printf("unmapped 0x%x\n", u.size)
	g.Close()
	c.Close()
}
