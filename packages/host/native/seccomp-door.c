// SPDX-License-Identifier: MIT
/*
 * iommu-sim-seccomp-door: the native door of @iommu-sim/host for programs a preload library cannot reach
 * (Go without cgo, static binaries: they make their system calls themselves). Run as
 *     IOMMU_SIM_SOCKET=/path/door.sock iommu-sim-seccomp-door PROGRAM ARGS...
 * it forks, and the child installs a seccomp filter that hands the file system calls (open, openat,
 * close, ioctl, read, write, pread64, pwrite64, lseek, mmap, readlink(at), stat family, statx,
 * access family, getdents64, readv/writev family, dup family, fcntl, close_range) to this supervisor as user notifications
 * (anonymous mmaps excepted), then execs PROGRAM. The
 * supervisor answers CONTINUE for every path and descriptor it does not serve, and serves the rest by
 * speaking the preload library's protocol (native/preload.c) to the door server, one connection per
 * process (OP_HELLO names the process, so the server reads and writes its memory itself).
 *
 * - A served descriptor is a real descriptor of the program, installed with SECCOMP_IOCTL_NOTIF_ADDFD at
 *   the lowest free number (the server's table uses the same number): an empty memfd named for it.
 * - A served directory is listed by the supervisor: getdents64 writes linux_dirent64 records.
 * - Interrupts: the eventfd signals the server returns with a reply are written to the program's own
 *   eventfds (pidfd_getfd) before the call returns.
 * - BAR mappings (x86-64): the mmap of a device descriptor is told to the server, then CONTINUEd, so the
 *   kernel maps the empty memfd; each load or store there is a SIGBUS, which this supervisor sees as the
 *   program's tracer (PTRACE_SEIZE): it decodes the MOV, performs the MMIO access through the server,
 *   writes the registers back and steps over it. Elsewhere a device mmap is ENODEV.
 *   Its address, the kernel's choice, is told to the server before the process's next served call, so
 *   a MAP_DMA of the BAR pins its MMIO pfns as type1 does.
 * - Numbers: the server opens at the number predicted free, the kernel installs at its own lowest free
 *   number (atomic with other threads' opens); when they differ the server's open is made again there.
 * Limits: a forked child starts without its parent's served descriptors; a dup of a served file (not a
 * directory) is the kernel's (the protocol has no alias for a number).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "door-wire.h"


#define MEMFD_PREFIX "iommu-sim-fd-"

#if defined(__x86_64__)
#define DOOR_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DOOR_ARCH AUDIT_ARCH_AARCH64
#else
#error "iommu-sim-seccomp-door: x86-64 and arm64 only"
#endif

static const int served_calls[] = {
#ifdef __NR_open
	__NR_open,
#endif
#ifdef __NR_stat
	__NR_stat, __NR_lstat, __NR_access, __NR_readlink,
#endif
#ifdef __NR_fstat
	__NR_fstat,
#endif
	__NR_openat, __NR_close, __NR_ioctl, __NR_read, __NR_write, __NR_pread64, __NR_pwrite64, __NR_lseek,
	__NR_mmap, __NR_readlinkat, __NR_newfstatat, __NR_statx, __NR_faccessat, __NR_faccessat2,
	__NR_getdents64, __NR_dup, __NR_dup3, __NR_fcntl, __NR_close_range, __NR_readv, __NR_writev,
	__NR_preadv, __NR_pwritev, __NR_preadv2, __NR_pwritev2,
#ifdef __NR_dup2
	__NR_dup2,
#endif
};

static void die(const char *what)
{
	fprintf(stderr, "iommu-sim-seccomp-door: %s: %s\n", what, strerror(errno));
	exit(127);
}

/* ------------------------------------------------------------ the program side */

static int install_filter(void)
{
	enum { N = sizeof(served_calls) / sizeof(served_calls[0]) };
	struct sock_filter f[N + 10];
	int i = 0;
	f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DOOR_ARCH, 1, 0);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	/* anonymous mmaps (every allocator's) never name a descriptor: the kernel's at once */
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 3);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]));
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_ANONYMOUS, 0, (unsigned char)(N + 2));
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	for (int k = 0; k < N; k++) /* on a match, jump to the last instruction (USER_NOTIF) */
		f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)served_calls[k],
						      (unsigned char)(N - k), 0);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	struct sock_fprog prog = { .len = (unsigned short)i, .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("PR_SET_NO_NEW_PRIVS");
	/* killable once received: a signal (Go's preemption) must not cancel a call the server is serving */
	int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		die("seccomp");
	return fd;
}

static void send_fd(int sock, int fd)
{
	char c = 0;
	struct iovec io = { &c, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		die("sendmsg");
}

static int recv_fd(int sock)
{
	char c;
	struct iovec io = { &c, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* ------------------------------------------------------------ processes and their served descriptors */

struct sfd {
	pid_t tgid; /* 0: free slot */
	int fd;
	int dir;
	char path[512];
	char *names;    /* a directory's entries, NUL-terminated, "." and ".." first */
	unsigned char *types;
	int count, pos;
};

struct proc {
	pid_t tgid; /* 0: free slot */
	int sock;   /* the server connection (-1: lost) */
};

#define MAX_SFD 512
#define MAX_PROC 64
static struct sfd sfds[MAX_SFD];
static int nsfd;
static struct proc procs[MAX_PROC];
static const char *socket_path;

static struct sfd *sfd_of(pid_t tgid, int fd)
{
	if (!nsfd)
		return NULL;
	for (int i = 0; i < MAX_SFD; i++)
		if (sfds[i].tgid == tgid && sfds[i].fd == fd)
			return &sfds[i];
	return NULL;
}

static void sfd_drop(struct sfd *s)
{
	free(s->names);
	free(s->types);
	memset(s, 0, sizeof(*s));
	nsfd--;
}

static struct sfd *sfd_new(pid_t tgid, int fd, const char *path)
{
	struct sfd *old = sfd_of(tgid, fd);
	if (old) /* SETFD replaced it: the old one is gone */
		sfd_drop(old);
	for (int i = 0; i < MAX_SFD; i++)
		if (!sfds[i].tgid) {
			sfds[i].tgid = tgid;
			sfds[i].fd = fd;
			snprintf(sfds[i].path, sizeof(sfds[i].path), "%s", path);
			nsfd++;
			return &sfds[i];
		}
	return NULL;
}

/* tid -> tgid, cached until the thread exits */
static struct {
	pid_t tid, tgid;
} tids[1024];

static pid_t tgid_of(pid_t tid)
{
	unsigned h = (unsigned)tid % 1024;
	if (tids[h].tid == tid)
		return tids[h].tgid;
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/%d/status", tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tid;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	pid_t tg = tid;
	if (n > 0) {
		buf[n] = 0;
		char *t = strstr(buf, "\nTgid:");
		if (t)
			tg = (pid_t)atoi(t + 6);
	}
	tids[h].tid = tid;
	tids[h].tgid = tg;
	return tg;
}

static void forget_tid(pid_t tid)
{
	unsigned h = (unsigned)tid % 1024;
	if (tids[h].tid == tid)
		tids[h].tid = 0;
}

static void drop_pending(pid_t tgid, int fd);

/* A process's descriptors and session end (exit, or exec replaced its memory). */
static void forget_proc(pid_t tgid)
{
	for (int i = 0; i < MAX_SFD; i++)
		if (sfds[i].tgid == tgid)
			sfd_drop(&sfds[i]);
	drop_pending(tgid, -1);
	for (int i = 0; i < MAX_PROC; i++)
		if (procs[i].tgid == tgid) {
			if (procs[i].sock >= 0)
				close(procs[i].sock);
			procs[i].tgid = 0;
		}
}

/* ------------------------------------------------------------ the program's memory */

static int listener = -1;
/* The notification being served (0: none, the tracer's part: a stopped tracee cannot be reaped but by us) */
static uint64_t serving_id;

/*
 * The caller's memory. While a notification is served, /proc/TID is checked to still be the caller after
 * opening it (SECCOMP_IOCTL_NOTIF_ID_VALID, as seccomp_unotify(2) says): a caller killed meanwhile may have
 * had its pid reused, and a result must never land in another process.
 */
static int mem_open(pid_t tid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/mem", tid);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && serving_id && ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &serving_id)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int mem_read(pid_t tid, uint64_t addr, void *buf, size_t n)
{
	int fd = mem_open(tid);
	if (fd < 0)
		return -1;
	ssize_t r = pread(fd, buf, n, (off_t)addr);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

static int mem_write(pid_t tid, uint64_t addr, const void *buf, size_t n)
{
	if (!n)
		return 0;
	int fd = mem_open(tid);
	if (fd < 0)
		return -1;
	ssize_t r = pwrite(fd, buf, n, (off_t)addr);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

/* A NUL-terminated path of the program, read page by page (a string may end just before unmapped memory). */
static int read_path(pid_t tid, uint64_t id, uint64_t addr, char *out, size_t cap)
{
	(void)id; /* mem_open checks the notification still stands */
	int fd = mem_open(tid);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < cap - 1) {
		size_t room = 4096 - ((addr + got) & 4095);
		if (room > cap - 1 - got)
			room = cap - 1 - got;
		ssize_t r = pread(fd, out + got, room, (off_t)(addr + got));
		if (r <= 0)
			break;
		void *z = memchr(out + got, 0, (size_t)r);
		if (z) {
			close(fd);
			return 0;
		}
		got += (size_t)r;
	}
	close(fd);
	out[got] = 0;
	return got ? 0 : -1;
}

/* ------------------------------------------------------------ which paths are ours (as preload.c) */

static void canon(const char *p, pid_t tgid, char *out, size_t cap)
{
	door_canon(p, tgid, out, cap);
}

static int ours(const char *p)
{
	return door_serves(p);
}

/* ------------------------------------------------------------ the wire (preload.c's) */

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

static int64_t call(struct proc *pr, uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen,
		    void **data, uint32_t *dlen, int *err);

static struct proc *proc_of(pid_t tgid)
{
	struct proc *free_slot = NULL;
	for (int i = 0; i < MAX_PROC; i++) {
		if (procs[i].tgid == tgid)
			return &procs[i];
		if (!procs[i].tgid && !free_slot)
			free_slot = &procs[i];
	}
	if (!free_slot)
		return NULL;
	free_slot->tgid = tgid;
	free_slot->sock = -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (socket_path && strlen(socket_path) < sizeof(a.sun_path)) {
		strcpy(a.sun_path, socket_path);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
			free_slot->sock = s;
			int32_t pid = tgid;
			int err;
			if (call(free_slot, OP_HELLO, &pid, 4, NULL, 0, NULL, NULL, &err) < 0 && free_slot->sock >= 0) {
				close(free_slot->sock);
				free_slot->sock = -1;
			}
		} else if (s >= 0)
			close(s);
	}
	return free_slot;
}

/* The MSI: the program's own eventfd counts it (a descriptor of its own, borrowed with pidfd_getfd). */
static void signal_eventfd(pid_t tgid, int fd, uint64_t count)
{
	int pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
	if (pidfd < 0)
		return;
	int efd = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (efd >= 0) {
		(void)!write(efd, &count, 8);
		close(efd);
	}
	close(pidfd);
}

/*
 * One request: header {u32 len, u32 op}, then `a` and `b`. The reply is {i64 ret, i32 errno, u32 nsig,
 * u32 len, u32 pad}, nsig × {i32 fd, u32 pad, u64 count}, then len bytes (returned in *data, malloc'd).
 * A lost server is EIO for every call.
 */
static int64_t call(struct proc *pr, uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen,
		    void **data, uint32_t *dlen, int *err)
{
	if (data)
		*data = NULL;
	if (dlen)
		*dlen = 0;
	*err = EIO;
	if (!pr || pr->sock < 0)
		return -1;
	uint32_t hdr[2] = { 4 + alen + blen, op };
	struct {
		int64_t ret;
		int32_t err;
		uint32_t nsig;
		uint32_t len;
		uint32_t pad;
	} rh;
	if (xfer(pr->sock, hdr, sizeof(hdr), 1) || (alen && xfer(pr->sock, (void *)a, alen, 1)) ||
	    (blen && xfer(pr->sock, (void *)b, blen, 1)) || xfer(pr->sock, &rh, sizeof(rh), 0))
		goto lost;
	for (uint32_t i = 0; i < rh.nsig; i++) {
		struct {
			int32_t fd;
			uint32_t pad;
			uint64_t count;
		} s;
		if (xfer(pr->sock, &s, sizeof(s), 0))
			goto lost;
		signal_eventfd(pr->tgid, s.fd, s.count);
	}
	char *buf = malloc(rh.len + 1);
	if (!buf || (rh.len && xfer(pr->sock, buf, rh.len, 0))) {
		free(buf);
		goto lost;
	}
	if (data)
		*data = buf;
	else
		free(buf);
	if (dlen)
		*dlen = rh.len;
	*err = rh.ret < 0 ? rh.err : 0;
	return rh.ret;
lost:
	close(pr->sock);
	pr->sock = -1;
	*err = EIO;
	return -1;
}

/* ------------------------------------------------------------ BAR mappings the server does not know yet */

/*
 * A device mmap is CONTINUEd, so its address is the kernel's choice, known only once the call returns.
 * Before the process's next served call (a MAP_DMA of the BAR, say) it is found in /proc/PID/maps and told
 * to the server again with the address, which then gives the model process its VM_PFNMAP vma.
 */
struct pending_bar {
	pid_t tgid; /* 0: free */
	int fd;
	uint32_t prot;
	uint64_t len, off;
};
static struct pending_bar pending[64];
static int npending;

static int64_t call(struct proc *pr, uint32_t op, const void *a, uint32_t alen, const void *b, uint32_t blen,
		    void **data, uint32_t *dlen, int *err);
static struct proc *proc_of(pid_t tgid);

static void settle_bars(pid_t tgid)
{
	if (!npending)
		return;
	char p[64], line[1024];
	snprintf(p, sizeof(p), "/proc/%d/maps", tgid);
	FILE *f = NULL;
	for (int i = 0; i < 64; i++) {
		if (pending[i].tgid != tgid)
			continue;
		if (!f && !(f = fopen(p, "re")))
			return;
		rewind(f);
		char want[64];
		snprintf(want, sizeof(want), "/memfd:" MEMFD_PREFIX "%d ", pending[i].fd);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long s, e, o;
			if (sscanf(line, "%llx-%llx %*s %llx", &s, &e, &o) != 3 || o != pending[i].off || !strstr(line, want))
				continue;
			struct {
				int32_t fd;
				uint32_t prot;
				uint64_t len;
				int64_t off;
				uint64_t addr;
			} q = { pending[i].fd, pending[i].prot, pending[i].len, (int64_t)pending[i].off, s };
			int err;
			call(proc_of(tgid), OP_MMAP, &q, sizeof(q), NULL, 0, NULL, NULL, &err);
			pending[i].tgid = 0;
			npending--;
			break;
		}
	}
	if (f)
		fclose(f);
}

static void drop_pending(pid_t tgid, int fd)
{
	for (int i = 0; i < 64; i++)
		if (pending[i].tgid == tgid && (fd < 0 || pending[i].fd == fd)) {
			pending[i].tgid = 0;
			npending--;
		}
}

/* ------------------------------------------------------------ answers */

static void respond(uint64_t id, int64_t val, int err)
{
	struct seccomp_notif_resp r = { .id = id, .val = err ? 0 : val, .error = err ? -err : 0, .flags = 0 };
	(void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r); /* ENOENT: the caller is gone */
}

static void cont(uint64_t id)
{
	struct seccomp_notif_resp r = { .id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
	(void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

/* The lowest number >= min the process has free (where its own open or F_DUPFD would land). */
static int lowest_free_from(pid_t tgid, int min)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/fd", tgid);
	DIR *d = opendir(p);
	if (!d)
		return -1;
	static unsigned char used[65536];
	memset(used, 0, sizeof(used));
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			long n = atol(de->d_name);
			if (n >= 0 && n < 65536)
				used[n] = 1;
		}
	closedir(d);
	for (int i = min < 0 ? 0 : min; i < 65536; i++)
		if (!used[i])
			return i;
	return -1;
}

/*
 * A number the kernel no longer holds for the process but our table still does (the kernel closed it:
 * close_range, dup2 onto it, a race): the server closes its side before the number is used again.
 */
static void vacate(pid_t tgid, int fd)
{
	struct sfd *s = sfd_of(tgid, fd);
	if (!s)
		return;
	if (!s->dir) {
		int32_t q = fd;
		int err;
		call(proc_of(tgid), OP_CLOSE, &q, 4, NULL, 0, NULL, NULL, &err);
	}
	drop_pending(tgid, fd);
	sfd_drop(s);
}

/* The lowest free number >= min, our stale entry for it (if any) closed. */
static int free_number(pid_t tgid, int min)
{
	int fd = lowest_free_from(tgid, min);
	if (fd >= 0)
		vacate(tgid, fd);
	return fd;
}

/*
 * Installs a placeholder (an empty memfd named for `fd`, so a BAR fault names its descriptor) in the
 * caller: at exactly `fd` (`at`: SETFD, replacing what is there, as dup2 does) or at the lowest free
 * number (the kernel's choice, atomic with every other thread's opens); `send` completes the call with
 * the number. Returns the number, or -1 with errno.
 */
static int addfd(uint64_t id, int fd, int cloexec, int at, int send)
{
	char name[64];
	snprintf(name, sizeof(name), MEMFD_PREFIX "%d", fd);
	int m = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
	if (m < 0)
		return -1;
	struct seccomp_notif_addfd a = { .id = id,
					 .flags = (at ? SECCOMP_ADDFD_FLAG_SETFD : 0) | (send ? SECCOMP_ADDFD_FLAG_SEND : 0),
					 .srcfd = (uint32_t)m,
					 .newfd = at ? (uint32_t)fd : 0,
					 .newfd_flags = cloexec ? O_CLOEXEC : 0 };
	int r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	int e = errno;
	close(m);
	errno = e;
	return r;
}

/* Installs at exactly `fd` and completes the call with it (dup2/dup3/F_DUPFD's number). */
static int install_placeholder(uint64_t id, int fd, int cloexec)
{
	return addfd(id, fd, cloexec, 1, 1);
}

/*
 * A descriptor the server made at `fd` (the number predicted free), installed where the kernel puts it.
 * The server's open and the install are not one step: when another thread took a number meanwhile the
 * kernel's choice differs, and the server's descriptor is made again there (nothing was done on it yet,
 * so closing it and repeating the call is the same call). `redo(fd)` repeats it at a number; returns
 * the number the caller got (the call is completed), or -1 with *err (not completed).
 */
static int place_served(struct proc *pr, uint64_t id, pid_t tgid, int fd, int cloexec, int (*redo)(void *, int, int *),
			void *ctx, int *err)
{
	int m = addfd(id, fd, cloexec, 0, 0);
	int32_t c = fd;
	int e2;
	if (m < 0) {
		*err = errno == EMFILE ? EMFILE : ENOMEM;
		call(pr, OP_CLOSE, &c, 4, NULL, 0, NULL, NULL, &e2);
		return -1;
	}
	if (m != fd) {
		call(pr, OP_CLOSE, &c, 4, NULL, 0, NULL, NULL, &e2);
		vacate(tgid, m);
		/* on failure the program keeps a bare placeholder at m: the race and a failing repeat at once */
		if (redo(ctx, m, err) < 0)
			return -1;
		if (addfd(id, m, cloexec, 1, 1) < 0) { /* our own placeholder, renamed for m */
			c = m;
			call(pr, OP_CLOSE, &c, 4, NULL, 0, NULL, NULL, &e2);
			*err = errno;
			return -1;
		}
		return m;
	}
	respond(id, m, 0);
	return m;
}

static int kind_stat(struct proc *pr, const char *path, int follow, uint32_t *kind, uint64_t *size, int *err)
{
	void *d;
	uint32_t n;
	int32_t q = follow;
	if (call(pr, OP_STAT, &q, 4, path, (uint32_t)strlen(path), &d, &n, err) < 0)
		return -1;
	struct {
		uint32_t kind, pad;
		uint64_t size;
	} a = { 0 };
	memcpy(&a, d, n < sizeof(a) ? n : sizeof(a));
	free(d);
	*kind = a.kind;
	*size = a.size;
	return 0;
}

static const mode_t modes[] = { 0, S_IFREG | 0444, S_IFDIR | 0755, S_IFLNK | 0777, S_IFCHR | 0600 };

/* A served directory: its entries, each with its type (lstat of it), for getdents64. */
static int open_dir(struct proc *pr, uint64_t id, pid_t tgid, const char *path, int cloexec, int *err)
{
	void *names;
	uint32_t n;
	if (call(pr, OP_READDIR, NULL, 0, path, (uint32_t)strlen(path), &names, &n, err) < 0)
		return -1;
	struct sfd *s = sfd_new(tgid, -1, path); /* numbered once the kernel installs it */
	if (!s) {
		free(names);
		*err = EMFILE;
		return -1;
	}
	s->dir = 1;
	s->names = malloc(n + 6);
	memcpy(s->names, ".\0..\0", 5);
	memcpy(s->names + 5, names, n);
	free(names);
	s->count = 2;
	for (uint32_t i = 0; i < n; i++)
		if (!s->names[5 + i])
			s->count++;
	s->types = calloc((size_t)s->count, 1);
	const char *e = s->names;
	for (int i = 0; i < s->count; i++, e += strlen(e) + 1) {
		static const unsigned char dt[] = { DT_UNKNOWN, DT_REG, DT_DIR, DT_LNK, DT_CHR };
		uint32_t kind = 0;
		uint64_t size;
		int e2;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, e);
		if (i < 2)
			kind = 2;
		else if (kind_stat(pr, sub, 0, &kind, &size, &e2) < 0)
			kind = 0;
		s->types[i] = dt[kind < 5 ? kind : 0];
	}
	/* the kernel's lowest free number, atomic with other threads' opens; the table entry is in place
	 * before the program can use the number (its next call waits for this one to finish) */
	int fd = addfd(id, 0, cloexec, 0, 1);
	if (fd < 0) {
		*err = errno;
		sfd_drop(s);
		return -1;
	}
	vacate(tgid, fd);
	s->fd = fd;
	return fd;
}

struct open_ctx {
	struct proc *pr;
	const char *path;
	int flags;
};

static int redo_open(void *ctx, int fd, int *err)
{
	struct open_ctx *o = ctx;
	int32_t q[2] = { fd, o->flags };
	return (int)call(o->pr, OP_OPEN, q, sizeof(q), o->path, (uint32_t)strlen(o->path), NULL, NULL, err);
}

/* open/openat of a served path: the server's descriptor, or a directory the supervisor lists. */
static void serve_open(uint64_t id, pid_t tgid, const char *path, int flags)
{
	struct proc *pr = proc_of(tgid);
	int err, cloexec = (flags & O_CLOEXEC) != 0;
	uint32_t kind = 0;
	uint64_t size;
	if (flags & O_DIRECTORY) {
		if (kind_stat(pr, path, 1, &kind, &size, &err) < 0)
			return respond(id, -1, err);
		if (kind != 2)
			return respond(id, -1, ENOTDIR);
		if (open_dir(pr, id, tgid, path, cloexec, &err) < 0)
			respond(id, -1, err);
		return;
	}
	int fd = free_number(tgid, 0);
	if (fd < 0)
		return respond(id, -1, EMFILE);
	struct open_ctx o = { pr, path, flags };
	if (redo_open(&o, fd, &err) < 0) {
		/* open(2) of a directory for reading succeeds: a descriptor getdents64 reads */
		if (err == EISDIR && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_CREAT)) {
			if (open_dir(pr, id, tgid, path, cloexec, &err) < 0)
				respond(id, -1, err);
			return;
		}
		return respond(id, -1, err);
	}
	fd = place_served(pr, id, tgid, fd, cloexec, redo_open, &o, &err);
	if (fd < 0)
		return respond(id, -1, err);
	if (!sfd_new(tgid, fd, path)) /* the table is full: the program's descriptor works as a bare placeholder */
		fprintf(stderr, "iommu-sim-seccomp-door: more than %d served descriptors\n", MAX_SFD);
}

/* A served path's inode number: its own, never 0 (tools compare st_dev/st_ino, e.g. grep's "input file is
 * also the output" check, and a zero pair equals an unset one). FNV-1a of the path. */
static uint64_t ino_of(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (h >> 1) | 1;
}

/* The device number a served file reports: sysfs's and devtmpfs's are anonymous (major 0); one for all. */
#define SERVED_DEV_MINOR 0x1d

static void fill_stat(struct stat *st, const char *path, uint32_t kind, uint64_t size)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = modes[kind < 5 ? kind : 0];
	st->st_size = (off_t)size;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	st->st_ino = (ino_t)ino_of(path);
	st->st_dev = makedev(0, SERVED_DEV_MINOR);
}

/* stat/lstat/newfstatat/statx of a served path: the type, mode and size (as preload.c answers). */
static void serve_stat(uint64_t id, pid_t tid, pid_t tgid, const char *path, int follow, uint64_t buf, int statx_)
{
	struct proc *pr = proc_of(tgid);
	uint32_t kind;
	uint64_t size;
	int err;
	if (kind_stat(pr, path, follow, &kind, &size, &err) < 0)
		return respond(id, -1, err);
	struct stat st;
	fill_stat(&st, path, kind, size);
	if (statx_) {
		struct statx sx;
		memset(&sx, 0, sizeof(sx));
		sx.stx_mask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_SIZE;
		sx.stx_mode = (uint16_t)st.st_mode;
		sx.stx_size = (uint64_t)st.st_size;
		sx.stx_nlink = 1;
		sx.stx_blksize = 4096;
		sx.stx_ino = (uint64_t)st.st_ino;
		sx.stx_mask |= STATX_INO;
		sx.stx_dev_major = 0;
		sx.stx_dev_minor = SERVED_DEV_MINOR;
		if (mem_write(tid, buf, &sx, sizeof(sx)))
			return respond(id, -1, EFAULT);
	} else if (mem_write(tid, buf, &st, sizeof(st)))
		return respond(id, -1, EFAULT);
	respond(id, 0, 0);
}

static void serve_access(uint64_t id, pid_t tgid, const char *path, int mode)
{
	uint32_t kind;
	uint64_t size;
	int err;
	if (kind_stat(proc_of(tgid), path, 1, &kind, &size, &err) < 0)
		return respond(id, -1, err);
	if ((mode & W_OK) && kind == 1)
		return respond(id, -1, EACCES);
	respond(id, 0, 0);
}

static void serve_readlink(uint64_t id, pid_t tid, pid_t tgid, const char *path, uint64_t buf, uint64_t n)
{
	void *d;
	uint32_t len;
	int err;
	if ((int64_t)n <= 0)
		return respond(id, -1, EINVAL);
	if (call(proc_of(tgid), OP_READLINK, NULL, 0, path, (uint32_t)strlen(path), &d, &len, &err) < 0)
		return respond(id, -1, err);
	uint32_t keep = len < n ? len : (uint32_t)n;
	int bad = mem_write(tid, buf, d, keep);
	free(d);
	if (bad)
		return respond(id, -1, EFAULT);
	respond(id, keep, 0);
}

/* getdents64: linux_dirent64 records of the entries left, as many as fit. */
static void serve_getdents(uint64_t id, pid_t tid, struct sfd *s, uint64_t buf, uint64_t count)
{
	char *out = malloc(count > 65536 ? 65536 : count);
	size_t used = 0;
	const char *e = s->names;
	for (int i = 0; i < s->pos; i++)
		e += strlen(e) + 1;
	for (; s->pos < s->count; s->pos++, e += strlen(e) + 1) {
		size_t reclen = (offsetof(struct dirent64, d_name) + strlen(e) + 1 + 7) & ~(size_t)7;
		if (used + reclen > (count > 65536 ? 65536 : count))
			break;
		struct dirent64 *d = (struct dirent64 *)(out + used);
		memset(d, 0, reclen);
		char full[1024];
		snprintf(full, sizeof(full), "%s/%s", s->path, e);
		d->d_ino = (ino64_t)ino_of(full);
		d->d_off = s->pos + 1;
		d->d_reclen = (unsigned short)reclen;
		d->d_type = s->types[s->pos];
		memcpy(d->d_name, e, strlen(e) + 1);
		used += reclen;
	}
	if (used == 0 && s->pos < s->count) {
		free(out);
		return respond(id, -1, EINVAL); /* the buffer holds no record */
	}
	int bad = mem_write(tid, buf, out, used);
	free(out);
	if (bad)
		return respond(id, -1, EFAULT);
	respond(id, (int64_t)used, 0);
}

static void reply_data(uint64_t id, pid_t tid, int64_t r, int err, void *d, uint32_t len, uint64_t buf, uint64_t cap)
{
	if (r < 0) {
		free(d);
		return respond(id, -1, err);
	}
	uint32_t keep = len < cap ? len : (uint32_t)cap;
	int bad = mem_write(tid, buf, d, keep);
	free(d);
	if (bad)
		return respond(id, -1, EFAULT);
	respond(id, r, 0);
}

/* a request's bytes from the caller's buffer (write/pwrite) */
static void *take(pid_t tid, uint64_t addr, uint64_t n)
{
	void *b = malloc(n ? n : 1);
	if (b && n && mem_read(tid, addr, b, n)) {
		free(b);
		return NULL;
	}
	return b;
}

/*
 * dup/dup2/dup3/fcntl(F_DUPFD[_CLOEXEC]) of a served directory: a copy the supervisor lists too (find and
 * fts walk a dup of the directory's descriptor). A served file's copy is the kernel's: the server has no
 * alias for a number, so the copy is the bare placeholder. Other fcntl commands are the kernel's.
 */
static void serve_dup(const struct seccomp_notif *req, pid_t tgid, struct sfd *s)
{
	const __u64 *a = req->data.args;
	int nr = req->data.nr, newfd, cloexec = 0;
	if (nr == __NR_fcntl) {
		if ((int)a[1] != F_DUPFD && (int)a[1] != F_DUPFD_CLOEXEC)
			return cont(req->id);
		if ((int)a[2] < 0)
			return respond(req->id, -1, EINVAL);
		newfd = free_number(tgid, (int)a[2]);
		cloexec = (int)a[1] == F_DUPFD_CLOEXEC;
	} else if (nr == __NR_dup) {
		newfd = -2; /* the kernel's lowest free number, chosen when installed */
	} else {
		newfd = (int)a[1];
		if (nr == __NR_dup3) {
			if (newfd == s->fd || (a[2] & ~(__u64)O_CLOEXEC))
				return respond(req->id, -1, EINVAL);
			cloexec = (a[2] & O_CLOEXEC) != 0;
		} else if (newfd == s->fd)
			return respond(req->id, s->fd, 0); /* dup2(fd, fd): fd, nothing done */
	}
	if (newfd < 0 && newfd != -2)
		return respond(req->id, -1, newfd == -1 ? EMFILE : EBADF);
	if (newfd >= 0)
		vacate(tgid, newfd); /* dup2/dup3 onto a served descriptor closes it first, as the kernel does */
	if (!s->dir)
		return cont(req->id);
	char path[sizeof(s->path)];
	memcpy(path, s->path, sizeof(path));
	int count = s->count, pos = s->pos, at = (int)(s - sfds);
	size_t nbytes = 0;
	const char *e = s->names;
	for (int i = 0; i < count; i++, e += strlen(e) + 1)
		;
	nbytes = (size_t)(e - s->names);
	struct sfd *d = sfd_new(tgid, newfd, path);
	s = &sfds[at];
	if (!d)
		return respond(req->id, -1, EMFILE);
	d->dir = 1;
	d->count = count;
	d->pos = pos;
	d->names = malloc(nbytes);
	memcpy(d->names, s->names, nbytes);
	d->types = malloc((size_t)count);
	memcpy(d->types, s->types, (size_t)count);
	int got = newfd == -2 ? addfd(req->id, 0, 0, 0, 1) : install_placeholder(req->id, newfd, cloexec);
	if (got < 0) {
		sfd_drop(d);
		return respond(req->id, -1, EMFILE);
	}
	if (newfd == -2)
		vacate(tgid, got);
	d->fd = got;
}

struct ioctl_ctx {
	struct proc *pr;
	int fd;
	uint64_t req, arg;
};

/* VFIO_GROUP_GET_DEVICE_FD again, its descriptor at `newfd` */
static int redo_ioctl(void *ctx, int newfd, int *err)
{
	struct ioctl_ctx *c = ctx;
	struct {
		int32_t fd;
		int32_t newfd;
		uint64_t req, arg;
	} q = { c->fd, newfd, c->req, c->arg };
	int64_t r = call(c->pr, OP_IOCTL, &q, sizeof(q), NULL, 0, NULL, NULL, err);
	return r == newfd ? 0 : -1;
}

/*
 * readv/writev/preadv/pwritev(2) on a served file (musl's stdio reads and writes with them): one read or
 * write of the whole length, scattered to or gathered from the caller's iovecs.
 */
static void serve_vec(const struct seccomp_notif *req, struct proc *pr, int fd)
{
	const __u64 *a = req->data.args;
	int nr = req->data.nr, err;
	pid_t tid = (pid_t)req->pid;
	int rd = nr == __NR_readv || nr == __NR_preadv || nr == __NR_preadv2;
	int positioned = nr != __NR_readv && nr != __NR_writev;
	if (nr == __NR_preadv2 || nr == __NR_pwritev2) {
		if ((int64_t)a[3] == -1) /* offset -1: the file position, as readv/writev */
			positioned = 0;
	}
	if (a[2] > 1024) /* UIO_MAXIOV */
		return respond(req->id, -1, EINVAL);
	int cnt = (int)a[2];
	struct iovec *iov = malloc(sizeof(*iov) * (size_t)(cnt ? cnt : 1));
	if (cnt && mem_read(tid, a[1], iov, sizeof(*iov) * (size_t)cnt)) {
		free(iov);
		return respond(req->id, -1, EFAULT);
	}
	uint64_t total = 0;
	for (int i = 0; i < cnt; i++) {
		if ((int64_t)iov[i].iov_len < 0) {
			free(iov);
			return respond(req->id, -1, EINVAL);
		}
		total += iov[i].iov_len;
	}
	if (total > 0x7ffff000)
		total = 0x7ffff000; /* MAX_RW_COUNT */
	int64_t off = positioned ? (int64_t)a[3] : 0, r;
	if (rd) {
		struct {
			int32_t fd;
			uint32_t len;
			int64_t off;
		} q = { fd, (uint32_t)total, off };
		void *d;
		uint32_t len;
		r = call(pr, positioned ? OP_PREAD : OP_READ, &q, sizeof(q), NULL, 0, &d, &len, &err);
		if (r >= 0) {
			uint64_t done = 0, n = len < (uint64_t)r ? len : (uint64_t)r;
			for (int i = 0; i < cnt && done < n; i++) {
				uint64_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
				if (mem_write(tid, (uint64_t)(uintptr_t)iov[i].iov_base, (char *)d + done, k)) {
					r = -1;
					err = EFAULT;
					break;
				}
				done += k;
			}
		}
		free(d);
	} else {
		if (total > (16u << 20))
			total = 16u << 20;
		char *b = malloc(total ? total : 1);
		uint64_t done = 0;
		for (int i = 0; i < cnt && done < total; i++) {
			uint64_t k = iov[i].iov_len < total - done ? iov[i].iov_len : total - done;
			if (mem_read(tid, (uint64_t)(uintptr_t)iov[i].iov_base, b + done, k)) {
				free(b);
				free(iov);
				return respond(req->id, -1, EFAULT);
			}
			done += k;
		}
		struct {
			int32_t fd;
			uint32_t pad;
			int64_t off;
		} q = { fd, 0, off };
		r = call(pr, positioned ? OP_PWRITE : OP_WRITE, &q, sizeof(q), b, (uint32_t)done, NULL, NULL, &err);
		free(b);
	}
	free(iov);
	respond(req->id, r, r < 0 ? err : 0);
}

/* A call on a served descriptor. */
static void serve_fd(const struct seccomp_notif *req, pid_t tgid, struct sfd *s)
{
	const __u64 *a = req->data.args;
	uint64_t id = req->id;
	pid_t tid = (pid_t)req->pid;
	int nr = req->data.nr;
	struct proc *pr = proc_of(tgid);
	int fd = s->fd, err;
	void *d;
	uint32_t len;
	settle_bars(tgid);
	if (nr == __NR_close) {
		drop_pending(tgid, fd);
		if (!s->dir) {
			int32_t q = fd;
			call(pr, OP_CLOSE, &q, 4, NULL, 0, NULL, NULL, &err);
		}
		sfd_drop(s);
		return cont(id); /* the kernel closes the placeholder */
	}
	int stat_call = nr == __NR_newfstatat || nr == __NR_statx;
#ifdef __NR_fstat
	stat_call |= nr == __NR_fstat;
#endif
	if (stat_call && !s->path[0])
		return cont(id); /* fstat of a device descriptor (an anonymous inode): the placeholder's */
#ifdef __NR_fstat
	if (nr == __NR_fstat) {
		char path[512];
		memcpy(path, s->path, sizeof(path));
		return serve_stat(id, tid, tgid, path, 1, a[1], 0);
	}
#endif
	if (nr == __NR_newfstatat || nr == __NR_statx) /* AT_EMPTY_PATH on the descriptor */
		return serve_stat(id, tid, tgid, s->path, 1, nr == __NR_statx ? a[4] : a[2], nr == __NR_statx);
	if (nr == __NR_dup || nr == __NR_dup3 || nr == __NR_fcntl
#ifdef __NR_dup2
	    || nr == __NR_dup2
#endif
	)
		return serve_dup(req, tgid, s);
	if (s->dir) {
		if (nr == __NR_getdents64)
			return serve_getdents(id, tid, s, a[1], a[2]);
		if (nr == __NR_lseek && a[1] == 0 && (int)a[2] == SEEK_SET) {
			s->pos = 0;
			return respond(id, 0, 0);
		}
		if (nr == __NR_read || nr == __NR_pread64 || nr == __NR_readv || nr == __NR_preadv ||
		    nr == __NR_preadv2)
			return respond(id, -1, EISDIR);
		if (nr == __NR_write || nr == __NR_pwrite64 || nr == __NR_writev || nr == __NR_pwritev ||
		    nr == __NR_pwritev2)
			return respond(id, -1, EBADF);
		if (nr == __NR_ioctl)
			return respond(id, -1, ENOTTY);
		if (nr == __NR_mmap)
			return respond(id, -1, ENODEV);
		return cont(id);
	}
	switch (nr) {
	case __NR_getdents64:
		return respond(id, -1, ENOTDIR);
	case __NR_ioctl: {
		struct {
			int32_t fd;
			int32_t newfd; /* where a descriptor the ioctl creates goes (-1: none) */
			uint64_t req, arg;
		} q = { fd, -1, (uint32_t)a[1], a[2] }; /* the kernel's cmd is an unsigned int */
		if (q.req == VFIO_GROUP_GET_DEVICE_FD) {
			q.newfd = free_number(tgid, 0);
			if (q.newfd < 0)
				return respond(id, -1, EMFILE);
		}
		int64_t r = call(pr, OP_IOCTL, &q, sizeof(q), NULL, 0, NULL, NULL, &err);
		if (r < 0)
			return respond(id, -1, err);
		if (q.newfd >= 0 && r == q.newfd) {
			/* vfio_group_get_device_fd's file is O_CLOEXEC-free: the caller sets it if it wants */
			struct ioctl_ctx c = { pr, fd, q.req, q.arg };
			int got = place_served(pr, id, tgid, q.newfd, 0, redo_ioctl, &c, &err);
			if (got < 0)
				return respond(id, -1, err);
			if (!sfd_new(tgid, got, ""))
				fprintf(stderr, "iommu-sim-seccomp-door: more than %d served descriptors\n", MAX_SFD);
			return;
		}
		return respond(id, r, 0);
	}
	case __NR_read:
	case __NR_pread64: {
		struct {
			int32_t fd;
			uint32_t len;
			int64_t off;
		} q = { fd, a[2] > 0x7fffffff ? 0x7fffffff : (uint32_t)a[2], nr == __NR_read ? 0 : (int64_t)a[3] };
		int64_t r = call(pr, nr == __NR_read ? OP_READ : OP_PREAD, &q, sizeof(q), NULL, 0, &d, &len, &err);
		return reply_data(id, tid, r, err, d, len, a[1], q.len);
	}
	case __NR_write:
	case __NR_pwrite64: {
		uint64_t n = a[2] > (16u << 20) ? (16u << 20) : a[2];
		void *b = take(tid, a[1], n);
		if (!b)
			return respond(id, -1, EFAULT);
		struct {
			int32_t fd;
			uint32_t pad;
			int64_t off;
		} q = { fd, 0, nr == __NR_write ? 0 : (int64_t)a[3] };
		int64_t r = call(pr, nr == __NR_write ? OP_WRITE : OP_PWRITE, &q, sizeof(q), b, (uint32_t)n, NULL, NULL,
				 &err);
		free(b);
		return respond(id, r, r < 0 ? err : 0);
	}
	case __NR_readv:
	case __NR_writev:
	case __NR_preadv:
	case __NR_pwritev:
	case __NR_preadv2:
	case __NR_pwritev2:
		return serve_vec(req, pr, fd);
	case __NR_lseek: {
		struct {
			int32_t fd;
			int32_t whence;
			int64_t off;
		} q = { fd, (int32_t)a[2], (int64_t)a[1] };
		int64_t r = call(pr, OP_LSEEK, &q, sizeof(q), NULL, 0, NULL, NULL, &err);
		return respond(id, r, r < 0 ? err : 0);
	}
	case __NR_mmap: {
		if (a[3] & MAP_ANONYMOUS)
			return cont(id);
#if defined(__x86_64__)
		struct {
			int32_t fd;
			uint32_t prot;
			uint64_t len;
			int64_t off;
			uint64_t addr; /* unknown until the kernel maps it: settle_bars tells it */
		} q = { fd, (uint32_t)a[2], a[1], (int64_t)a[5], 0 };
		int64_t r = call(pr, OP_MMAP, &q, sizeof(q), NULL, 0, NULL, NULL, &err);
		if (r < 0)
			return respond(id, -1, err);
		for (int i = 0; i < 64; i++)
			if (!pending[i].tgid) {
				pending[i] = (struct pending_bar){ tgid, fd, (uint32_t)a[2], a[1], a[5] };
				npending++;
				break;
			}
		return cont(id); /* the kernel maps the empty memfd: every access faults to us (on_sigbus) */
#else
		return respond(id, -1, ENODEV); /* no instruction decoder for this architecture */
#endif
	}
	default:
		return cont(id);
	}
}

/* Whether the process has `fd` open (a dup2 from a closed descriptor fails and closes nothing). */
static int fcntl_ok(pid_t tid, int fd)
{
	char p[64];
	struct stat st;
	snprintf(p, sizeof(p), "/proc/%d/fd/%d", tid, fd);
	return fd >= 0 && lstat(p, &st) == 0;
}

/* One notification: a path-based call (served when its path is ours) or a call on a descriptor. */
static void handle(const struct seccomp_notif *req)
{
	const __u64 *a = req->data.args;
	uint64_t id = req->id;
	pid_t tid = (pid_t)req->pid;
	int nr = req->data.nr;
	int pathi = -1;
	switch (nr) {
#ifdef __NR_open
	case __NR_open:
	case __NR_stat:
	case __NR_lstat:
	case __NR_access:
	case __NR_readlink:
		pathi = 0;
		break;
#endif
	case __NR_openat:
	case __NR_readlinkat:
	case __NR_newfstatat:
	case __NR_statx:
	case __NR_faccessat:
	case __NR_faccessat2:
		pathi = 1;
		break;
	default:
		break;
	}
	pid_t tgid = 0;
	if (pathi >= 0) {
		char raw[4096], path[4096];
		if (read_path(tid, id, a[pathi], raw, sizeof(raw)) < 0)
			return cont(id); /* the kernel gives its own EFAULT */
		/* AT_EMPTY_PATH on a served descriptor: fstat */
		if (raw[0] == 0 && (nr == __NR_newfstatat || nr == __NR_statx)) {
			int flags = (int)(nr == __NR_newfstatat ? a[3] : a[2]);
			if (flags & AT_EMPTY_PATH) {
				struct sfd *s = nsfd ? sfd_of(tgid_of(tid), (int)a[0]) : NULL;
				if (s)
					return serve_fd(req, s->tgid, s);
			}
			return cont(id);
		}
		if (raw[0] != '/') {
			/* relative to a served directory's descriptor (find, fts, openat walks): below its path */
			struct sfd *d = pathi == 1 && nsfd ? sfd_of(tgid_of(tid), (int)a[0]) : NULL;
			if (!d || !d->dir)
				return cont(id); /* the kernel's: the cwd and other directories are never ours */
			char joined[sizeof(raw) + sizeof(d->path)];
			snprintf(joined, sizeof(joined), "%s/%s", d->path, raw);
			size_t n = strlen(joined) < sizeof(raw) - 1 ? strlen(joined) : sizeof(raw) - 1;
			memcpy(raw, joined, n);
			raw[n] = 0;
		}
		tgid = strncmp(raw, "/proc/", 6) == 0 ? tgid_of(tid) : 0;
		canon(raw, tgid, path, sizeof(path));
		if (!ours(path))
			return cont(id);
		if (!tgid)
			tgid = tgid_of(tid);
		switch (nr) {
#ifdef __NR_open
		case __NR_open:
			return serve_open(id, tgid, path, (int)a[1]);
		case __NR_stat:
		case __NR_lstat:
			return serve_stat(id, tid, tgid, path, nr == __NR_stat, a[1], 0);
		case __NR_access:
			return serve_access(id, tgid, path, (int)a[1]);
		case __NR_readlink:
			return serve_readlink(id, tid, tgid, path, a[1], a[2]);
#endif
		case __NR_openat:
			return serve_open(id, tgid, path, (int)a[2]);
		case __NR_readlinkat:
			return serve_readlink(id, tid, tgid, path, a[2], a[3]);
		case __NR_newfstatat:
			return serve_stat(id, tid, tgid, path, !((int)a[3] & AT_SYMLINK_NOFOLLOW), a[2], 0);
		case __NR_statx:
			return serve_stat(id, tid, tgid, path, !((int)a[2] & AT_SYMLINK_NOFOLLOW), a[4], 1);
		default: /* faccessat, faccessat2 */
			return serve_access(id, tgid, path, (int)a[2]);
		}
	}
	/* a call on a descriptor: only served ones are ours */
	if (!nsfd)
		return cont(id);
	tgid = tgid_of(tid);
	if (nr == __NR_close_range) {
		/* the kernel closes them: the server's side goes first (CLOEXEC only marks them) */
		if (!(a[2] & CLOSE_RANGE_CLOEXEC))
			for (int i = 0; i < MAX_SFD; i++)
				if (sfds[i].tgid == tgid && (unsigned)sfds[i].fd >= (unsigned)a[0] &&
				    (unsigned)sfds[i].fd <= (unsigned)a[1])
					vacate(tgid, sfds[i].fd);
		return cont(id);
	}
	int dup_onto = nr == __NR_dup3;
#ifdef __NR_dup2
	dup_onto |= nr == __NR_dup2;
#endif
	if (dup_onto && (int)a[0] != (int)a[1] && !sfd_of(tgid, (int)a[0]) && sfd_of(tgid, (int)a[1]) &&
	    fcntl_ok(tid, (int)a[0]))
		vacate(tgid, (int)a[1]); /* an unserved descriptor dup'd onto a served one closes it */
	struct sfd *s = sfd_of(tgid, (int)a[nr == __NR_mmap ? 4 : 0]);
	if (!s)
		return cont(id);
	serve_fd(req, tgid, s);
}

/* ------------------------------------------------------------ BAR accesses (the tracer's part) */

#if defined(__x86_64__)
/* The served descriptor and file offset of a BAR mapping address, from /proc/TID/maps; 0 if none. */
static int bar_of(pid_t tid, uint64_t addr, int *fd, uint64_t *off)
{
	char p[64], line[1024];
	snprintf(p, sizeof(p), "/proc/%d/maps", tid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long s, e, o;
		int name = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &s, &e, &o, &name) < 3 || addr < s || addr >= e)
			continue;
		const char *m = strstr(line + name, "/memfd:" MEMFD_PREFIX);
		if (m) {
			*fd = atoi(m + strlen("/memfd:" MEMFD_PREFIX));
			*off = o + (addr - s);
			found = 1;
		}
		break;
	}
	fclose(f);
	return found;
}

static uint64_t mmio(struct proc *pr, int fd, uint64_t off, uint32_t size, int wr, uint64_t val)
{
	struct {
		int32_t fd;
		uint32_t size;
		uint64_t off;
		uint32_t write;
		uint32_t pad;
		uint64_t val;
	} q = { fd, size, off, (uint32_t)wr, 0, val };
	void *d;
	uint32_t n;
	int err;
	uint64_t v = ~0ULL;
	if (call(pr, OP_MMIO, &q, sizeof(q), NULL, 0, &d, &n, &err) >= 0 && n == 8)
		memcpy(&v, d, 8);
	free(d);
	return v;
}

/* register of an x86 register number (rax=0 … r15=15) */
static unsigned long long *reg(struct user_regs_struct *r, int n)
{
	unsigned long long *map[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
					&r->r8,	 &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
	return map[n & 15];
}

/* Length of the ModRM/SIB/displacement bytes after the opcode. */
/* Emulate one MOV to or from the BAR (preload.c's decoder, on the tracee's registers); 0: not one we know. */
static int emulate(pid_t tid, struct proc *pr, int fd, uint64_t off)
{
	struct user_regs_struct rg;
	uint8_t p[32];
	if (ptrace(PTRACE_GETREGS, tid, 0, &rg) || mem_read(tid, rg.rip, p, 16))
		return 0;
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
		v = mmio(pr, fd, off, (uint32_t)size, 0, 0);
		if (size == 4 || size == 8)
			*reg(&rg, regno) = size == 4 ? (uint32_t)v : v;
		else if (size == 2)
			*reg(&rg, regno) = (*reg(&rg, regno) & ~0xffffULL) | (v & 0xffff);
		else if (!rex && regno >= 4 && regno < 8) /* ah, ch, dh, bh */
			*reg(&rg, regno - 4) = (*reg(&rg, regno - 4) & ~0xff00ULL) | ((v & 0xff) << 8);
		else
			*reg(&rg, regno) = (*reg(&rg, regno) & ~0xffULL) | (v & 0xff);
		break;
	case 0x89: /* mov r/m, r */
	case 0x88:
		if (opc == 0x88)
			size = 1;
		regno = r | ((p[i] >> 3) & 7);
		len = i + modrm_len(p + i);
		v = *reg(&rg, regno);
		if (size == 1 && !rex && regno >= 4 && regno < 8)
			v = *reg(&rg, regno - 4) >> 8;
		mmio(pr, fd, off, (uint32_t)size, 1, size == 8 ? v : v & ((1ULL << (8 * size)) - 1));
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
		mmio(pr, fd, off, (uint32_t)size, 1, v);
		break;
	case 0x0f: /* movzx r, r/m8 | r/m16 */
		if (p[i] != 0xb6 && p[i] != 0xb7)
			return 0;
		size = p[i] == 0xb6 ? 1 : 2;
		i++;
		regno = r | ((p[i] >> 3) & 7);
		len = i + modrm_len(p + i);
		v = mmio(pr, fd, off, (uint32_t)size, 0, 0);
		*reg(&rg, regno) = v;
		break;
	default:
		return 0;
	}
	rg.rip += (unsigned long long)len;
	return ptrace(PTRACE_SETREGS, tid, 0, &rg) == 0;
}

/* A SIGBUS of the tracee: 1 when it was a BAR access we performed (the signal is then dropped). */
static int on_sigbus(pid_t tid)
{
	siginfo_t si;
	int fd;
	uint64_t off;
	if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) || !bar_of(tid, (uint64_t)(uintptr_t)si.si_addr, &fd, &off))
		return 0;
	pid_t tgid = tgid_of(tid);
	if (!sfd_of(tgid, fd))
		return 0;
	return emulate(tid, proc_of(tgid), fd, off);
}
#else
static int on_sigbus(pid_t tid)
{
	(void)tid;
	return 0;
}
#endif

/* ------------------------------------------------------------ the supervisor */

static int exit_code = -1;

static void on_wait(pid_t child, pid_t tid, int st)
{
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		forget_tid(tid);
		if (tid == child) {
			exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (WIFSIGNALED(st))
				exit_code = -1000 - WTERMSIG(st);
		}
		/* a thread-group leader's exit is reported after its other threads': its session ends */
		for (int i = 0; i < MAX_PROC; i++)
			if (procs[i].tgid == tid)
				forget_proc(tid);
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	int sig = WSTOPSIG(st), event = st >> 16;
	if (event == PTRACE_EVENT_STOP) {
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			ptrace(PTRACE_LISTEN, tid, 0, 0); /* a group-stop: stay stopped until SIGCONT */
		else
			ptrace(PTRACE_CONT, tid, 0, 0); /* a new tracee's first stop */
		return;
	}
	if (event == PTRACE_EVENT_EXEC) {
		/* the process's memory is new: its session (and the server's view of it) starts over */
		forget_proc(tgid_of(tid));
		ptrace(PTRACE_CONT, tid, 0, 0);
		return;
	}
	if (event) {
		ptrace(PTRACE_CONT, tid, 0, 0);
		return;
	}
	if (sig == SIGBUS && on_sigbus(tid))
		sig = 0;
	ptrace(PTRACE_CONT, tid, 0, (void *)(uintptr_t)sig);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: IOMMU_SIM_SOCKET=PATH %s PROGRAM [ARGS...]\n", argv[0]);
		return 127;
	}
	socket_path = getenv("IOMMU_SIM_SOCKET");
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		die("socketpair");
	/*
	 * SIGCHLD, and the signals that end a program, come to us through a signalfd: one sent to us (kill,
	 * Node's child.kill) is passed on to the program, so it can clean up as it would without us; one the
	 * terminal sent reached the program by itself (same process group).
	 */
	sigset_t chld, saved;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigaddset(&chld, SIGINT);
	sigaddset(&chld, SIGTERM);
	sigaddset(&chld, SIGHUP);
	sigaddset(&chld, SIGQUIT);
	sigprocmask(SIG_BLOCK, &chld, &saved);
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &saved, NULL);
		close(sp[0]);
		char go;
		if (read(sp[1], &go, 1) != 1) /* the supervisor is our tracer now */
			_exit(127);
		int l = install_filter();
		send_fd(sp[1], l);
		close(sp[1]);
		/* the listener is close-on-exec: the program never sees it */
		execvp(argv[1], argv + 1);
		fprintf(stderr, "iommu-sim-seccomp-door: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	close(sp[1]);
	if (ptrace(PTRACE_SEIZE, child, 0,
		   (void *)(uintptr_t)(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
				       PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)))
		die("PTRACE_SEIZE");
	if (write(sp[0], "g", 1) != 1)
		die("write");
	listener = recv_fd(sp[0]);
	close(sp[0]);
	int sfdesc = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfdesc < 0)
		die("signalfd");

	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz))
		die("SECCOMP_GET_NOTIF_SIZES");
	struct seccomp_notif *req = malloc(sz.seccomp_notif > sizeof(*req) ? sz.seccomp_notif : sizeof(*req));

	while (exit_code == -1) {
		struct pollfd pf[2] = { { sfdesc, POLLIN, 0 }, { listener, POLLIN, 0 } };
		int np = listener >= 0 ? 2 : 1;
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfdesc, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo != SIGCHLD && si.ssi_code != SI_KERNEL)
					kill(child, (int)si.ssi_signo);
			int st;
			pid_t t;
			while ((t = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
				on_wait(child, t, st);
		}
		if (np == 2 && (pf[1].revents & POLLIN)) {
			memset(req, 0, sz.seccomp_notif);
			if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, req) == 0) {
				serving_id = req->id;
				handle(req);
				serving_id = 0;
			}
		} else if (np == 2 && (pf[1].revents & (POLLHUP | POLLERR))) {
			close(listener); /* no program left under the filter */
			listener = -1;
		}
	}
	fflush(stdout);
	if (exit_code <= -1000) { /* die as the program died, so our parent sees its signal */
		int sig = -1000 - exit_code;
		signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &saved, NULL);
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		kill(getpid(), sig);
		return 128 + sig;
	}
	return exit_code;
}
