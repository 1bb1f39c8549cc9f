// SPDX-License-Identifier: MIT
/*
 * The smallest VMM-like VFIO flow, in plain C against <linux/vfio.h>: container, group, the IOMMU's
 * GET_INFO with its capability chain, the valid IOVA ranges, MAP_DMA of a buffer, QEMU's edu device
 * programmed through its BAR to DMA into that buffer, and the MSI counted on an eventfd.
 *
 * Build: cc -O2 -o vmm-edu-dma vmm-edu-dma.c
 * Run on a real host with an edu device bound to vfio-pci, or on a model:
 *   iommu-demo exec --board x86-q35-vtd -- ./vmm-edu-dma [0000:00:01.0]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define EDU_ID 0x00
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUF 0x40000	/* the device's own 4 KiB buffer */
#define EDU_CMD_START 1
#define EDU_CMD_TO_RAM 2
#define EDU_CMD_IRQ 4

static int die(const char *what)
{
	printf("FAILED: %s: %s\n", what, strerror(errno));
	return 1;
}

static volatile uint8_t *bar;
static uint64_t rd64(unsigned off) { return *(volatile uint64_t *)(bar + off); }
static uint32_t rd32(unsigned off) { return *(volatile uint32_t *)(bar + off); }
static void wr64(unsigned off, uint64_t v) { *(volatile uint64_t *)(bar + off) = v; }

/* One DMA by edu, completion signalled by its MSI; returns the eventfd count (0: no interrupt within 1 s). */
static uint64_t edu_dma(int efd, uint64_t src, uint64_t dst, uint64_t len, int to_ram)
{
	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_COUNT, len);
	wr64(EDU_DMA_CMD, EDU_CMD_START | EDU_CMD_IRQ | (to_ram ? EDU_CMD_TO_RAM : 0));
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;
	if (poll(&p, 1, 1000) == 1 && read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

int main(int argc, char **argv)
{
	const char *bdf = argc > 1 ? argv[1] : "0000:00:01.0";
	char path[256], link[256];

	/* 1. the container, and the group the device is in (sysfs names it) */
	int container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		return die("open /dev/vfio/vfio");
	printf("api version %d, type1v2 %s\n", ioctl(container, VFIO_GET_API_VERSION),
	       ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ? "yes" : "no");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return die("readlink iommu_group");
	link[n] = 0;
	int groupno = atoi(strrchr(link, '/') + 1);
	snprintf(path, sizeof(path), "/dev/vfio/%d", groupno);
	int group = open(path, O_RDWR);
	if (group < 0)
		return die("open group");
	struct vfio_group_status st = { .argsz = sizeof(st) };
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &st) || !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return die("group not viable");
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) || ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return die("attach group");
	printf("group %d attached\n", groupno);

	/* 2. GET_INFO: ask once for the size, again with room for the capability chain */
	struct vfio_iommu_type1_info probe = { .argsz = sizeof(probe) };
	if (ioctl(container, VFIO_IOMMU_GET_INFO, &probe))
		return die("GET_INFO");
	struct vfio_iommu_type1_info *info = calloc(1, probe.argsz);
	info->argsz = probe.argsz;
	if (ioctl(container, VFIO_IOMMU_GET_INFO, info))
		return die("GET_INFO");
	printf("iova_pgsizes 0x%llx, argsz %u\n", (unsigned long long)info->iova_pgsizes, info->argsz);
	uint64_t iova = ~0ULL;
	for (uint32_t off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0; off;) {
		struct vfio_info_cap_header *h = (void *)((char *)info + off);
		printf("cap id %u version %u at %u\n", h->id, h->version, off);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
			for (uint32_t i = 0; i < r->nr_iovas; i++) {
				printf("  valid iova [0x%llx, 0x%llx]\n", (unsigned long long)r->iova_ranges[i].start,
				       (unsigned long long)r->iova_ranges[i].end);
				/* the first range with room for our 8 KiB, 1 MiB in */
				if (iova == ~0ULL && r->iova_ranges[i].end - r->iova_ranges[i].start >= 0x102000)
					iova = r->iova_ranges[i].start + 0x100000;
			}
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
			printf("  dma mappings available %u\n", ((struct vfio_iommu_type1_info_dma_avail *)h)->avail);
		}
		off = h->next;
	}
	if (iova == ~0ULL)
		return die("no usable IOVA range");

	/* 3. our buffer, two pages: the device reads page 0 and writes page 1 */
	char *buf = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy(buf, "hello from the VMM's memory");
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map),
						.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
						.vaddr = (uintptr_t)buf,
						.iova = iova,
						.size = 0x2000 };
	if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map))
		return die("MAP_DMA");
	printf("mapped 0x2000 bytes at iova 0x%llx\n", (unsigned long long)iova);

	/* 4. the device: BAR0 mapped, bus mastering on, MSI into an eventfd */
	int dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev < 0)
		return die("GET_DEVICE_FD");
	struct vfio_region_info bar0 = { .argsz = sizeof(bar0), .index = VFIO_PCI_BAR0_REGION_INDEX };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &bar0) || ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		return die("GET_REGION_INFO");
	bar = mmap(NULL, bar0.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)bar0.offset);
	if (bar == MAP_FAILED)
		return die("mmap BAR0");
	uint16_t cmd;
	if (pread(dev, &cmd, 2, (off_t)cfg.offset + 4) != 2)
		return die("config read");
	cmd |= 4; /* PCI_COMMAND_MASTER */
	if (pwrite(dev, &cmd, 2, (off_t)cfg.offset + 4) != 2)
		return die("config write");
	printf("edu id 0x%08x\n", rd32(EDU_ID));
	int efd = eventfd(0, EFD_CLOEXEC);
	char irqbuf[sizeof(struct vfio_irq_set) + sizeof(int)];
	struct vfio_irq_set *irq = (void *)irqbuf;
	*irq = (struct vfio_irq_set){ .argsz = sizeof(irqbuf),
				      .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
				      .index = VFIO_PCI_MSI_IRQ_INDEX,
				      .count = 1 };
	memcpy(irq->data, &efd, sizeof(int));
	if (ioctl(dev, VFIO_DEVICE_SET_IRQS, irq))
		return die("SET_IRQS");

	/* 5. edu copies page 0 into its buffer, then its buffer into page 1: both through the IOMMU */
	uint64_t n1 = edu_dma(efd, iova, EDU_BUF, 32, 0);
	uint64_t n2 = edu_dma(efd, EDU_BUF, iova + 0x1000, 32, 1);
	printf("dma to device: msi count %llu; dma to memory: msi count %llu\n", (unsigned long long)n1,
	       (unsigned long long)n2);
	printf("page 1 now reads \"%s\"\n", buf + 0x1000);
	printf("edu dma status 0x%llx\n", (unsigned long long)rd64(EDU_DMA_CMD));

	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova, .size = 0x2000 };
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap))
		return die("UNMAP_DMA");
	printf("unmapped 0x%llx bytes\n", (unsigned long long)unmap.size);
	return strcmp(buf + 0x1000, buf) == 0 && n1 == 1 && n2 == 1 ? 0 : 1;
}
