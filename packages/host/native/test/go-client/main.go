// SPDX-License-Identifier: MIT

// A Go client for the seccomp door's tests (seccomp-door-go.test.ts), built with CGO_ENABLED=0 so the
// Go runtime makes every system call itself and no preload library can reach it. It lists the group's
// devices with os.ReadDir, reads their iommu_group link, opens the container and the group with
// os.OpenFile and asks VFIO_GET_API_VERSION, VFIO_CHECK_EXTENSION(TYPE1v2), VFIO_GROUP_GET_STATUS,
// VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_IOMMU_GET_INFO (the capability chain) and MAP_DMA of a
// slice of its own memory. Argument: the group number.
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
	vfioType1v2Iommu    = 3
)

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
	u := struct {
		argsz, flags uint32
		iova, size   uint64
	}{24, 0, 0x100000, 0x2000}
	show("unmap-dma", cfd, vfioIommuUnmapDma, uintptr(unsafe.Pointer(&u)))
	fmt.Printf("unmapped 0x%x\n", u.size)
	g.Close()
	c.Close()
}
