/*
 * The path fast path: the commonest path lookups answered without Python.
 *
 * A call is taken here only when its meaning is plain: an absolute path with
 * no ".", ".." or empty component, on a mount that is a plain host directory.
 * One confined lookup (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS under
 * the mount's root) then either finds the file -- there was no symlink to
 * resolve, so the Sentry's own walk would reach the same place -- or fails
 * with ENOENT/ENOTDIR at a component that the walk would meet too.  Anything
 * else (a symlink, another error, a relative path, a staging slot not yet
 * assigned) returns 0 and goes to Python, which knows every case.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer.h"

#define PATH_MAX_ 4096
#define O_PATH_ 010000000
#define O_TMPFILE_ (020000000 | O_DIRECTORY)
#define VALID_OPEN_FLAGS (037777777 | O_PATH_)
#define O_PATH_FLAGS (O_PATH_ | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define RESOLVE_CONFINED (0x08 | 0x04)      /* RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS */
#define AT_SYMLINK_NOFOLLOW_ 0x100
#define AT_EMPTY_PATH_ 0x1000
#define AT_NO_AUTOMOUNT_ 0x800

struct mount {
	char path[256];
	size_t len;
	int fd;          /* O_PATH fd of the host root, in the Sentry */
	int guest_fd;    /* the same, hidden in every guest */
	int readonly;
	int fast;        /* a plain host directory: served here */
};

static struct mount mounts[SN_MAX_MOUNTS];
static int nmounts;
static int enabled;

/* tid -> staging slot address, kept by Python (staging.Slots) */
#define SLOT_TABLE 16384
static struct { int tid; uint64_t addr; } slot_table[SLOT_TABLE];

void sn_fast_enable(int on) { enabled = on; }

int sn_add_mount(const char *path, int fd, int guest_fd, int readonly, int fast)
{
	if (nmounts >= SN_MAX_MOUNTS || strlen(path) >= sizeof mounts[0].path) return -1;
	struct mount *m = &mounts[nmounts++];
	strcpy(m->path, path);
	m->len = strlen(path);
	m->fd = fd;
	m->guest_fd = guest_fd;
	m->readonly = readonly;
	m->fast = fast;
	return 0;
}

void sn_set_slot(int tid, uint64_t addr)
{
	unsigned h = (unsigned)tid % SLOT_TABLE;
	for (unsigned i = 0; i < SLOT_TABLE; i++, h = (h + 1) % SLOT_TABLE) {
		if (slot_table[h].tid == tid || (addr && slot_table[h].tid <= 0)) {
			if (addr) { slot_table[h].tid = tid; slot_table[h].addr = addr; }
			else slot_table[h].tid = -1;      /* tombstone */
			return;
		}
		if (slot_table[h].tid == 0) return;
	}
}

static uint64_t slot_of(int tid)
{
	unsigned h = (unsigned)tid % SLOT_TABLE;
	for (unsigned i = 0; i < SLOT_TABLE; i++, h = (h + 1) % SLOT_TABLE) {
		if (slot_table[h].tid == tid) return slot_table[h].addr;
		if (slot_table[h].tid == 0) return 0;
	}
	return 0;
}

/* The mount at the longest prefix of a plain absolute path, and the path
 * relative to its root; NULL when the path is not plain or the mount is not
 * one the fast path serves. */
static struct mount *locate(const char *path, const char **rel)
{
	if (path[0] != '/') return NULL;
	for (const char *p = path; *p; ) {
		/* every component non-empty, and neither "." nor ".." */
		const char *c = p + 1;
		const char *e = strchrnul(c, '/');
		size_t n = e - c;
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return NULL;
		p = e;
	}
	struct mount *best = NULL;
	for (int i = 0; i < nmounts; i++) {
		struct mount *m = &mounts[i];
		if (m->len == 1 ? 1 : (!strncmp(path, m->path, m->len) && (path[m->len] == '/' || !path[m->len])))
			if (!best || m->len > best->len) best = m;
	}
	if (!best || !best->fast) return NULL;     /* /dev and the like: Python */
	*rel = path + (best->len == 1 ? 1 : best->len + 1);
	return **rel ? best : NULL;        /* a mount's root itself: Python */
}

static int confined_open(struct mount *m, const char *rel, uint64_t flags)
{
	struct { uint64_t flags, mode, resolve; } how = { flags, 0, RESOLVE_CONFINED };
	long r = syscall(SYS_openat2, m->fd, rel, &how, sizeof how);
	return r < 0 ? -errno : (int)r;
}

static void answer(int tid, sn_regs *r, long value)
{
	r->orig_rax = (uint64_t)-1;
	r->rax = (uint64_t)value;
	ptrace(PTRACE_SETREGS, tid, 0, r);
	ptrace(PTRACE_CONT, tid, 0, 0);
}

static int write_guest(int tid, uint64_t addr, const void *buf, size_t len)
{
	return sn_write_vm(tid, addr, buf, len) == (long)len;
}

static int stage(int tid, uint64_t addr, const void *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", tid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	long n = sn_write_mem(fd, addr, buf, len);
	close(fd);
	return n == (long)len;
}

enum { STAT, LSTAT, FSTATAT, STATX, ACCESS, FACCESSAT, FACCESSAT2, OPEN, OPENAT, EXECVE };

static int kind_of(uint64_t nr)
{
	switch (nr) {
	case SYS_stat: return STAT;
	case SYS_lstat: return LSTAT;
	case SYS_newfstatat: return FSTATAT;
	case SYS_statx: return STATX;
	case SYS_access: return ACCESS;
	case SYS_faccessat: return FACCESSAT;
	case SYS_faccessat2: return FACCESSAT2;
	case SYS_open: return OPEN;
	case SYS_openat: return OPENAT;
	case SYS_execve: return EXECVE;
	}
	return -1;
}

/* Returns 1 when the seccomp stop was answered here. */
int sn_fast_path(int tid, sn_regs *r)
{
	if (!enabled) return 0;
	int kind = kind_of(r->orig_rax);
	if (kind < 0) return 0;
	uint64_t path_addr;
	int follow = 1;
	uint64_t flags = 0;
	switch (kind) {
	case STAT: case ACCESS: case OPEN: case EXECVE:
		path_addr = r->rdi; break;
	case LSTAT:
		path_addr = r->rdi; follow = 0; break;
	case FSTATAT:
		path_addr = r->rsi;
		if ((uint32_t)r->r10 & ~(AT_SYMLINK_NOFOLLOW_ | AT_NO_AUTOMOUNT_ | 0x6000)) return 0;
		follow = !((uint32_t)r->r10 & AT_SYMLINK_NOFOLLOW_);
		break;
	case STATX:
		path_addr = r->rsi;
		if ((uint32_t)r->rdx & ~(AT_SYMLINK_NOFOLLOW_ | AT_NO_AUTOMOUNT_ | 0x6000)) return 0;
		follow = !((uint32_t)r->rdx & AT_SYMLINK_NOFOLLOW_);
		break;
	case FACCESSAT:
		path_addr = r->rsi; break;
	case FACCESSAT2:
		path_addr = r->rsi;
		if ((uint32_t)r->r10) return 0;
		break;
	case OPENAT:
		path_addr = r->rsi; flags = (uint32_t)r->rdx; break;
	default:
		return 0;
	}
	if (kind == OPEN) flags = (uint32_t)r->rsi;
	if (kind == OPEN || kind == OPENAT) {
		if (flags & (O_CREAT | O_TMPFILE_)) return 0;
		follow = !(flags & O_NOFOLLOW);
	}

	char path[PATH_MAX_];
	long n = sn_read_string(tid, path_addr, path, sizeof path);
	if (n <= 0) return 0;
	const char *rel;
	struct mount *m = locate(path, &rel);
	if (!m) return 0;

	int fd = confined_open(m, rel, O_PATH_ | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ENOTDIR) {
			answer(tid, r, fd);
			return 1;
		}
		return 0;
	}
	int handled = 0;
	struct stat st;
	if (fstat(fd, &st)) goto out;
	if (S_ISLNK(st.st_mode) && follow) goto out;    /* a symlink to resolve: Python */

	switch (kind) {
	case STAT: case LSTAT: case FSTATAT: {
		char raw[144];
		if (syscall(SYS_fstat, fd, raw)) goto out;
		uint64_t buf = kind == FSTATAT ? r->rdx : r->rsi;
		answer(tid, r, write_guest(tid, buf, raw, sizeof raw) ? 0 : -EFAULT);
		handled = 1;
		break;
	}
	case STATX: {
		char raw[256];
		if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH_ | ((uint32_t)r->rdx & 0x6000),
			    (uint32_t)r->r10, raw)) goto out;
		answer(tid, r, write_guest(tid, r->r8, raw, sizeof raw) ? 0 : -EFAULT);
		handled = 1;
		break;
	}
	case ACCESS: case FACCESSAT: case FACCESSAT2: {
		uint32_t mode = kind == ACCESS ? (uint32_t)r->rsi : (uint32_t)r->rdx;
		if (mode & ~7u) goto out;
		long v = 0;
		if ((mode & W_OK) && m->readonly) v = -EROFS;
		else if ((mode & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111)) v = -EACCES;
		answer(tid, r, v);
		handled = 1;
		break;
	}
	case OPEN: case OPENAT: {
		if (S_ISLNK(st.st_mode) && !(flags & O_PATH_)) { answer(tid, r, -ELOOP); handled = 1; break; }
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && m->readonly) {
			answer(tid, r, -EROFS); handled = 1; break;
		}
		uint64_t slot = slot_of(tid);
		if (!slot) goto out;
		flags &= VALID_OPEN_FLAGS;
		if (flags & O_PATH_) flags &= O_PATH_FLAGS;
		else flags |= O_LARGEFILE;
		char blob[PATH_MAX_ + 32];
		size_t len = strlen(rel) + 1, at = (len + 7) & ~7UL;
		memcpy(blob, rel, len);
		memset(blob + len, 0, at - len);
		uint64_t how[3] = { flags, 0, RESOLVE_CONFINED };
		memcpy(blob + at, how, sizeof how);
		if (at + sizeof how > 8192 || !stage(tid, slot, blob, at + sizeof how)) goto out;
		r->orig_rax = SYS_openat2;
		r->rdi = m->guest_fd;
		r->rsi = slot;
		r->rdx = slot + at;
		r->r10 = sizeof how;
		ptrace(PTRACE_SETREGS, tid, 0, r);
		ptrace(PTRACE_CONT, tid, 0, 0);
		handled = 1;
		break;
	}
	case EXECVE:
		break;      /* found: the loader (#!, PT_INTERP) is Python's */
	}
out:
	close(fd);
	return handled;
}
