// SPDX-License-Identifier: MIT
/*
 * libiommu-sim-preload: the native door of @iommu-sim/host. Loaded with LD_PRELOAD into an unmodified
 * program, it forwards the system calls the program makes on the paths a VFIO user touches
 * (/dev/vfio, /dev/iommu, /sys/kernel/iommu_groups, /sys/bus/pci/devices, /proc/self/status, /dev/kmsg) and on the
 * descriptors those give, to an `iommu-demo serve` server over the Unix socket named by
 * $IOMMU_SIM_SOCKET. Everything else goes to the real C library.
 *
 * - A forwarded descriptor is a real descriptor of this process (a /dev/null placeholder), so numbers
 *   never collide and close/dup/exit work; the server's table uses the same number.
 * - The program's memory stays its own: ioctl arguments, MAP_DMA's vaddr, dirty bitmaps are read and
 *   written by the server through /proc/PID/mem (we allow it with PR_SET_PTRACER).
 * - A device BAR mapped with mmap is a PROT_NONE range: each load or store faults, and the SIGSEGV
 *   handler decodes the x86-64 MOV, performs the MMIO access through the server and steps over it.
 * - Interrupts: every reply carries the eventfd signals the model raised (an MSI), which are written to
 *   the program's own eventfds before the call returns, so poll/read on them see the count.
 * - A lost server makes every forwarded call fail with EIO (a BAR read then returns all ones).
 * Threads share the one connection, one request at a time. A forked child shares its parent's session.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <ucontext.h>
#include <unistd.h>

#include "door-wire.h"


#define MAX_FD 4096
static unsigned char remote[MAX_FD]; /* 1: the server serves this descriptor */
static int srv = -1;
static int srv_dead;

/* the real functions */
static int (*r_open)(const char *, int, ...);
static int (*r_close)(int);
static ssize_t (*r_read)(int, void *, size_t);
static ssize_t (*r_write)(int, const void *, size_t);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);
static int (*r_munmap)(void *, size_t);

static void resolve(void)
{
	if (r_open)
		return;
	r_open = dlsym(RTLD_NEXT, "open");
	r_close = dlsym(RTLD_NEXT, "close");
	r_read = dlsym(RTLD_NEXT, "read");
	r_write = dlsym(RTLD_NEXT, "write");
	r_mmap = dlsym(RTLD_NEXT, "mmap");
	r_munmap = dlsym(RTLD_NEXT, "munmap");
}

/* ------------------------------------------------------------ which paths are ours */

static const char *canon(const char *p);

static int ours(const char *path)
{
	return path && path[0] == '/' && door_serves(canon(path));
}

static const char *canon(const char *p)
{
	static __thread char out[4096]; /* per thread: callers use it at once */
	door_canon(p, getpid(), out, sizeof(out));
	return out;
}

/* ------------------------------------------------------------ the wire */

static int xfer(int fd, void *buf, size_t n, int out)
{
	char *b = buf;
	while (n) {
		ssize_t k = out ? send(fd, b, n, MSG_NOSIGNAL) : recv(fd, b, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static void connect_server(void)
{
	const char *path = getenv("IOMMU_SIM_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (!path || strlen(path) >= sizeof(a.sun_path)) {
		srv_dead = 1;
		return;
	}
	strcpy(a.sun_path, path);
	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv < 0 || connect(srv, (struct sockaddr *)&a, sizeof(a)) < 0) {
		srv_dead = 1;
		return;
	}
}

struct reply {
	int64_t ret;
	int32_t err;
	uint32_t len; /* data bytes that follow (copied to the caller's buffer, at most cap) */
};

/*
 * One request: header {u32 len, u32 op}, then `a` (fixed part) and `b` (bytes). The reply is
 * {i64 ret, i32 errno, u32 nsig, u32 len}, nsig × {i32 fd, u32 pad, u64 count}, then len bytes.
 */
/* One request on the socket at a time, from any thread (a spin lock: the BAR handler takes it too). */
static volatile int wire_lock;
static void lock_wire(void)
{
	while (__atomic_exchange_n(&wire_lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}
static void unlock_wire(void)
{
	__atomic_store_n(&wire_lock, 0, __ATOMIC_RELEASE);
}

static int64_t call_locked(uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen, void *out,
			   uint32_t cap, uint32_t *outlen);

static int64_t call(uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen, void *out, uint32_t cap,
		    uint32_t *outlen)
{
	lock_wire();
	int64_t r = call_locked(op, a, alen, b, blen, out, cap, outlen);
	int e = errno;
	unlock_wire();
	errno = e;
	return r;
}

static int64_t call_locked(uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen, void *out,
			   uint32_t cap, uint32_t *outlen)
{
	int saved = errno;
	if (srv < 0 && !srv_dead)
		connect_server();
	if (srv_dead) {
		errno = EIO;
		return -1;
	}
	uint32_t hdr[2] = { 4 + alen + blen, op };
	struct {
		int64_t ret;
		int32_t err;
		uint32_t nsig;
		uint32_t len;
		uint32_t pad;
	} rh;
	if (xfer(srv, hdr, sizeof(hdr), 1) || (alen && xfer(srv, (void *)a, alen, 1)) ||
	    (blen && xfer(srv, (void *)b, blen, 1)) || xfer(srv, &rh, sizeof(rh), 0))
		goto lost;
	for (uint32_t i = 0; i < rh.nsig; i++) {
		struct {
			int32_t fd;
			uint32_t pad;
			uint64_t count;
		} s;
		if (xfer(srv, &s, sizeof(s), 0))
			goto lost;
		resolve();
		(void)!r_write(s.fd, &s.count, 8); /* the MSI: the program's own eventfd counts it */
	}
	uint32_t keep = rh.len < cap ? rh.len : cap;
	if (keep && xfer(srv, out, keep, 0))
		goto lost;
	for (uint32_t left = rh.len - keep; left;) {
		char sink[256];
		uint32_t n = left < sizeof(sink) ? left : sizeof(sink);
		if (xfer(srv, sink, n, 0))
			goto lost;
		left -= n;
	}
	if (outlen)
		*outlen = keep;
	errno = rh.ret < 0 ? rh.err : saved;
	return rh.ret;
lost:
	srv_dead = 1;
	errno = EIO;
	return -1;
}

static int is_remote(int fd)
{
	return fd >= 0 && fd < MAX_FD && remote[fd];
}

/* ------------------------------------------------------------ BAR mappings */

struct bar {
	uintptr_t base;
	size_t len;
	int fd;
	uint64_t off;
};
static struct bar bars[64];

static struct bar *bar_at(uintptr_t a)
{
	for (int i = 0; i < 64; i++)
		if (bars[i].len && a >= bars[i].base && a < bars[i].base + bars[i].len)
			return &bars[i];
	return NULL;
}

static uint64_t mmio(struct bar *b, uint64_t off, uint32_t size, int wr, uint64_t val)
{
	struct {
		int32_t fd;
		uint32_t size;
		uint64_t off;
		uint32_t write;
		uint32_t pad;
		uint64_t val;
	} q = { b->fd, size, b->off + off, (uint32_t)wr, 0, val };
	uint64_t v = ~0ULL;
	uint32_t n = 0;
	if (call(OP_MMIO, &q, sizeof(q), NULL, 0, &v, 8, &n) < 0 || n != 8)
		return ~0ULL;
	return v;
}

static struct sigaction old_segv;

/* ucontext register of an x86 register number (rax=0 … r15=15) */
static greg_t *reg(ucontext_t *uc, int r)
{
	static const int map[16] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
				     REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };
	return &uc->uc_mcontext.gregs[map[r & 15]];
}

/* Length of the ModRM/SIB/displacement bytes after the opcode. */
/* Emulate one MOV to or from the BAR; 0 when the instruction is not one we know. */
static int emulate(ucontext_t *uc, struct bar *b, uintptr_t addr)
{
	const uint8_t *p = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
	int osz = 0, rex = 0, i = 0;
	for (;; i++) {
		if (p[i] == 0x66)
			osz = 1;
		else if (p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x2e || p[i] == 0x3e)
			continue;
		else
			break;
	}
	if ((p[i] & 0xf0) == 0x40)
		rex = p[i++];
	int w = rex & 8, r = ((rex & 4) << 1);
	int size = w ? 8 : osz ? 2 : 4;
	uint64_t off = addr - b->base;
	uint8_t opc = p[i++];
	int regno, len;
	uint64_t v;
	switch (opc) {
	case 0x8b: /* mov r, r/m */
	case 0x8a:
		if (opc == 0x8a)
			size = 1;
		regno = r | ((p[i] >> 3) & 7);
		len = i + modrm_len(p + i);
		v = mmio(b, off, size, 0, 0);
		if (size == 4 || size == 8)
			*reg(uc, regno) = (greg_t)(size == 4 ? (uint32_t)v : v);
		else if (size == 2)
			*reg(uc, regno) = (*reg(uc, regno) & ~0xffffLL) | (v & 0xffff);
		else if (!rex && regno >= 4 && regno < 8) /* ah, ch, dh, bh */
			*reg(uc, regno - 4) = (*reg(uc, regno - 4) & ~0xff00LL) | (greg_t)((v & 0xff) << 8);
		else
			*reg(uc, regno) = (*reg(uc, regno) & ~0xffLL) | (greg_t)(v & 0xff);
		break;
	case 0x89: /* mov r/m, r */
	case 0x88:
		if (opc == 0x88)
			size = 1;
		regno = r | ((p[i] >> 3) & 7);
		len = i + modrm_len(p + i);
		v = (uint64_t)*reg(uc, regno);
		if (size == 1 && !rex && regno >= 4 && regno < 8)
			v = (uint64_t)*reg(uc, regno - 4) >> 8;
		mmio(b, off, size, 1, size == 8 ? v : v & ((1ULL << (8 * size)) - 1));
		break;
	case 0xc7: /* mov r/m, imm32 (sign-extended for 64-bit), imm16 with 0x66 */
	case 0xc6:
		if (opc == 0xc6)
			size = 1;
		len = i + modrm_len(p + i);
		if (size == 1)
			v = p[len], len += 1;
		else if (size == 2)
			v = (uint16_t)(p[len] | p[len + 1] << 8), len += 2;
		else {
			int32_t imm;
			memcpy(&imm, p + len, 4);
			len += 4;
			v = size == 8 ? (uint64_t)(int64_t)imm : (uint32_t)imm;
		}
		mmio(b, off, size, 1, v);
		break;
	case 0x0f: /* movzx r, r/m8 | r/m16 */
		if (p[i] != 0xb6 && p[i] != 0xb7)
			return 0;
		size = p[i] == 0xb6 ? 1 : 2;
		i++;
		regno = r | ((p[i] >> 3) & 7);
		len = i + modrm_len(p + i);
		v = mmio(b, off, size, 0, 0);
		*reg(uc, regno) = (greg_t)v;
		break;
	default:
		return 0;
	}
	uc->uc_mcontext.gregs[REG_RIP] += len;
	return 1;
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	struct bar *b = bar_at((uintptr_t)si->si_addr);
	if (b && emulate(ctx, b, (uintptr_t)si->si_addr)) {
		errno = saved;
		return;
	}
	/* not ours: the program's own fault, as it would have been without us */
	sigaction(SIGSEGV, &old_segv, NULL);
	if (old_segv.sa_flags & SA_SIGINFO && old_segv.sa_sigaction)
		old_segv.sa_sigaction(sig, si, ctx);
	else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN)
		old_segv.sa_handler(sig);
	/* returning re-runs the faulting access under the default action */
}

__attribute__((constructor)) static void door_init(void)
{
	resolve();
	/* let the server (our parent with `exec`, any process with `serve`) read and write our memory */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	connect_server();
	if (!srv_dead) {
		int32_t pid = getpid();
		call(OP_HELLO, &pid, 4, NULL, 0, NULL, 0, NULL);
	}
}

/* ------------------------------------------------------------ the intercepted calls */

static int fwd_open(const char *path, int flags)
{
	resolve();
	int fd = r_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
	if (fd < 0)
		return -1;
	if (fd >= MAX_FD) {
		r_close(fd);
		errno = EMFILE;
		return -1;
	}
	int32_t q[2] = { fd, flags };
	const char *p = canon(path);
	if (call(OP_OPEN, q, sizeof(q), p, (uint32_t)strlen(p), NULL, 0, NULL) < 0) {
		int e = errno;
		r_close(fd);
		errno = e;
		return -1;
	}
	remote[fd] = 1;
	return fd;
}

static int real_open(const char *path, int flags, mode_t mode)
{
	resolve();
	return r_open(path, flags, mode);
}

#define MODE_ARG                                                                                                       \
	mode_t mode = 0;                                                                                               \
	if (flags & (O_CREAT | O_TMPFILE)) {                                                                           \
		va_list ap;                                                                                            \
		va_start(ap, flags);                                                                                   \
		mode = va_arg(ap, mode_t);                                                                             \
		va_end(ap);                                                                                            \
	}

int open(const char *path, int flags, ...)
{
	MODE_ARG
	return ours(path) ? fwd_open(path, flags) : real_open(path, flags, mode);
}
int open64(const char *path, int flags, ...)
{
	MODE_ARG
	return ours(path) ? fwd_open(path, flags) : real_open(path, flags, mode);
}
int __open_2(const char *path, int flags)
{
	return ours(path) ? fwd_open(path, flags) : real_open(path, flags, 0);
}
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

int openat(int dirfd, const char *path, int flags, ...)
{
	MODE_ARG
	if (ours(path))
		return fwd_open(path, flags);
	static int (*r)(int, const char *, int, ...);
	if (!r)
		r = dlsym(RTLD_NEXT, "openat");
	return r(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int close(int fd)
{
	resolve();
	if (is_remote(fd)) {
		int32_t q = fd;
		int64_t r = call(OP_CLOSE, &q, 4, NULL, 0, NULL, 0, NULL);
		int e = errno;
		remote[fd] = 0;
		r_close(fd);
		errno = e;
		return r < 0 ? -1 : 0;
	}
	return r_close(fd);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	uint64_t arg = (uint64_t)va_arg(ap, unsigned long);
	va_end(ap);
	if (is_remote(fd)) {
		struct {
			int32_t fd;
			int32_t newfd; /* where a descriptor the ioctl creates goes (-1: none) */
			uint64_t req, arg;
		} q = { fd, -1, req, arg };
		if (req == VFIO_GROUP_GET_DEVICE_FD) {
			resolve();
			q.newfd = r_open("/dev/null", O_RDWR | O_CLOEXEC);
			if (q.newfd < 0 || q.newfd >= MAX_FD) {
				if (q.newfd >= 0)
					r_close(q.newfd);
				errno = EMFILE;
				return -1;
			}
		}
		int r = (int)call(OP_IOCTL, &q, sizeof(q), NULL, 0, NULL, 0, NULL);
		if (q.newfd >= 0) {
			if (r == q.newfd)
				remote[r] = 1;
			else {
				int e = errno;
				r_close(q.newfd);
				errno = e;
			}
		}
		return r;
	}
	static int (*r)(int, unsigned long, ...);
	if (!r)
		r = dlsym(RTLD_NEXT, "ioctl");
	return r(fd, req, arg);
}

static ssize_t fwd_read(int fd, void *buf, size_t n, int64_t off, int op)
{
	struct {
		int32_t fd;
		uint32_t len;
		int64_t off;
	} q = { fd, n > 0x7fffffff ? 0x7fffffff : (uint32_t)n, off };
	return (ssize_t)call(op, &q, sizeof(q), NULL, 0, buf, q.len, NULL);
}

static ssize_t fwd_write(int fd, const void *buf, size_t n, int64_t off, int op)
{
	struct {
		int32_t fd;
		uint32_t pad;
		int64_t off;
	} q = { fd, 0, off };
	return (ssize_t)call(op, &q, sizeof(q), buf, (uint32_t)n, NULL, 0, NULL);
}

ssize_t read(int fd, void *buf, size_t n)
{
	resolve();
	return is_remote(fd) ? fwd_read(fd, buf, n, 0, OP_READ) : r_read(fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	resolve();
	return is_remote(fd) ? fwd_write(fd, buf, n, 0, OP_WRITE) : r_write(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (is_remote(fd))
		return fwd_read(fd, buf, n, off, OP_PREAD);
	static ssize_t (*r)(int, void *, size_t, off_t);
	if (!r)
		r = dlsym(RTLD_NEXT, "pread");
	return r(fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

/* _FORTIFY_SOURCE builds (Debian's QEMU) call the checked entry points: check as glibc does, then serve. */
extern void __chk_fail(void) __attribute__((noreturn));

ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return pread(fd, buf, n, off);
}
ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) __attribute__((alias("__pread_chk")));

ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (n > buflen)
		__chk_fail();
	return read(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (is_remote(fd))
		return fwd_write(fd, buf, n, off, OP_PWRITE);
	static ssize_t (*r)(int, const void *, size_t, off_t);
	if (!r)
		r = dlsym(RTLD_NEXT, "pwrite");
	return r(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

off_t lseek(int fd, off_t off, int whence)
{
	if (is_remote(fd)) {
		struct {
			int32_t fd;
			int32_t whence;
			int64_t off;
		} q = { fd, whence, off };
		return (off_t)call(OP_LSEEK, &q, sizeof(q), NULL, 0, NULL, 0, NULL);
	}
	static off_t (*r)(int, off_t, int);
	if (!r)
		r = dlsym(RTLD_NEXT, "lseek");
	return r(fd, off, whence);
}
off_t lseek64(int fd, off_t off, int whence) __attribute__((alias("lseek")));

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	resolve();
	if (!is_remote(fd) || (flags & MAP_ANONYMOUS))
		return r_mmap(addr, len, prot, flags, fd, off);
	int slot = -1;
	for (int i = 0; i < 64 && slot < 0; i++)
		if (!bars[i].len)
			slot = i;
	if (slot < 0) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	/* the range first, so the server knows where the BAR lives (a VM_PFNMAP vma a MAP_DMA can pin) */
	void *p = r_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & MAP_FIXED), -1, 0);
	if (p == MAP_FAILED)
		return p;
	struct {
		int32_t fd;
		uint32_t prot;
		uint64_t len;
		int64_t off;
		uint64_t addr;
	} q = { fd, (uint32_t)prot, len, off, (uint64_t)(uintptr_t)p };
	if (call(OP_MMAP, &q, sizeof(q), NULL, 0, NULL, 0, NULL) < 0) {
		int e = errno;
		r_munmap(p, len);
		errno = e;
		return MAP_FAILED;
	}
	bars[slot] = (struct bar){ (uintptr_t)p, len, fd, (uint64_t)off };
	return p;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

int munmap(void *addr, size_t len)
{
	resolve();
	struct bar *b = bar_at((uintptr_t)addr);
	if (b && b->base == (uintptr_t)addr)
		b->len = 0;
	return r_munmap(addr, len);
}

ssize_t readlink(const char *path, char *buf, size_t n)
{
	if (ours(path)) {
		const char *p = canon(path);
		uint32_t got = 0;
		int64_t r = call(OP_READLINK, NULL, 0, p, (uint32_t)strlen(p), buf, (uint32_t)n, &got);
		return r < 0 ? -1 : (ssize_t)got;
	}
	static ssize_t (*r)(const char *, char *, size_t);
	if (!r)
		r = dlsym(RTLD_NEXT, "readlink");
	return r(path, buf, n);
}

/* stat: the server answers the file type (1 file, 2 dir, 3 link, 4 char device) and the size */
static int fwd_stat(const char *path, struct stat *st, int follow)
{
	const char *p = canon(path);
	struct {
		uint32_t kind;
		uint32_t pad;
		uint64_t size;
	} a = { 0 };
	uint32_t got = 0;
	int32_t q = follow;
	if (call(OP_STAT, &q, 4, p, (uint32_t)strlen(p), &a, sizeof(a), &got) < 0)
		return -1;
	memset(st, 0, sizeof(*st));
	static const mode_t modes[] = { 0, S_IFREG | 0444, S_IFDIR | 0755, S_IFLNK | 0777, S_IFCHR | 0600 };
	st->st_mode = modes[a.kind < 5 ? a.kind : 0];
	st->st_size = (off_t)a.size;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	return 0;
}

int stat(const char *path, struct stat *st)
{
	if (ours(path))
		return fwd_stat(path, st, 1);
	static int (*r)(const char *, struct stat *);
	if (!r)
		r = dlsym(RTLD_NEXT, "stat");
	return r(path, st);
}
int stat64(const char *path, struct stat64 *st)
{
	return stat(path, (struct stat *)st); /* the same layout on 64-bit */
}

int lstat(const char *path, struct stat *st)
{
	if (ours(path))
		return fwd_stat(path, st, 0);
	static int (*r)(const char *, struct stat *);
	if (!r)
		r = dlsym(RTLD_NEXT, "lstat");
	return r(path, st);
}
int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}

int access(const char *path, int mode)
{
	if (ours(path)) {
		struct stat st;
		if (fwd_stat(path, &st, 1) < 0)
			return -1;
		if ((mode & W_OK) && S_ISREG(st.st_mode)) {
			errno = EACCES;
			return -1;
		}
		return 0;
	}
	static int (*r)(const char *, int);
	if (!r)
		r = dlsym(RTLD_NEXT, "access");
	return r(path, mode);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	if (ours(path))
		return fwd_stat(path, st, !(flags & AT_SYMLINK_NOFOLLOW));
	static int (*r)(int, const char *, struct stat *, int);
	if (!r)
		r = dlsym(RTLD_NEXT, "fstatat");
	return r(dirfd, path, st, flags);
}
int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat(dirfd, path, (struct stat *)st, flags);
}

/* statx (coreutils, Rust's std::fs::metadata): the type, mode and size of a served path */
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *sx)
{
	if (ours(path)) {
		struct stat st;
		if (fwd_stat(path, &st, !(flags & AT_SYMLINK_NOFOLLOW)) < 0)
			return -1;
		memset(sx, 0, sizeof(*sx));
		sx->stx_mask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_SIZE;
		sx->stx_mode = (uint16_t)st.st_mode;
		sx->stx_size = (uint64_t)st.st_size;
		sx->stx_nlink = 1;
		sx->stx_blksize = 4096;
		return 0;
	}
	static int (*r)(int, const char *, int, unsigned int, struct statx *);
	if (!r)
		r = dlsym(RTLD_NEXT, "statx");
	return r(dirfd, path, flags, mask, sx);
}

int faccessat(int dirfd, const char *path, int mode, int flags)
{
	if (ours(path))
		return access(path, mode);
	static int (*r)(int, const char *, int, int);
	if (!r)
		r = dlsym(RTLD_NEXT, "faccessat");
	return r(dirfd, path, mode, flags);
}

ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
	if (ours(path))
		return readlink(path, buf, n);
	static ssize_t (*r)(int, const char *, char *, size_t);
	if (!r)
		r = dlsym(RTLD_NEXT, "readlinkat");
	return r(dirfd, path, buf, n);
}

/* ------------------------------------------------------------ stdio and directories */

static ssize_t ck_read(void *c, char *buf, size_t n)
{
	return read((int)(intptr_t)c, buf, n);
}
static int ck_seek(void *c, off64_t *off, int whence)
{
	off_t r = lseek((int)(intptr_t)c, (off_t)*off, whence);
	if (r < 0)
		return -1;
	*off = r;
	return 0;
}
static int ck_close(void *c)
{
	return close((int)(intptr_t)c);
}

FILE *fopen(const char *path, const char *mode)
{
	if (ours(path)) {
		int fd = fwd_open(path, strchr(mode, 'w') || strchr(mode, '+') ? O_RDWR : O_RDONLY);
		if (fd < 0)
			return NULL;
		cookie_io_functions_t io = { .read = ck_read, .write = NULL, .seek = ck_seek, .close = ck_close };
		return fopencookie((void *)(intptr_t)fd, mode, io);
	}
	static FILE *(*r)(const char *, const char *);
	if (!r)
		r = dlsym(RTLD_NEXT, "fopen");
	return r(path, mode);
}
FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

/* A directory the server lists: a handle of our own (glibc's DIR is opaque), told apart by its magic. */
struct fake_dir {
	uint32_t magic;
	int pos, n;
	char *names; /* n NUL-terminated names */
	struct dirent de;
	struct dirent64 de64;
};
#define FAKE_DIR_MAGIC 0x10d1d1u
static struct fake_dir *dirs[16];

static struct fake_dir *fake(DIR *d)
{
	for (int i = 0; i < 16; i++)
		if (dirs[i] && (DIR *)dirs[i] == d)
			return dirs[i];
	return NULL;
}

DIR *opendir(const char *path)
{
	if (ours(path)) {
		const char *p = canon(path);
		char *buf = malloc(65536);
		uint32_t got = 0;
		if (!buf || call(OP_READDIR, NULL, 0, p, (uint32_t)strlen(p), buf, 65536, &got) < 0) {
			free(buf);
			return NULL;
		}
		int slot = -1;
		for (int i = 0; i < 16 && slot < 0; i++)
			if (!dirs[i])
				slot = i;
		if (slot < 0) {
			free(buf);
			errno = EMFILE;
			return NULL;
		}
		struct fake_dir *d = calloc(1, sizeof(*d));
		d->magic = FAKE_DIR_MAGIC;
		d->names = malloc(got + 6);
		memcpy(d->names, ".\0..\0", 5);
		memcpy(d->names + 5, buf, got);
		d->n = 2;
		for (uint32_t i = 0; i < got; i++)
			if (!buf[i])
				d->n++;
		free(buf);
		dirs[slot] = d;
		return (DIR *)d;
	}
	static DIR *(*r)(const char *);
	if (!r)
		r = dlsym(RTLD_NEXT, "opendir");
	return r(path);
}

static const char *next_name(struct fake_dir *d)
{
	if (d->pos >= d->n)
		return NULL;
	const char *s = d->names;
	for (int i = 0; i < d->pos; i++)
		s += strlen(s) + 1;
	d->pos++;
	return s;
}

struct dirent *readdir(DIR *dir)
{
	struct fake_dir *d = fake(dir);
	if (d) {
		const char *s = next_name(d);
		if (!s)
			return NULL;
		memset(&d->de, 0, sizeof(d->de));
		snprintf(d->de.d_name, sizeof(d->de.d_name), "%s", s);
		d->de.d_type = s[0] == '.' ? DT_DIR : DT_UNKNOWN;
		d->de.d_ino = (ino_t)d->pos;
		return &d->de;
	}
	static struct dirent *(*r)(DIR *);
	if (!r)
		r = dlsym(RTLD_NEXT, "readdir");
	return r(dir);
}

struct dirent64 *readdir64(DIR *dir)
{
	struct fake_dir *d = fake(dir);
	if (d) {
		const char *s = next_name(d);
		if (!s)
			return NULL;
		memset(&d->de64, 0, sizeof(d->de64));
		snprintf(d->de64.d_name, sizeof(d->de64.d_name), "%s", s);
		d->de64.d_type = s[0] == '.' ? DT_DIR : DT_UNKNOWN;
		d->de64.d_ino = (ino64_t)d->pos;
		return &d->de64;
	}
	static struct dirent64 *(*r)(DIR *);
	if (!r)
		r = dlsym(RTLD_NEXT, "readdir64");
	return r(dir);
}

/* a listed directory has no descriptor: callers then use paths (ENOTSUP, as for some filesystems) */
int dirfd(DIR *dir)
{
	if (fake(dir)) {
		errno = ENOTSUP;
		return -1;
	}
	static int (*r)(DIR *);
	if (!r)
		r = dlsym(RTLD_NEXT, "dirfd");
	return r(dir);
}

int closedir(DIR *dir)
{
	struct fake_dir *d = fake(dir);
	if (d) {
		for (int i = 0; i < 16; i++)
			if (dirs[i] == d)
				dirs[i] = NULL;
		free(d->names);
		free(d);
		return 0;
	}
	static int (*r)(DIR *);
	if (!r)
		r = dlsym(RTLD_NEXT, "closedir");
	return r(dir);
}
