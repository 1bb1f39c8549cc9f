// SPDX-License-Identifier: MIT
/*
 * A client for the native door's robustness tests (door.test.ts), one mode per argument:
 *   hold GROUP   container + group + MAP_DMA 0x1000 at iova 0x100000, print "ready", wait for a line on
 *                stdin, then print what the kernel says of that state (DMA_AVAIL, VmLck, UNMAP's size)
 *   bad GROUP    malformed and hostile calls; prints each result as "name ret errno"
 *   die GROUP    container + group, print "ready", then MAP_DMA 256 MiB (the test kills it meanwhile)
 *   lost         open the container, print "ready", wait for a line (the server goes away), then call it
 *   threads      four threads at once, each opening, asking and closing 200 times; prints the failures
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *en(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENOSPC: return "ENOSPC";
	case ENOMEM: return "ENOMEM";
	default: return "E?";
	}
}

#define SHOW(name, call)                                                                                               \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long r_ = (long)(call);                                                                                \
		printf("%s %ld %s\n", name, r_, r_ < 0 ? en(errno) : "0");                                             \
	} while (0)

static int attach(int group_no, int *container)
{
	char path[64];
	*container = open("/dev/vfio/vfio", O_RDWR);
	snprintf(path, sizeof(path), "/dev/vfio/%d", group_no);
	int g = open(path, O_RDWR);
	if (*container < 0 || g < 0 || ioctl(g, VFIO_GROUP_SET_CONTAINER, container) ||
	    ioctl(*container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		printf("attach failed: %s\n", en(errno));
		exit(1);
	}
	return g;
}

static uint32_t dma_avail(int c)
{
	char buf[512] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	info->argsz = sizeof(buf);
	if (ioctl(c, VFIO_IOMMU_GET_INFO, info))
		return ~0u;
	for (uint32_t off = info->cap_offset; off;) {
		struct vfio_info_cap_header *h = (void *)(buf + off);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
			return ((struct vfio_iommu_type1_info_dma_avail *)h)->avail;
		off = h->next;
	}
	return ~0u;
}

static long vmlck(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmLck:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static void *hammer(void *arg)
{
	long bad = 0;
	for (int i = 0; i < 200; i++) {
		int c = open("/dev/vfio/vfio", O_RDWR);
		char t[16] = { 0 };
		int f = open("/sys/kernel/iommu_groups/1/type", O_RDONLY);
		if (c < 0 || ioctl(c, VFIO_GET_API_VERSION) != VFIO_API_VERSION || f < 0 || read(f, t, sizeof(t) - 1) != 7 ||
		    strcmp(t, "DMA-FQ\n") != 0)
			bad++;
		close(f);
		close(c);
	}
	(void)arg;
	return (void *)bad;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *mode = argc > 1 ? argv[1] : "";
	int group_no = argc > 2 ? atoi(argv[2]) : 1;
	int c;
	char line[16];
	if (!strcmp(mode, "hold")) {
		attach(group_no, &c);
		char *buf = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		buf[0] = 1;
		struct vfio_iommu_type1_dma_map m = { sizeof(m), 3, (uintptr_t)buf, 0x100000, 0x1000 };
		if (ioctl(c, VFIO_IOMMU_MAP_DMA, &m))
			return printf("map failed: %s\n", en(errno)), 1;
		printf("ready avail %u vmlck %ld\n", dma_avail(c), vmlck());
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		printf("after avail %u vmlck %ld\n", dma_avail(c), vmlck());
		SHOW("map-again", ioctl(c, VFIO_IOMMU_MAP_DMA, &m));
		struct vfio_iommu_type1_dma_unmap u = { sizeof(u), 0, 0x100000, 0x1000 };
		SHOW("unmap", ioctl(c, VFIO_IOMMU_UNMAP_DMA, &u));
		printf("unmapped 0x%llx\n", (unsigned long long)u.size);
		return 0;
	}
	if (!strcmp(mode, "bad")) {
		int other = atoi(argv[3]);
		char path[64];
		snprintf(path, sizeof(path), "/dev/vfio/%d", other);
		SHOW("open-busy-group", open(path, O_RDWR)); /* the other client's group */
		SHOW("open-no-group", open("/dev/vfio/77", O_RDWR));
		int g = attach(group_no, &c);
		SHOW("map-null", ioctl(c, VFIO_IOMMU_MAP_DMA, NULL));
		SHOW("map-wild-pointer", ioctl(c, VFIO_IOMMU_MAP_DMA, (void *)0x10));
		struct vfio_iommu_type1_dma_map m = { 8, 3, 0, 0x100000, 0x1000 };
		SHOW("map-short-argsz", ioctl(c, VFIO_IOMMU_MAP_DMA, &m));
		m = (struct vfio_iommu_type1_dma_map){ sizeof(m), 3, 0x1000, 0x100000, 0x1000 }; /* aligned, nothing mapped there */
		SHOW("map-unmapped-vaddr", ioctl(c, VFIO_IOMMU_MAP_DMA, &m));
		SHOW("info-wild-pointer", ioctl(c, VFIO_IOMMU_GET_INFO, (void *)0x10));
		SHOW("unknown-ioctl", ioctl(c, _IO(';', 99), 0));
		int minus1 = -1;
		SHOW("set-container-bad-fd", ioctl(g, VFIO_GROUP_SET_CONTAINER, &minus1));
		SHOW("get-device-no-such", ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "0000:00:1f.7"));
		int dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, argv[4]);
		int p[2];
		if (pipe(p))
			return 1;
		char irqbuf[sizeof(struct vfio_irq_set) + sizeof(int)];
		struct vfio_irq_set *irq = (void *)irqbuf;
		*irq = (struct vfio_irq_set){ sizeof(irqbuf), VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
					      VFIO_PCI_MSI_IRQ_INDEX, 0, 1 };
		memcpy(irq->data, &p[0], sizeof(int));
		SHOW("set-irqs-not-an-eventfd", ioctl(dev, VFIO_DEVICE_SET_IRQS, irq));
		int closed = 1000;
		memcpy(irq->data, &closed, sizeof(int));
		SHOW("set-irqs-closed-fd", ioctl(dev, VFIO_DEVICE_SET_IRQS, irq));
		SHOW("close-device", close(dev));
		SHOW("ioctl-closed-device", ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, irqbuf));
		return 0;
	}
	if (!strcmp(mode, "die")) {
		attach(group_no, &c);
		char *buf = mmap(NULL, 256 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		struct vfio_iommu_type1_dma_map m = { sizeof(m), 3, (uintptr_t)buf, 0x10000000, 256 << 20 };
		printf("ready\n");
		for (;;)
			ioctl(c, VFIO_IOMMU_MAP_DMA, &m), ioctl(c, VFIO_IOMMU_UNMAP_DMA, &(struct vfio_iommu_type1_dma_unmap){ 24, 0, 0x10000000, 256 << 20 });
	}
	if (!strcmp(mode, "lost")) {
		c = open("/dev/vfio/vfio", O_RDWR);
		printf("ready %d\n", c >= 0);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		SHOW("api-after-server-gone", ioctl(c, VFIO_GET_API_VERSION));
		SHOW("open-after-server-gone", open("/dev/vfio/vfio", O_RDWR));
		SHOW("close-after-server-gone", close(c));
		return 0;
	}
	if (!strcmp(mode, "threads")) {
		pthread_t t[4];
		long bad = 0;
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, hammer, NULL);
		for (int i = 0; i < 4; i++) {
			void *r;
			pthread_join(t[i], &r);
			bad += (long)r;
		}
		printf("threads failures %ld\n", bad);
		return 0;
	}
	return 2;
}
