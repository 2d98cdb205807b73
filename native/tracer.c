/*
 * The tracer loop and the hot paths of sentry's ptrace platform.
 *
 * One loop (waitpid(-1, __WALL)) serves every guest task.  sn_wait() returns to
 * Python only the stops that need the Sentry's judgement; stops that can be
 * answered from a few integers (a memory call that does not touch the staging
 * area, a foreign syscall ABI) are answered here without entering Python.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <linux/ptrace.h>

#include "tracer.h"
#include "resolve.h"
#include "tidtable.h"

/* The staging area sits at the same address in every guest address space, so
 * the memory-call check needs no per-task lookup. */
static uint64_t staging_base, staging_size;
/* Syscalls the filter traps only so that their address range can be checked. */
static unsigned char mm_check[SN_MAX_SYSCALL];
static sn_counters counters;
/* seccomp stops per syscall, and those of them Python answered, for --debug:
 * what the fast paths leave to Python is where the time goes */
static uint64_t traps_by_nr[SN_MAX_SYSCALL], python_by_nr[SN_MAX_SYSCALL];

uint64_t sn_traps_of(int nr) { return nr >= 0 && nr < SN_MAX_SYSCALL ? traps_by_nr[nr] : 0; }
uint64_t sn_python_stops_of(int nr) { return nr >= 0 && nr < SN_MAX_SYSCALL ? python_by_nr[nr] : 0; }

void sn_set_staging(uint64_t base, uint64_t size) { staging_base = base; staging_size = size; }
static int staging_prot, staging_flags;
void sn_set_staging_mmap(int prot, int flags) { staging_prot = prot; staging_flags = flags; }
void sn_set_mm_check(int nr, int on) { if (nr >= 0 && nr < SN_MAX_SYSCALL) mm_check[nr] = on; }
void sn_get_counters(sn_counters *out) { *out = counters; }

long sn_ptrace(int req, int tid, uint64_t addr, uint64_t data)
{
	errno = 0;
	long r = ptrace(req, tid, (void *)addr, (void *)data);
	if (r == -1 && errno) return -errno;
	return r;
}

int sn_getregs(int tid, sn_regs *regs)
{
	return ptrace(PTRACE_GETREGS, tid, 0, regs) ? -errno : 0;
}

int sn_setregs(int tid, const sn_regs *regs)
{
	return ptrace(PTRACE_SETREGS, tid, 0, (void *)regs) ? -errno : 0;
}

static int overlaps_staging(uint64_t addr, uint64_t len)
{
	if (!staging_size) return 0;
	uint64_t end = addr + len;
	if (end < addr) return 1;   /* a wrapping range overlaps everything */
	return addr < staging_base + staging_size && staging_base < end;
}

/* Length argument of each address-range call, by syscall number. */
static int mm_range(const sn_regs *r, uint64_t *addr, uint64_t *len)
{
	switch (r->orig_rax) {
	case SYS_munmap: case SYS_mprotect: case SYS_madvise: case SYS_pkey_mprotect:
	case SYS_remap_file_pages: case SYS_mlock: case SYS_munlock: case SYS_mlock2:
	case SYS_msync: case SYS_mbind:
		*addr = r->rdi; *len = r->rsi; return 1;
	case SYS_mremap:
		/* the old range, and the new one when MREMAP_FIXED names it */
		if (overlaps_staging(r->rdi, r->rsi)) { *addr = r->rdi; *len = r->rsi; return 1; }
		if (r->r10 & 2 /* MREMAP_FIXED */) { *addr = r->r8; *len = r->rdx; return 1; }
		*addr = 0; *len = 0; return 1;
	case SYS_mmap:
		/* only a fixed mapping can replace an existing one */
		if (r->r10 & (MAP_FIXED | MAP_FIXED_NOREPLACE)) { *addr = r->rdi; *len = r->rsi; return 1; }
		*addr = 0; *len = 0; return 1;
	}
	return 0;
}

/* Skip the host call: the guest sees `value` (a result or -errno).  Two
 * words are written, not the whole set: PTRACE_SETREGS reads and checks all
 * 27 registers, which costs more than two PTRACE_POKEUSERs (bench/: ~0.2 µs
 * of a ~3.5 µs answered stop, pinned).  The callers change no other
 * register of r before answering. */
void sn_answer(int tid, sn_regs *r, long value)
{
	r->orig_rax = (uint64_t)-1;
	r->rax = (uint64_t)value;
	ptrace(PTRACE_POKEUSER, tid, offsetof(sn_regs, rax), r->rax);
	ptrace(PTRACE_POKEUSER, tid, offsetof(sn_regs, orig_rax), r->orig_rax);
	ptrace(PTRACE_CONT, tid, 0, 0);
}

/* newfstatat/statx(fd, "", AT_EMPTY_PATH) is glibc's fstat: it names only the
 * caller's own fd.  The empty string lives in guest memory, where a racing
 * thread could fill it in after this check, so the call is not let through as
 * it is: it is rewritten to a form whose meaning sits in registers alone
 * (fstat(fd), or statx with a NULL path, which kernels >= 6.11 accept). */
static int statx_null_ok;
void sn_set_statx_null(int ok) { statx_null_ok = ok; }

static int empty_path_call(int tid, sn_regs *r)
{
	uint64_t path, flags;
	int fd = (int)r->rdi;
	if (r->orig_rax == SYS_newfstatat) { path = r->rsi; flags = r->r10; }
	else if (r->orig_rax == SYS_statx && statx_null_ok) { path = r->rsi; flags = r->rdx; }
	else return 0;
	if (!(flags & 0x1000 /* AT_EMPTY_PATH */) || fd < 0) return 0;
	if (fd >= SN_HIDDEN_FD_BASE && fd < SN_HIDDEN_FD_BASE + SN_MAX_MOUNTS) return 0;   /* Python: EBADF */
	if (sn_ident_id_view(tid)) return 0;     /* its stat's ids are a user namespace's view: Python */
	char c;
	if (sn_read_mem(tid, path, &c, 1) != 1 || c != 0) return 0;
	if (r->orig_rax == SYS_newfstatat) {
		r->orig_rax = SYS_fstat;
		r->rdi = (unsigned)fd;
		r->rsi = r->rdx;
	} else {
		r->rsi = 0;
	}
	return ptrace(PTRACE_SETREGS, tid, 0, r) == 0;
}

/* Returns 1 when the seccomp stop was fully answered here. */
static int fast_seccomp(int tid, sn_regs *r)
{
	/* The kernel reads the number as an int: the low half of rax, as the
	 * filter saw it.  A negative one is ENOSYS; high bits change nothing,
	 * so they are dropped before anything here or in Python reads it. */
	int32_t nr = (int32_t)r->orig_rax;
	if (nr < 0) {
		sn_answer(tid, r, -ENOSYS);
		return 1;
	}
	if (r->orig_rax >> 32) {
		r->orig_rax = (uint32_t)nr;
		if (ptrace(PTRACE_SETREGS, tid, 0, r)) return 0;
	}
	if (nr & 0x40000000) {
		/* x32 numbers share our audit arch, so the filter cannot tell them
		 * apart; the design says a foreign ABI kills the process. */
		counters.killed_foreign++;
		syscall(SYS_tgkill, tid, tid, SIGKILL);
		ptrace(PTRACE_CONT, tid, 0, 0);
		return 1;
	}
	/* With the fast paths off (--strace), every call but a refused one
	 * reaches Python, to be shown: the fstat form runs as the guest wrote it */
	if (sn_fast_enabled() && empty_path_call(tid, r)) {
		counters.fast_allowed++;
		ptrace(PTRACE_CONT, tid, 0, 0);
		return 1;
	}
	if (sn_ident_answer(tid, r) || sn_fast_path(tid, r) || sn_fast_net(tid, r) || sn_fast_clone3(tid, r)) {
		counters.fast_paths++;
		return 1;
	}
	if (nr < SN_MAX_SYSCALL && mm_check[nr]) {
		uint64_t addr, len;
		if (mm_range(r, &addr, &len)) {
			if (overlaps_staging(addr, len)) {
				counters.fast_denied++;
				sn_answer(tid, r, -EPERM);
				return 1;
			}
			if (!sn_fast_enabled())
				return 0;    /* checked: Python shows it and lets it run (Kernel.on_syscall) */
			counters.fast_allowed++;
			ptrace(PTRACE_CONT, tid, 0, 0);
			return 1;
		}
	}
	return 0;
}

/* A new image's staging area, mapped by C (Python's Kernel.map_staging
 * does the same for a thread without a slot): at the seccomp stop of the
 * first call a fast path would answer but for the area, the call becomes
 * the area's mmap (MAP_FIXED_NOREPLACE, read-only); at its syscall-exit
 * stop the guest's registers come back, one instruction earlier, so its
 * own call runs again and is answered.  A mapping that is not there (an
 * error: a guest mapping in the way, a filter of its own) leaves the thread
 * without a slot: its call, run again, is Python's, which maps it or kills
 * the task and says why. */
#define MAPPING_TABLE 4096
static struct { int tid; sn_regs saved; } mapping[MAPPING_TABLE];

static int map_staging(int tid, const sn_regs *r)
{
	if (!staging_size || tid_find(mapping, sizeof mapping[0], MAPPING_TABLE, tid) >= 0) return 0;
	int i = tid_claim(mapping, sizeof mapping[0], MAPPING_TABLE, tid);
	if (i < 0) return 0;
	mapping[i].saved = *r;
	sn_regs m = *r;
	m.orig_rax = SYS_mmap;
	m.rdi = staging_base;
	m.rsi = staging_size;
	m.rdx = (uint64_t)staging_prot;
	m.r10 = (uint64_t)staging_flags;
	m.r8 = (uint64_t)-1;
	m.r9 = 0;
	if (ptrace(PTRACE_SETREGS, tid, 0, &m) || ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
		mapping[i].tid = -1;
		return 0;
	}
	return 1;
}

/* The mmap's syscall-exit stop; 1 when it was one. */
static int staging_mapped(int tid, sn_regs *r)
{
	int i = tid_find(mapping, sizeof mapping[0], MAPPING_TABLE, tid);
	if (i < 0) return 0;
	sn_regs saved = mapping[i].saved;
	mapping[i].tid = -1;
	if (r->rax == staging_base) sn_slot_now_mapped(tid);
	else sn_set_slot(tid, 0);
	saved.rip -= 2;                     /* back onto the syscall instruction */
	saved.rax = saved.orig_rax;
	ptrace(PTRACE_SETREGS, tid, 0, &saved);
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

static void mapping_gone(int tid)
{
	int i = tid_find(mapping, sizeof mapping[0], MAPPING_TABLE, tid);
	if (i >= 0) mapping[i].tid = -1;
}

/* Fairness.  waitpid(-1) finds the newest tracee's stop first (the kernel
 * lists tracees newest first), so under a storm of new tasks (a fork bomb
 * against --pids-limit) an older task's stop could wait for ever: a shell's
 * `sleep` never ran.  Every DRAIN_EVERY stops, every stop already pending is
 * taken at once and they are served in turn before waitpid is asked again;
 * this costs one waitpid(WNOHANG) per DRAIN_EVERY stops when nothing is. */
#define DRAIN_EVERY 16
#define QUEUE_MAX 16384
static struct { pid_t tid; int status; } queue[QUEUE_MAX];
static int q_head, q_len;
static unsigned since_drain;

static pid_t next_stop(int *status)
{
	if (q_len) {
		pid_t tid = queue[q_head].tid;
		*status = queue[q_head].status;
		q_head = (q_head + 1) % QUEUE_MAX;
		q_len--;
		return tid;
	}
	pid_t tid = waitpid(-1, status, __WALL);
	if (tid > 0 && ++since_drain >= DRAIN_EVERY) {
		since_drain = 0;
		while (q_len < QUEUE_MAX) {
			int st;
			pid_t t = waitpid(-1, &st, __WALL | WNOHANG);
			if (t <= 0) break;
			int at = (q_head + q_len) % QUEUE_MAX;
			queue[at].tid = t;
			queue[at].status = st;
			q_len++;
		}
	}
	return tid;
}

/* A stop of `tid` taken from the kernel but not served yet (the Sentry
 * waits for one task alone, Kernel._collect): its wait status, or -1. */
int sn_take_queued(int tid)
{
	for (int i = 0; i < q_len; i++) {
		int at = (q_head + i) % QUEUE_MAX;
		if (queue[at].tid != tid) continue;
		int status = queue[at].status;
		for (int j = i; j + 1 < q_len; j++)
			queue[(q_head + j) % QUEUE_MAX] = queue[(q_head + j + 1) % QUEUE_MAX];
		q_len--;
		return status;
	}
	return -1;
}

static int wait_stop(sn_event *ev);

/* The next stop Python must see.  Whatever Python did since the last one,
 * or will do for this one, may have changed a directory's mode, owner or
 * name: the fast path's memo of directories the guest's host process may
 * search is forgotten on both sides (native/resolve.c). */
int sn_wait(sn_event *ev)
{
	sn_host_forget();
	int r = wait_stop(ev);
	sn_host_forget();
	return r;
}

static int wait_stop(sn_event *ev)
{
	for (;;) {
		int status;
		pid_t tid = next_stop(&status);
		if (tid < 0) {
			if (errno == EINTR) return -EINTR;
			return -errno;
		}
		memset(ev, 0, sizeof *ev);
		ev->tid = tid;
		ev->status = status;
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			sn_ident_gone(tid);
			mapping_gone(tid);
		}
		if (WIFEXITED(status)) { ev->kind = SN_EXITED; ev->code = WEXITSTATUS(status); return 0; }
		if (WIFSIGNALED(status)) { ev->kind = SN_SIGNALED; ev->code = WTERMSIG(status); return 0; }
		if (!WIFSTOPPED(status)) continue;
		int sig = WSTOPSIG(status);
		int event = (unsigned)status >> 16;
		ev->sig = sig;
		if (sig == (SIGTRAP | 0x80)) {
			ev->kind = SN_SYSCALL_EXIT;
			if (sn_getregs(tid, &ev->regs)) { ev->kind = SN_GONE; return 0; }
			if (staging_mapped(tid, &ev->regs) || sn_ident_exit(tid, &ev->regs)) continue;
			counters.python_exit_stops++;
			return 0;
		}
		if (event == PTRACE_EVENT_SECCOMP) {
			counters.seccomp_stops++;
			if (sn_getregs(tid, &ev->regs)) { ev->kind = SN_GONE; return 0; }
			if (ev->regs.orig_rax < SN_MAX_SYSCALL) traps_by_nr[ev->regs.orig_rax]++;
			sn_take_slot_missing();
			if (fast_seccomp(tid, &ev->regs)) continue;
			int missing = sn_take_slot_missing();
			if (missing == SN_SLOT_UNMAPPED && map_staging(tid, &ev->regs)) {
				counters.staging_in_c++;
				continue;
			}
			if (ev->regs.orig_rax < SN_MAX_SYSCALL) python_by_nr[ev->regs.orig_rax]++;
			ev->kind = SN_SECCOMP;
			if (missing) {
				ev->code = SN_STAGING_FIRST;
				counters.staging_first++;
			}
			return 0;
		}
		if (event) {
			unsigned long msg = 0;
			ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
			ev->msg = msg;
			switch (event) {
			case PTRACE_EVENT_FORK: case PTRACE_EVENT_VFORK: case PTRACE_EVENT_CLONE:
				/* the clone flags and the SETTID addresses are in the registers */
				ev->kind = event == PTRACE_EVENT_FORK ? SN_FORK
					: event == PTRACE_EVENT_VFORK ? SN_VFORK : SN_CLONE;
				if (sn_getregs(tid, &ev->regs)) ev->kind = SN_GONE;
				break;
			case PTRACE_EVENT_EXEC: ev->kind = SN_EXEC; break;
			case PTRACE_EVENT_EXIT:
				/* nothing to decide: the task is on its way out */
				ptrace(PTRACE_CONT, tid, 0, 0);
				continue;
			case PTRACE_EVENT_VFORK_DONE: ev->kind = SN_VFORK_DONE; break;
			case PTRACE_EVENT_STOP:
				/* group-stop (job control) or the first stop of a new or
				 * interrupted task */
				ev->kind = (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
					? SN_GROUP_STOP : SN_NEW_STOP;
				if (ev->kind == SN_NEW_STOP && sn_ident_first_stop(tid)) {
					counters.c_other_stops++;
					continue;
				}
				break;
			default: ev->kind = SN_OTHER_EVENT; break;
			}
			counters.python_other_stops++;
			return 0;
		}
		if (sig == SIGCHLD && sn_ident_sigchld(tid)) {
			counters.c_other_stops++;
			continue;
		}
		ev->kind = SN_SIGNAL;
		counters.python_other_stops++;
		return 0;
	}
}

long sn_read_mem(int tid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
	return n < 0 ? -errno : n;
}

/* Reads a NUL-terminated string of at most max bytes (NUL included).
 * Returns its length without the NUL, -ENAMETOOLONG when none is found
 * within max, or -EFAULT. Reads page by page so that a string ending just
 * before an unmapped page is still read. */
long sn_read_string(int tid, uint64_t addr, char *buf, size_t max)
{
	size_t got = 0;
	while (got < max) {
		size_t chunk = 4096 - ((addr + got) & 4095);
		if (chunk > max - got) chunk = max - got;
		long n = sn_read_mem(tid, addr + got, buf + got, chunk);
		if (n <= 0) return -EFAULT;
		char *nul = memchr(buf + got, 0, n);
		if (nul) return nul - buf;
		got += n;
	}
	return -ENAMETOOLONG;
}

/* Writes through /proc/<tid>/mem, which overrides page protections: the
 * staging area is read-only to the guest. */
long sn_write_mem(int memfd, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(memfd, buf, len, (off_t)addr);
	return n < 0 ? -errno : n;
}

long sn_write_vm(int tid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_writev(tid, &local, 1, &remote, 1, 0);
	return n < 0 ? -errno : n;
}

/* openat2(2) for the Sentry's own confined lookups (no libc wrapper yet). */
int sn_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
	struct { uint64_t flags, mode, resolve; } how = { flags, mode, resolve };
	long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	return r < 0 ? -errno : (int)r;
}

/* Raw kernel structs for the Sentry's emulated stat family: the guest gets
 * exactly the bytes the kernel would have written. */
long sn_fstatat(int dirfd, const char *name, int flags, void *buf144)
{
	if (syscall(SYS_newfstatat, dirfd, name, buf144, flags)) return -errno;
	sn_map_stat_ids(buf144);
	return 0;
}

long sn_statx(int dirfd, const char *name, int flags, unsigned mask, void *buf256)
{
	if (syscall(SYS_statx, dirfd, name, flags, mask, buf256)) return -errno;
	sn_map_statx_ids(buf256);
	return 0;
}

long sn_fstatfs(int fd, void *buf120)
{
	return syscall(SYS_fstatfs, fd, buf120) ? -errno : 0;
}

long sn_renameat2(int olddir, const char *old, int newdir, const char *new_, unsigned flags)
{
	return syscall(SYS_renameat2, olddir, old, newdir, new_, flags) ? -errno : 0;
}

long sn_utimensat(int dirfd, const char *name, const void *times, int flags)
{
	return syscall(SYS_utimensat, dirfd, name, times, flags) ? -errno : 0;
}

long sn_fchownat(int dirfd, const char *name, unsigned uid, unsigned gid, int flags)
{
	return syscall(SYS_fchownat, dirfd, name, uid, gid, flags) ? -errno : 0;
}

long sn_pidfd_getfd(int pidfd, int fd)
{
	long r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	return r < 0 ? -errno : r;
}
