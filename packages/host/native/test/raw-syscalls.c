// SPDX-License-Identifier: MIT
/*
 * A client for the seccomp door's tests (seccomp-door.test.ts) that never calls the C library's file
 * functions: every call is syscall(SYS_…), as Go without cgo or a static binary makes them, so only the
 * seccomp door can serve it. Arguments: the group number, another group's (or "race N", below). Prints
 * each result as "name ret errno".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHOW(name, call)                                                                                               \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long r_ = (long)(call);                                                                                \
		printf("%s %ld %s\n", name, r_, r_ < 0 ? strerrorname_np(errno) : "0");                                \
	} while (0)

struct dirent64_ {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* VmLck of /proc/self/status (the server splices the model's figure in), read with raw calls */
static long vmlck(void)
{
	long s = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
	char text[8192];
	long n = s >= 0 ? syscall(SYS_read, s, text, sizeof(text) - 1) : -1;
	syscall(SYS_close, s);
	text[n > 0 ? n : 0] = 0;
	char *l = strstr(text, "VmLck:");
	return l ? atol(l + 6) : -1L;
}

/* "race N": N served opens while another thread makes and checks pipes as fast as it can (descriptors
 * the supervisor never sees): no number may be taken from under either. Prints the failures. */
static volatile int race_stop;
static long race_pipe_bad;
static void *race_piper(void *x)
{
	(void)x;
	while (!race_stop) {
		int p[2];
		char ch = 'x';
		if (syscall(SYS_pipe2, p, 0))
			continue;
		if (syscall(SYS_write, p[1], &ch, 1) != 1 || syscall(SYS_read, p[0], &ch, 1) != 1)
			race_pipe_bad++;
		syscall(SYS_close, p[0]);
		syscall(SYS_close, p[1]);
	}
	return NULL;
}

static int race(int n)
{
	pthread_t t;
	int bad = 0;
	pthread_create(&t, NULL, race_piper, NULL);
	for (int i = 0; i < n; i++) {
		long c = syscall(SYS_openat, AT_FDCWD, "/dev/vfio/vfio", O_RDWR);
		if (c < 0 || syscall(SYS_ioctl, c, VFIO_GET_API_VERSION) != 0)
			bad++;
		syscall(SYS_close, c);
	}
	race_stop = 1;
	pthread_join(t, NULL);
	printf("race served-failures %d pipe-failures %ld\n", bad, race_pipe_bad);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "race"))
		return race(atoi(argv[2]));
	setvbuf(stdout, NULL, _IONBF, 0);
	int group_no = argc > 1 ? atoi(argv[1]) : 0;
	char path[64];
	long c;
	SHOW("open-container", (c = syscall(SYS_openat, AT_FDCWD, "/dev/vfio/vfio", O_RDWR | O_CLOEXEC)) >= 0 ? 0 : c);
	SHOW("api-version", syscall(SYS_ioctl, c, VFIO_GET_API_VERSION));
	SHOW("check-type1v2", syscall(SYS_ioctl, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	snprintf(path, sizeof(path), "/dev/vfio/../vfio/%d", group_no);
	long g = syscall(SYS_openat, AT_FDCWD, path, O_RDWR);
	SHOW("open-group-is-next-number", g == c + 1);
	struct vfio_group_status st = { .argsz = sizeof(st) };
	SHOW("group-status", syscall(SYS_ioctl, g, VFIO_GROUP_GET_STATUS, &st));
	printf("group-flags 0x%x\n", st.flags);
	int cfd = (int)c;
	SHOW("set-container", syscall(SYS_ioctl, g, VFIO_GROUP_SET_CONTAINER, &cfd));
	SHOW("set-iommu", syscall(SYS_ioctl, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	void *buf = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 0x5a, 0x2000);
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map),
						 .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
						 .vaddr = (uintptr_t)buf,
						 .iova = 0x100000,
						 .size = 0x2000 };
	SHOW("map-dma", syscall(SYS_ioctl, c, VFIO_IOMMU_MAP_DMA, &map));
	SHOW("map-dma-again", syscall(SYS_ioctl, c, VFIO_IOMMU_MAP_DMA, &map));
	SHOW("bad-ioctl", syscall(SYS_ioctl, c, 0x3bff));
	SHOW("bad-ioctl-on-group", syscall(SYS_ioctl, g, _IO(';', 0x7f)));
	SHOW("map-wild-pointer", syscall(SYS_ioctl, c, VFIO_IOMMU_MAP_DMA, (void *)8));

	/* VmLck as the server splices it into /proc/self/status, read with raw read(2) */
	long s = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
	char text[8192];
	long n = s >= 0 ? syscall(SYS_read, s, text, sizeof(text) - 1) : -1;
	text[n > 0 ? n : 0] = 0;
	char *l = strstr(text, "VmLck:");
	printf("status-vmlck %ld\n", l ? atol(l + 6) : -1L);
	SHOW("close-status", syscall(SYS_close, s));
	s = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
	char head[4] = { 0 }, rest[8192] = { 0 };
	struct iovec parts[2] = { { head, 3 }, { rest, sizeof(rest) - 1 } };
	SHOW("readv-status", syscall(SYS_readv, s, parts, 2) > 3);
	printf("readv-status-starts %.3s%.3s\n", head, rest);
	SHOW("close-status-again", syscall(SYS_close, s));

	/* sysfs: readlink, stat, a directory read with getdents64 */
	char link[256] = { 0 };
	snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%d/devices", group_no);
	long dfd;
	SHOW("open-dir", (dfd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 ? 0 : dfd);
	char dents[4096];
	long got = syscall(SYS_getdents64, dfd, dents, sizeof(dents));
	char first_dev[64] = "";
	for (long off = 0; off < got;) {
		struct dirent64_ *d = (void *)(dents + off);
		printf("dirent %s type %s\n", d->name, d->type == 4 ? "dir" : d->type == 10 ? "link" : "other");
		if (d->name[0] != '.' && !first_dev[0])
			snprintf(first_dev, sizeof(first_dev), "%s", d->name);
		off += d->reclen;
	}
	SHOW("getdents-at-end", syscall(SYS_getdents64, dfd, dents, sizeof(dents)));
	SHOW("read-dir", syscall(SYS_read, dfd, dents, 16));
	struct stat sb;
	SHOW("fstat-dir", syscall(SYS_fstat, dfd, &sb));
	printf("fstat-dir-is-dir %d\n", S_ISDIR(sb.st_mode));
	SHOW("close-dir", syscall(SYS_close, dfd));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", first_dev);
	long k = syscall(SYS_readlinkat, AT_FDCWD, path, link, sizeof(link) - 1);
	printf("readlink %s\n", k > 0 ? strrchr(link, '/') : "?");
	SHOW("newfstatat-link-nofollow", syscall(SYS_newfstatat, AT_FDCWD, path, &sb, AT_SYMLINK_NOFOLLOW));
	printf("is-link %d\n", S_ISLNK(sb.st_mode));
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", first_dev);
	SHOW("open-file-as-dir", syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY));
	SHOW("access-write-sysfs-file", syscall(SYS_faccessat, AT_FDCWD, path, W_OK));
	long v = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
	uint16_t id[2] = { 0 };
	SHOW("pread-config", syscall(SYS_pread64, v, id, sizeof(id), 0));
	printf("vendor 0x%04x device 0x%04x\n", id[0], id[1]);
	SHOW("lseek-config-end", syscall(SYS_lseek, v, 0, SEEK_END));
	SHOW("close-config", syscall(SYS_close, v));
	/* descriptors the kernel closes behind a served number: close_range, dup3 onto it */
	char gpath2[64];
	snprintf(gpath2, sizeof(gpath2), "/dev/vfio/%s", argc > 2 ? argv[2] : "2");
	long g2 = syscall(SYS_openat, AT_FDCWD, gpath2, O_RDWR);
	SHOW("close-range-other-group", syscall(SYS_close_range, g2, g2, 0));
	long taken = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY); /* the freed number, unserved */
	SHOW("freed-number-reused", taken == g2);
	long g3; /* EBUSY if the server still held the group open */
	SHOW("reopen-other-group", (g3 = syscall(SYS_openat, AT_FDCWD, gpath2, O_RDWR)) >= 0 ? 0 : g3);
	SHOW("close-other-group", syscall(SYS_close, g3));
	syscall(SYS_close, taken);
	long v3 = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
	long nul = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	SHOW("dup3-onto-served", syscall(SYS_dup3, nul, v3, 0) == v3);
	SHOW("read-dup3-target-is-dev-null", syscall(SYS_pread64, v3, id, sizeof(id), 0));
	long v4 = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
	SHOW("pread-served-again", syscall(SYS_pread64, v4, id, sizeof(id), 0));
	syscall(SYS_close, v4);
	syscall(SYS_close, v3);
	syscall(SYS_close, nul);
	SHOW("open-missing", syscall(SYS_openat, AT_FDCWD, "/dev/vfio/4242", O_RDWR));

	/* a path nothing serves still reaches the real kernel */
	SHOW("open-unserved-missing", syscall(SYS_openat, AT_FDCWD, "/nonexistent/iommu-sim", O_RDONLY));
	long self = syscall(SYS_openat, AT_FDCWD, "/proc/self/cmdline", O_RDONLY);
	char cmd[256] = { 0 };
	SHOW("read-unserved", syscall(SYS_read, self, cmd, sizeof(cmd)) > 0);
	SHOW("close-unserved", syscall(SYS_close, self));

	/* the device: its number is the lowest free one, as the kernel's would be */
	long dev = syscall(SYS_ioctl, g, VFIO_GROUP_GET_DEVICE_FD, first_dev);
	SHOW("device-fd-is-lowest-free", dev == s);
	struct vfio_device_info di = { .argsz = sizeof(di) };
	SHOW("device-info", syscall(SYS_ioctl, dev, VFIO_DEVICE_GET_INFO, &di));
	printf("device-regions %u irqs %u\n", di.num_regions, di.num_irqs);
	/* BAR0 mapped with a raw mmap: loads and stores reach edu's registers; a MAP_DMA of it pins its MMIO */
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
	SHOW("bar0-info", syscall(SYS_ioctl, dev, VFIO_DEVICE_GET_REGION_INFO, &ri));
	volatile uint32_t *bar =
		(void *)syscall(SYS_mmap, 0, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, ri.offset);
	SHOW("mmap-bar0", bar == MAP_FAILED ? -1 : 0);
	printf("edu-id 0x%08x\n", bar[0]);
	bar[1] = 0x12345678; /* card liveness: reads back inverted */
	printf("edu-liveness 0x%08x\n", bar[1]);
	struct vfio_iommu_type1_dma_map bmap = { .argsz = sizeof(bmap),
						  .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
						  .vaddr = (uintptr_t)bar,
						  .iova = 0x40000000,
						  .size = 0x1000 };
	SHOW("map-dma-bar0", syscall(SYS_ioctl, c, VFIO_IOMMU_MAP_DMA, &bmap));
	printf("vmlck-after-bar0-map %ld\n", vmlck()); /* MMIO pfns are not accounted */
	SHOW("mmap-config-region", syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, dev, 7ULL << 40));
	/* an ioctl argument on the page right before a BAR mapping (musl's heap can sit there) still copies in */
	char *area = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *bar2 = (void *)syscall(SYS_mmap, area + 0x1000, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				     dev, ri.offset);
	SHOW("mmap-bar0-after-buffer", bar2 == area + 0x1000);
	memset(area, 0, 0x1000);
	*(uint32_t *)area = 0x1000; /* argsz: the whole page before the BAR */
	SHOW("get-info-before-bar", syscall(SYS_ioctl, c, VFIO_IOMMU_GET_INFO, area));
	syscall(SYS_munmap, area, 0x2000);
	SHOW("munmap-bar0", syscall(SYS_munmap, bar, ri.size));
	/* vectored I/O (musl's stdio): preadv of the config region in two pieces, pwritev of the command */
	struct vfio_region_info ci = { .argsz = sizeof(ci), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	syscall(SYS_ioctl, dev, VFIO_DEVICE_GET_REGION_INFO, &ci);
	uint16_t ven = 0, did = 0, cmdreg = 0;
	struct iovec two[2] = { { &ven, 2 }, { &did, 2 } };
	SHOW("preadv-config", syscall(SYS_preadv, dev, two, 2, ci.offset, 0));
	printf("preadv vendor 0x%04x device 0x%04x\n", ven, did);
	syscall(SYS_pread64, dev, &cmdreg, 2, ci.offset + 4);
	cmdreg |= 4;
	struct iovec one = { &cmdreg, 2 };
	SHOW("pwritev-command", syscall(SYS_pwritev, dev, &one, 1, ci.offset + 4, 0));
	uint16_t back = 0;
	syscall(SYS_pread64, dev, &back, 2, ci.offset + 4);
	printf("command-bus-master %d\n", (back & 4) != 0);
	struct stat dst;
	SHOW("fstat-device", syscall(SYS_fstat, dev, &dst));
	SHOW("close-device", syscall(SYS_close, dev));
	SHOW("ioctl-closed-device", syscall(SYS_ioctl, dev, VFIO_DEVICE_GET_INFO, &di));

	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = 0x100000, .size = 0x2000 };
	SHOW("unmap-dma", syscall(SYS_ioctl, c, VFIO_IOMMU_UNMAP_DMA, &unmap));
	printf("unmapped 0x%llx\n", (unsigned long long)unmap.size);
	struct vfio_iommu_type1_dma_unmap bunmap = { .argsz = sizeof(bunmap), .iova = 0x40000000, .size = 0x1000 };
	SHOW("unmap-dma-bar0", syscall(SYS_ioctl, c, VFIO_IOMMU_UNMAP_DMA, &bunmap));
	SHOW("close-group", syscall(SYS_close, g));
	SHOW("close-container", syscall(SYS_close, c));
	return 0;
}
