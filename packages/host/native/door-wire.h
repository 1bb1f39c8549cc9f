/*
 * What the two native doors share (preload.c in the program, seccomp-door.c beside it; MIT): the requests of the
 * wire protocol the door server answers (src/native/door-server.ts), which paths the server serves, the one form
 * of a path it knows, and the x86-64 ModRM length the BAR-access decoders step over. One home for each.
 */
#ifndef IOMMU_SIM_DOOR_WIRE_H
#define IOMMU_SIM_DOOR_WIRE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* The server's requests, in door-server.ts's order. */
enum op {
	OP_HELLO = 1, OP_OPEN, OP_CLOSE, OP_IOCTL, OP_READ, OP_WRITE, OP_PREAD, OP_PWRITE, OP_MMAP,
	OP_MMIO, OP_READLINK, OP_STAT, OP_READDIR, OP_LSEEK,
};

/* vfio.h: the one ioctl that creates a descriptor (_IO(';', 100 + 6)) */
#define VFIO_GROUP_GET_DEVICE_FD 0x3b6a

static inline int door_starts(const char *p, const char *pre)
{
	size_t n = strlen(pre);
	return strncmp(p, pre, n) == 0 && (p[n] == 0 || p[n] == '/');
}

/* Whether the server serves this canonical path (/dev/iommu too: a board without iommufd answers ENOENT, as 6.1). */
static inline int door_serves(const char *p)
{
	return door_starts(p, "/dev/vfio") || door_starts(p, "/sys/kernel/iommu_groups") ||
	       door_starts(p, "/sys/bus/pci/devices") || strcmp(p, "/dev/iommu") == 0 ||
	       strcmp(p, "/proc/self/status") == 0 || strcmp(p, "/dev/kmsg") == 0;
}

/* The path the server knows: `.` and `..` resolved, `//` collapsed, /proc/<tgid>/ and /proc/thread-self/ as /proc/self/ */
static inline void door_canon(const char *p, pid_t tgid, char *out, size_t cap)
{
	char self[64];
	size_t n = 0;
	for (const char *s = p; *s;) {
		while (*s == '/')
			s++;
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0)
			break;
		if (len == 1 && s[0] == '.') {
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			while (n > 0 && out[--n] != '/')
				;
		} else if (n + 1 + len < cap) {
			out[n++] = '/';
			memcpy(out + n, s, len);
			n += len;
		}
		s += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = 0;
	snprintf(self, sizeof(self), "/proc/%d/status", (int)tgid);
	if (strcmp(out, self) == 0 || strcmp(out, "/proc/thread-self/status") == 0)
		snprintf(out, cap, "/proc/self/status");
}

/* Bytes of ModRM (+ SIB + displacement) after an x86-64 opcode; RIP-relative counts its disp32. */
static inline int modrm_len(const uint8_t *p)
{
	int mod = p[0] >> 6, rm = p[0] & 7, n = 1;
	if (mod != 3 && rm == 4) {
		n++;
		if (mod == 0 && (p[1] & 7) == 5)
			n += 4;
	}
	if (mod == 0 && rm == 5)
		n += 4;
	else if (mod == 1)
		n += 1;
	else if (mod == 2)
		n += 4;
	return n;
}

#endif
