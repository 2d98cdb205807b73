/*
 * The path fast path: the commonest path lookups answered without Python.
 *
 * The path is resolved by the one walk (native/resolve.c), the same that
 * Python's lookups use.  A call is answered here when the walk needed no
 * Python (no /proc, /sys, hidden stand-in or /dev/pts on the way) and what it
 * found needs no Python either: a file of a host directory, an overlay file
 * that need not be copied up first (changes, and directories of the lower
 * layer, which Python copies up before the guest sees them, go to Python),
 * an allowed node of /dev; and an open that creates a file, a mkdir, a
 * link, a symlink, a rename of a file, an unlink or rmdir, where nothing
 * need be prepared for it (create_open, make_dir, link_name, make_symlink,
 * rename_name, remove_name); a readlink (read_link) and getcwd (get_cwd).
 * Anything else returns 0 and goes to Python.
 * fchmod, fchown and futimens on a guest fd are answered here too, on the
 * Sentry's duplicate of the fd (below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tracer.h"
#include "tidtable.h"
#include "resolve.h"

#define PATH_MAX_ 4096
#define O_PATH_ 010000000
#define O_TMPFILE_ (020000000 | O_DIRECTORY)
#define VALID_OPEN_FLAGS (037777777 | O_PATH_)
#define O_PATH_FLAGS (O_PATH_ | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define RESOLVE_CONFINED (0x08 | 0x04)      /* RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS */
#define AT_SYMLINK_NOFOLLOW_ 0x100
#define AT_EMPTY_PATH_ 0x1000
#define AT_EACCESS_ 0x200
#define AT_NO_AUTOMOUNT_ 0x800

extern struct sn_table *sn_current;
static int enabled;

/* tid -> staging slot address, kept by Python (staging.Slots), and the
 * task's /proc/<tid>/mem, opened on first use and closed with the slot (an
 * exec replaces the address space the fd refers to). */
#define SLOT_TABLE 16384
/* unmapped: the slot is the thread's, but its address space has no staging
 * area yet (a new image: kernel/exec.py); C maps it at the first call that
 * needs it (tracer.c map_staging) */
static struct { int tid; uint64_t addr; int memfd; int unmapped; } slot_table[SLOT_TABLE];

void sn_fast_enable(int on) { enabled = on; }
int sn_fast_enabled(void) { return enabled; }

/* The table as sentry/platform/seccomp.py states it: the entries are
 * sentry/vfs/mount.py's already (MountTable registers them as it builds),
 * so this only checks that it names the same ones; -1 for one unknown (a
 * second registration would put the walk's entries out of step with
 * Python's). */
int sn_add_mount(const char *path, const char *host_root, int fd, int guest_fd, int readonly, int kind)
{
	struct sn_table *t = sn_current;
	if (!t) return -1;
	for (int i = 0; i < t->n; i++)
		if (t->m[i].fd == fd && !strcmp(t->m[i].path, path)) {
			t->m[i].guest_fd = guest_fd;
			return 0;
		}
	(void)host_root; (void)readonly; (void)kind;
	return -1;
}

void sn_set_dev_nodes(const char *names)
{
	if (sn_current) snprintf(sn_current->fast_dev_names, sizeof sn_current->fast_dev_names, " %s ", names);
}

int sn_add_link(const char *from, const char *to) { return sn_current ? sn_table_add_link(sn_current, from, to) : -1; }
void sn_clear_links(void) { if (sn_current) sn_table_clear_links(sn_current); }
void sn_overlay_changed(void) { if (sn_current) sn_table_overlay_changed(sn_current); }

static int slot_index(int tid)
{
	return tid_find(slot_table, sizeof slot_table[0], SLOT_TABLE, tid);
}

void sn_set_slot(int tid, uint64_t addr)
{
	int i = slot_index(tid);
	if (i >= 0) {                          /* drop the old entry and its fd */
		if (slot_table[i].memfd > 0) close(slot_table[i].memfd);
		slot_table[i].tid = -1;            /* tombstone */
		slot_table[i].memfd = 0;
	}
	if (!addr) return;
	i = tid_claim(slot_table, sizeof slot_table[0], SLOT_TABLE, tid);
	if (i >= 0) {
		slot_table[i].addr = addr;
		slot_table[i].memfd = 0;
		slot_table[i].unmapped = 0;
	}
}

void sn_set_slot_unmapped(int tid, uint64_t addr)
{
	sn_set_slot(tid, addr);
	int i = slot_index(tid);
	if (i >= 0) slot_table[i].unmapped = 1;
}

int sn_slot_ready(int tid)
{
	int i = slot_index(tid);
	return i >= 0 && slot_table[i].addr && !slot_table[i].unmapped;
}

void sn_slot_now_mapped(int tid)
{
	int i = slot_index(tid);
	if (i >= 0) slot_table[i].unmapped = 0;
}

/* Set when a fast path found everything but the slot to stage in: the
 * thread's address space has had no staging area since its exec.  The
 * area is mapped before anything else, and the call, run again, comes back
 * here: its handler would only have walked the same path to find that it
 * needs the slot too.  SN_SLOT_UNMAPPED: the thread has its slot, and C
 * maps the area (tracer.c); SN_SLOT_NONE: Python does (Kernel.dispatch). */
static int slot_missing;

static uint64_t slot_of(int tid)
{
	int i = slot_index(tid);
	uint64_t addr = i >= 0 ? slot_table[i].addr : 0;
	if (addr && slot_table[i].unmapped) {
		slot_missing = SN_SLOT_UNMAPPED;
		return 0;
	}
	if (!addr) slot_missing = SN_SLOT_NONE;
	return addr;
}

uint64_t sn_slot_of(int tid) { return slot_of(tid); }

int sn_take_slot_missing(void)
{
	int missing = slot_missing;
	slot_missing = 0;
	return missing;
}

/* The sandbox path of the directory a relative path starts from (the
 * guest's cwd or dirfd, named by the kernel by host path); -1: Python's. */
static int start_dir(int tid, int dirfd, const char *path, char *out, size_t size)
{
	if (path[0] == '/') { strcpy(out, "/"); return 0; }
	char link[64], host[PATH_MAX_];
	if (dirfd == -100) snprintf(link, sizeof link, "/proc/%d/cwd", tid);
	else if (dirfd >= SN_HIDDEN_FD_BASE && dirfd < SN_HIDDEN_FD_BASE + SN_MAX_MOUNTS) return -1;
	else if (dirfd >= 0) snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
	else return -1;
	struct stat st;
	if (dirfd != -100 && (stat(link, &st) || !S_ISDIR(st.st_mode))) return -1;   /* ENOTDIR: Python's */
	ssize_t n = readlink(link, host, sizeof host - 1);
	if (n <= 0 || host[0] != '/') return -1;      /* pipes, sockets: Python */
	host[n] = 0;
	if (n > 10 && !strcmp(host + n - 10, " (deleted)")) return -1;
	return sn_host_to_sandbox(sn_current, host, out, size) < 0 ? -1 : 0;
}

#define DECLINE (-100000)      /* not plain: Python */
#define ABSENT (-100001)       /* the last name is not there, its parent is */

static struct sn_walk walk;    /* the tracer is one thread */

/* Resolve path from start as the walk does: an O_PATH fd on what it names
 * and *m the entry holding it, -errno, or DECLINE (Python's: something
 * Python serves, or an overlay directory not yet copied up).  With
 * must_exist 0, a last name that is not there (its parent is) is ABSENT,
 * *m the entry it would be made in and walk.rel its path there. */
static int lookup_as(const char *start, const char *path, int follow, int must_exist, int identity,
		     struct sn_mount **m);

static int fast_lookup(const char *start, const char *path, int follow, int must_exist, struct sn_mount **m)
{
	return lookup_as(start, path, follow, must_exist, 1, m);
}

/* identity 0: the call gives the guest nothing of the file's identity (no
 * stat, no fd: readlink), so a directory of an overlay's lower layer need
 * not be copied up first (lookup()'s expose, which only identity asks for) */
static int lookup_as(const char *start, const char *path, int follow, int must_exist, int identity,
		     struct sn_mount **m)
{
	struct sn_table *t = sn_current;
	if (!t) return DECLINE;
	sn_walk_init(&walk, start, path, (follow ? SN_WALK_FOLLOW : 0) | (must_exist ? SN_WALK_MUST_EXIST : 0)
		     | SN_WALK_RECORD, 0);
	int r = sn_walk(t, &walk);
	if (r < 0) return r;
	if (r != SN_WALK_DONE || walk.python) return DECLINE;
	*m = &t->m[walk.index];
	if (!walk.exists) return ABSENT;
	if (walk.fd < 0) return DECLINE;
	const struct stat *st = (const struct stat *)walk.st;
	int plain = (*m)->fast
		&& !(identity && (*m)->kind == SN_MOUNT_LOWER && S_ISDIR(st->st_mode))
		&& !((*m)->kind == SN_MOUNT_DEV && strcmp(walk.rel, ".") && !sn_dev_name_in(t->fast_dev_names, walk.rel));
	if (!plain) {
		close(walk.fd);
		return DECLINE;
	}
	return walk.fd;
}

/* The fast path's answer for a path, without a guest (tests/test_resolver_diff.py):
 * 0 and *index (of the table's entries), rel and the file's lstat when it
 * would answer with a file; -errno when it would answer an error; 1 when it
 * would send the call to Python. */
int sn_fast_resolve(const char *start, const char *path, int follow, int *index, char *rel_out, size_t size, void *st144)
{
	struct sn_mount *m;
	int fd = fast_lookup(start, path, follow, 1, &m);
	if (fd == DECLINE) return 1;
	if (fd < 0) return fd == -ENOENT || fd == -ENOTDIR ? fd : 1;
	int r = 1;
	if (strlen(walk.rel) < size) {
		*index = (int)(m - sn_current->m);
		strcpy(rel_out, walk.rel);
		memcpy(st144, walk.st, 144);
		r = 0;
	}
	close(fd);
	return r;
}

/* A name that must be there, relative to dirfd, for a call that acts on
 * it: fast_lookup's fd (the caller's to close) and *m, or -1 -- *answered 1
 * when the walk's ENOENT or ENOTDIR was the call's answer, 0 when the call
 * is Python's. */
static int lookup_existing(int tid, sn_regs *r, int dirfd, const char *path, int follow,
			   struct sn_mount **m, int *answered)
{
	char start[PATH_MAX_];
	*answered = 0;
	if (start_dir(tid, dirfd, path, start, sizeof start)) return -1;
	int fd = fast_lookup(start, path, follow, 1, m);
	if (fd >= 0) return fd;
	if (fd == -ENOENT || fd == -ENOTDIR) {
		sn_answer(tid, r, fd);
		*answered = 1;
	}
	return -1;
}

static int write_guest(int tid, uint64_t addr, const void *buf, size_t len)
{
	return sn_write_vm(tid, addr, buf, len) == (long)len;
}

/* Write into a task's staging slot through /proc/<tid>/mem, which
 * overrides the page's read-only protection.  0 or -errno. */
long sn_stage(int tid, uint64_t addr, const void *buf, size_t len)
{
	int i = slot_index(tid);
	int fd = i >= 0 ? slot_table[i].memfd : 0;
	if (fd <= 0) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/mem", tid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) return -errno;
		if (i >= 0) slot_table[i].memfd = fd;
	}
	long n = sn_write_mem(fd, addr, buf, len);
	if (i < 0) close(fd);
	return n == (long)len ? 0 : (n < 0 ? n : -EFAULT);
}

static int stage(int tid, uint64_t addr, const void *buf, size_t len)
{
	return sn_stage(tid, addr, buf, len) == 0;
}

enum { STAT, LSTAT, FSTATAT, STATX, ACCESS, FACCESSAT, FACCESSAT2, OPEN, OPENAT, CREAT, EXECVE, STATFS };

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
	case SYS_creat: return CREAT;
	case SYS_execve: return EXECVE;
	case SYS_statfs: return STATFS;
	}
	return -1;
}

/* ---- attribute changes ------------------------------------------------------
 *
 * On a guest fd: fchmod(fd, mode), fchown(fd, uid, gid) and futimens
 * (utimensat(fd, NULL, times, 0)), as syscalls/fdutil.py's chmod_fd and
 * chown_fd and syscalls/path.py's _utimens_fd do them, on the Sentry's own
 * duplicate of the guest's fd (pidfd_getfd), never on the number again
 * (another thread may dup2 a host file onto it meanwhile).  On a path:
 * chmod, fchmodat, chown, lchown, fchownat, utimensat, as _on_final does
 * them, on the walk's fd on the last name.  Only for a file of a writable
 * host directory the fast path serves (a bind, a tmpfs, an overlay's upper
 * layer: for an fd, MountTable.backing_of's answer, the same
 * sn_host_to_sandbox), and only for a task that holds CAP_FOWNER, for which
 * Python's owner checks (check_chmod, check_times) always pass (the caller
 * declined a task that checks files), and for a chown one that holds
 * CAP_CHOWN (Credentials.chown_ids then only maps the ids).  Anything else
 * -- a hidden fd number, an O_PATH fd (EBADF), a deleted file, a file
 * outside every mount (EPERM), an overlay's lower layer or a read-only mount
 * (EROFS), a node of /dev, a hidden path's stand-in, unreadable times
 * (EFAULT) -- is Python's. */

#define PIDFD_THREAD_ O_EXCL

/* A file whose attributes change here with nothing prepared first: of a
 * writable host directory the fast path serves (a bind, a tmpfs) or of an
 * overlay's upper layer (MountTable.backing_of's plain answers). */
static int writable_backing(const struct sn_mount *m)
{
	return m->fast && !m->readonly && (m->kind == SN_MOUNT_DIR || m->kind == SN_MOUNT_UPPER);
}

/* The Sentry's duplicate of guest fd `fd` of task tid, when its file is in
 * a plain writable backing of the table; -1: Python's. */
static int borrow_plain(int tid, int fd)
{
	struct sn_table *t = sn_current;
	if (!t || fd < 0 || (fd >= SN_HIDDEN_FD_BASE && fd < SN_HIDDEN_FD_BASE + SN_MAX_MOUNTS)) return -1;
	/* the calling thread's own fd table (a thread may have unshared it) */
	int pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD_);
	if (pidfd < 0) return -1;
	int dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (dup < 0) return -1;
	char link[64], host[PATH_MAX_];
	snprintf(link, sizeof link, "/proc/self/fd/%d", dup);
	ssize_t n = readlink(link, host, sizeof host - 1);
	int flags = fcntl(dup, F_GETFL);
	if (n <= 0 || host[0] != '/' || flags < 0 || (flags & O_PATH_)) goto decline;
	host[n] = 0;
	if (n > 10 && !strcmp(host + n - 10, " (deleted)")) goto decline;
	int i = sn_host_to_sandbox(t, host, NULL, 0);
	if (i < 0) goto decline;
	if (!writable_backing(&t->m[i])) goto decline;
	return dup;
decline:
	close(dup);
	return -1;
}

enum { ATTR_MODE, ATTR_OWNER, ATTR_TIMES };

/* The change itself, on fd: the Sentry's own (a duplicate of the guest's
 * fd, or the walk's O_PATH|O_NOFOLLOW fd on a path's last name, which is
 * what Python's open_final gives), never a name looked up again. */
static long change_attrs(int fd, int what, uint32_t a, uint32_t b, const char *times)
{
	if (what == ATTR_TIMES) return sn_utimensat(fd, "", times, AT_EMPTY_PATH_);
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	long v = what == ATTR_MODE ? (syscall(SYS_chmod, p, (mode_t)(a & 07777)) ? -errno : 0)
		: sn_fchownat(fd, "", a, b, AT_EMPTY_PATH_ | AT_SYMLINK_NOFOLLOW_);
	/* a directory's mode or owner: the memo of searchable directories is stale */
	sn_host_forget();
	return v;
}

static int is_attr_call(uint64_t nr)
{
	return nr == SYS_fchmod || nr == SYS_fchown || nr == SYS_utimensat || nr == SYS_chmod || nr == SYS_fchmodat
		|| nr == SYS_chown || nr == SYS_lchown || nr == SYS_fchownat;
}

/* The calls above.  Declined besides: a mode with S_ISGID (chmod_mode
 * keeps it only for a group member or CAP_FSETID), ids the sandbox does not
 * map (EINVAL) or a task without CAP_CHOWN, unreadable times (EFAULT),
 * flags but AT_SYMLINK_NOFOLLOW (AT_EMPTY_PATH, EINVAL), an empty path, a
 * chmod of a symlink (EOPNOTSUPP), a file not of a writable backing (EROFS,
 * a lower file to copy up first, a hidden stand-in, /dev). */
static int attrs(int tid, sn_regs *r)
{
	int what, fd_form = 0, dirfd = -100, follow = 1;
	uint64_t path_addr = 0, times_addr = 0;
	uint32_t a = 0, b = 0, flags = 0;
	switch (r->orig_rax) {
	case SYS_fchmod:
		fd_form = 1; dirfd = (int)r->rdi; a = (uint32_t)r->rsi; what = ATTR_MODE; break;
	case SYS_chmod:
		path_addr = r->rdi; a = (uint32_t)r->rsi; what = ATTR_MODE; break;
	case SYS_fchmodat:
		dirfd = (int)r->rdi; path_addr = r->rsi; a = (uint32_t)r->rdx; what = ATTR_MODE; break;
	case SYS_fchown:
		fd_form = 1; dirfd = (int)r->rdi; a = (uint32_t)r->rsi; b = (uint32_t)r->rdx; what = ATTR_OWNER; break;
	case SYS_chown: case SYS_lchown:
		path_addr = r->rdi; a = (uint32_t)r->rsi; b = (uint32_t)r->rdx; what = ATTR_OWNER;
		follow = r->orig_rax == SYS_chown;
		break;
	case SYS_fchownat:
		dirfd = (int)r->rdi; path_addr = r->rsi; a = (uint32_t)r->rdx; b = (uint32_t)r->r10; what = ATTR_OWNER;
		flags = (uint32_t)r->r8;
		break;
	default:        /* utimensat */
		dirfd = (int)r->rdi; path_addr = r->rsi; times_addr = r->rdx; what = ATTR_TIMES;
		flags = (uint32_t)r->r10;
		if (!path_addr) {
			if (flags || dirfd == -100) return 0;
			fd_form = 1;
		}
	}
	if (flags & ~AT_SYMLINK_NOFOLLOW_) return 0;
	if (flags) follow = 0;
	if (what == ATTR_MODE && (a & S_ISGID)) return 0;
	if (what == ATTR_OWNER) {
		/* chown_ids: CAP_CHOWN takes any ids the sandbox maps */
		if (!sn_ident_chown_any(tid)) return 0;
		long uid = sn_idmap_host(0, a), gid = sn_idmap_host(1, b);
		if (uid < 0 || gid < 0) return 0;
		a = (uint32_t)uid;
		b = (uint32_t)gid;
	}
	char times[32];
	if (times_addr && sn_read_mem(tid, times_addr, times, sizeof times) != (long)sizeof times) return 0;
	int fd;
	if (fd_form) {
		fd = borrow_plain(tid, dirfd);
		if (fd < 0) return 0;
	} else {
		char given[PATH_MAX_];
		if (sn_read_string(tid, path_addr, given, sizeof given) <= 0) return 0;
		struct sn_mount *m;
		int answered;
		fd = lookup_existing(tid, r, dirfd, given, follow, &m, &answered);
		if (fd < 0) return answered;
		if (!writable_backing(m)) { close(fd); return 0; }
	}
	struct stat st;
	/* a device's stand-in keeps its mark, a socket its ACL (sentry/vfs/
	 * devnodes.py, sockperm.py): Python's chmod_host */
	if (what == ATTR_MODE && (fstat(fd, &st) || S_ISLNK(st.st_mode) || S_ISSOCK(st.st_mode)
				  || (S_ISREG(st.st_mode) && (st.st_mode & S_ISVTX)))) {
		close(fd);
		return 0;
	}
	long v = change_attrs(fd, what, a, b, times_addr ? times : NULL);
	close(fd);
	sn_answer(tid, r, v);
	return 1;
}

/* The guest's open becomes openat2(<m's hidden fd>, rel, {flags, mode,
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS}), path and open_how staged in the
 * thread's read-only slot, run in its own context (syscalls/file.py
 * open_rewrite's Rewrite).  1 done, 0 Python's (no slot mapped yet). */
static int stage_open(int tid, sn_regs *r, const struct sn_mount *m, const char *rel, uint64_t flags, uint64_t mode)
{
	uint64_t slot = slot_of(tid);
	if (!slot) return 0;
	flags &= VALID_OPEN_FLAGS;
	if (flags & O_PATH_) flags &= O_PATH_FLAGS;
	else flags |= O_LARGEFILE;
	char blob[PATH_MAX_ + 32];
	size_t len = strlen(rel) + 1, at = (len + 7) & ~7UL;
	uint64_t how[3] = { flags, mode, RESOLVE_CONFINED };
	if (at + sizeof how > sizeof blob) return 0;
	memcpy(blob, rel, len);
	memset(blob + len, 0, at - len);
	memcpy(blob + at, how, sizeof how);
	if (!stage(tid, slot, blob, at + sizeof how)) return 0;
	r->orig_rax = SYS_openat2;
	r->rdi = m->guest_fd;
	r->rsi = slot;
	r->rdx = slot + at;
	r->r10 = sizeof how;
	ptrace(PTRACE_SETREGS, tid, 0, r);
	ptrace(PTRACE_CONT, tid, 0, 0);
	return 1;
}

/* open(O_CREAT) of a name that is not there, in entry `index` at rel (the
 * walk's answer: a final symlink already followed, unless O_EXCL), as
 * open_rewrite makes it when the new file needs nothing of Python: the
 * caller has declined a task that checks files or whose new files are not
 * the Sentry's uid's (owner.creator, adopted at the syscall exit), O_TMPFILE,
 * O_NOATIME and a final "/".  Declined here: a mount that must prepare the
 * change (a read-only one: EROFS; an overlay directory to copy up first),
 * the S_ISGID that _keeps_setgid may give back, and a parent the guest's
 * host process may not write (the Sentry creates the file and hands it
 * over).  Otherwise the guest's process creates it, confined, as Python
 * would have it do: the kernel applies the guest's umask, its inotify
 * watches and its limits, and O_EXCL if asked. */
static int create_open(int tid, sn_regs *r, int index, const char *rel, uint64_t flags, uint64_t mode)
{
	struct sn_table *t = sn_current;
	if (sn_table_names_in_place(t, index, rel) != index) return 0;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) return 0;
	/* set-user-ID: a CAP_FSETID holder's writes keep it (syscalls/fsetid.py) */
	if (mode & S_ISUID) return 0;
	const struct sn_mount *m = &t->m[index];
	if (!sn_host_may_open(m->fd, rel, flags, 0, 0, 0, 0)) return 0;
	return stage_open(tid, r, m, rel, flags, mode);
}

/* ---- removing a name ----------------------------------------------------------
 *
 * unlink, rmdir and unlinkat, as syscalls/path.py _unlink does them: the
 * walk finds the name (never following a final symlink), the mount must have
 * nothing to prepare (sn_table_names_in_place: a writable bind or tmpfs, or
 * a complete directory of an overlay's upper layer, where a lower file is a
 * placeholder to unlink), and the Sentry removes the one name from its
 * parent, opened confined below that mount's root (Mount.open_parent), so a
 * racing guest can only make it remove another name of the same writable
 * tree, or fail.  Declined: a final "/", "." or "..", a flag but
 * AT_REMOVEDIR (Python's EINVAL and friends), a directory of the lower
 * layer (copied up first, so that rmdir sees what is in it), a mount's
 * root (EBUSY), a read-only mount, /dev, a hidden path's stand-in. */

#define AT_REMOVEDIR_ 0x200

/* Whether the path's last name is "." or "..", or a "/" follows it. */
static int dotted_or_slashed(const char *path, size_t len)
{
	if (!len || path[len - 1] == '/') return 1;
	const char *name = path + len;
	while (name > path && name[-1] != '/') name--;
	return !strcmp(name, ".") || !strcmp(name, "..");
}

/* rel's parent, opened confined below root (Mount.open_parent): its fd and
 * *name the last name in rel; -errno. */
static int open_parent(int root, const char *rel, const char **name)
{
	char parent[PATH_MAX_];
	const char *slash = strrchr(rel, '/');
	if (!slash) {
		*name = rel;
		return sn_openat2(root, ".", O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_CONFINED);
	}
	memcpy(parent, rel, slash - rel);
	parent[slash - rel] = 0;
	*name = slash + 1;
	return sn_openat2(root, parent, O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_CONFINED);
}

enum { NAME_UNLINK, NAME_MKDIR, NAME_SYMLINK };

/* One name of entry at's backing removed (unlinkat's flags in arg), made a
 * directory (its mode in arg) or a symlink to target, in rel's parent opened
 * confined below the backing's root (Mount.open_parent); the overlay is
 * told of the change, as its _changed.  0 or -errno. */
static long on_name(int at, const char *rel, int op, unsigned arg, const char *target)
{
	struct sn_table *t = sn_current;
	const char *name;
	long v = open_parent(t->m[at].fd, rel, &name);
	if (v >= 0) {
		int pfd = (int)v;
		int failed = op == NAME_UNLINK ? unlinkat(pfd, name, (int)arg)
			: op == NAME_MKDIR ? mkdirat(pfd, name, arg) : symlinkat(target, pfd, name);
		v = failed ? -errno : 0;
		close(pfd);
	}
	if (t->m[at].kind == SN_MOUNT_UPPER) sn_table_overlay_changed(t);
	return v;
}

/* A name to make, as _create_target reads it: *dotted when its last name
 * is "." or ".." (or it is "/": a directory that must be there), else the
 * path loses its trailing "/"s, in place, and *slashed says it had some (a
 * directory asked for: only mkdir makes one). */
static void create_target(char *given, int *dotted, int *slashed)
{
	size_t len = strlen(given), n = len;
	while (n > 1 && given[n - 1] == '/') n--;
	*dotted = dotted_or_slashed(given, n);
	*slashed = n < len;
	if (!*dotted) given[n] = 0;
}

/* A name to make, as _create_target finds it: the entry whose host
 * directory is to hold it with nothing to prepare (walk.rel its path
 * there), or -1 -- *answered 1 when EEXIST, the walk's ENOENT or ENOTDIR, or
 * the ENOENT of a "/" after the name of what is no directory was the call's
 * answer, 0 when the call is Python's. */
static int new_name(int tid, sn_regs *r, int dirfd, char *given, int directory, int *answered)
{
	char start[PATH_MAX_];
	int dotted, slashed;
	long v = 0;
	*answered = 0;
	create_target(given, &dotted, &slashed);
	if (start_dir(tid, dirfd, given, start, sizeof start)) return -1;
	struct sn_mount *m;
	int fd = fast_lookup(start, given, 0, dotted, &m);
	if (fd == DECLINE) return -1;
	if (fd >= 0) {
		close(fd);
		v = -EEXIST;
	} else if (fd != ABSENT) {
		if (fd != -ENOENT && fd != -ENOTDIR) return -1;
		v = fd;
	} else if (slashed && !directory) {
		v = -ENOENT;
	}
	if (v) {
		sn_answer(tid, r, v);
		*answered = 1;
		return -1;
	}
	int at = (int)(m - sn_current->m);
	return sn_table_names_in_place(sn_current, at, walk.rel) == at ? at : -1;
}

static int remove_name(int tid, sn_regs *r)
{
	int dirfd = -100, flags = r->orig_rax == SYS_rmdir ? AT_REMOVEDIR_ : 0;
	uint64_t path_addr = r->rdi;
	if (r->orig_rax == SYS_unlinkat) {
		dirfd = (int)r->rdi;
		path_addr = r->rsi;
		flags = (int)r->rdx;
		if (flags & ~AT_REMOVEDIR_) return 0;
	}
	char given[PATH_MAX_];
	long n = sn_read_string(tid, path_addr, given, sizeof given);
	if (n <= 0 || dotted_or_slashed(given, strlen(given))) return 0;
	struct sn_mount *m;
	int answered, fd = lookup_existing(tid, r, dirfd, given, 0, &m, &answered);
	if (fd < 0) return answered;
	close(fd);
	struct sn_table *t = sn_current;
	int at = sn_table_names_in_place(t, (int)(m - t->m), walk.rel);
	if (at < 0) return 0;
	/* a name goes: the walk's memo of symlinks may name it (linkcache.py) */
	sn_table_clear_links(t);
	long v = on_name(at, walk.rel, NAME_UNLINK, (unsigned)flags, NULL);
	sn_host_forget();              /* a directory may be gone: its memo with it */
	sn_answer(tid, r, v);
	return 1;
}

/* ---- making a directory --------------------------------------------------------
 *
 * mkdir and mkdirat, as syscalls/path.py _mkdir makes them: the walk finds
 * the name absent (never following a final symlink: a name that is there,
 * whatever it is, is EEXIST, answered at once), the mount has nothing to
 * prepare (sn_table_names_in_place), and the Sentry makes the directory in
 * its parent opened confined below that backing's root, with the mode the
 * guest's umask leaves (read from /proc/<tid>/status, as Call.umask; the
 * Sentry's own umask is 0).  Declined: a task whose new files must be given
 * other ids (owner.adopt_name), and what the mount must prepare (EROFS, a
 * directory to copy up first, a stand-in). */

/* The guest's umask; -1 unknown. */
static int guest_umask(int tid)
{
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/status", tid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);     /* "Name:" then "Umask:" lead it */
	close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	char *u = strstr(buf, "\nUmask:\t");
	if (!u) return -1;
	return (int)strtol(u + 8, NULL, 8) & 0777;
}

static int make_dir(int tid, sn_regs *r)
{
	int dirfd = -100;
	uint64_t path_addr = r->rdi;
	uint32_t mode = (uint32_t)r->rsi;
	if (r->orig_rax == SYS_mkdirat) {
		dirfd = (int)r->rdi;
		path_addr = r->rsi;
		mode = (uint32_t)r->rdx;
	}
	if (sn_ident_foreign_creator(tid)) return 0;
	char given[PATH_MAX_];
	long n = sn_read_string(tid, path_addr, given, sizeof given);
	if (n <= 0) return 0;
	/* mkdir("d/") makes d; a last name "." or ".." (busybox tar's
	 * mkdir("./")) is a directory that must be there: EEXIST */
	int answered, at = new_name(tid, r, dirfd, given, 1, &answered);
	if (at < 0) return answered;
	int umask = guest_umask(tid);
	if (umask < 0) return 0;
	sn_answer(tid, r, on_name(at, walk.rel, NAME_MKDIR, mode & 07777 & ~(uint32_t)umask, NULL));
	return 1;
}

/* ---- calls on two names ---------------------------------------------------------
 *
 * The old name of a link or rename: both strings read (new_ gets the new
 * one; with plain, neither may end in "/", "." or "..": Python's), the old
 * name found (not followed): its entry in *from, its path in from_rel, its
 * lstat in *st; 0, or -1 with *answered as lookup_existing says (the walk's
 * ENOENT or ENOTDIR, the call's answer, or Python's). */
static int old_name(int tid, sn_regs *r, int olddir, uint64_t old_addr, uint64_t new_addr, char *new_, int plain,
		    int *from, char *from_rel, struct stat *st, int *answered)
{
	char old[PATH_MAX_];
	*answered = 0;
	if (sn_read_string(tid, old_addr, old, PATH_MAX_) <= 0 || sn_read_string(tid, new_addr, new_, PATH_MAX_) <= 0)
		return -1;
	if (plain && (dotted_or_slashed(old, strlen(old)) || dotted_or_slashed(new_, strlen(new_)))) return -1;
	struct sn_mount *m;
	int fd = lookup_existing(tid, r, olddir, old, 0, &m, answered);
	if (fd < 0) return -1;
	close(fd);
	*from = (int)(m - sn_current->m);
	strcpy(from_rel, walk.rel);
	memcpy(st, walk.st, sizeof *st);
	return 0;
}

/* from_rel of backing root linked (or renamed, with flags) to to_rel, both
 * names in their parents opened confined below root; 0 or -errno. */
static long in_parents(int root, const char *from_rel, const char *to_rel, int rename, unsigned flags)
{
	const char *oname, *nname;
	long v = open_parent(root, from_rel, &oname);
	if (v < 0) return v;
	int ofd = (int)v;
	v = open_parent(root, to_rel, &nname);
	if (v >= 0) {
		int nfd = (int)v;
		v = rename ? sn_renameat2(ofd, oname, nfd, nname, flags) : (linkat(ofd, oname, nfd, nname, 0) ? -errno : 0);
		close(nfd);
	}
	close(ofd);
	return v;
}

/* ---- a hard link --------------------------------------------------------------
 *
 * link and linkat(..., 0), as syscalls/path.py _link makes them: the walk
 * finds the old name (not following a final symlink) and the new one as
 * _create_target does (a name that is there, or a path ending in "." or "..",
 * is EEXIST); both in the one backing with nothing to prepare (the old file
 * of a writable backing -- a lower file is copied up first --, the new name's
 * parent as sn_table_names_in_place wants it), and the Sentry links one name
 * to the other in their parents opened confined below that backing's root.
 * Declined: linkat's flags (AT_SYMLINK_FOLLOW and /proc/<pid>/fd/N,
 * AT_EMPTY_PATH), a directory (EPERM), two mounts (EXDEV).  A link is a
 * name, not a new file: no owner to give it. */

static int link_name(int tid, sn_regs *r)
{
	int olddir = -100, newdir = -100;
	uint64_t old_addr = r->rdi, new_addr = r->rsi;
	if (r->orig_rax == SYS_linkat) {
		if ((int)r->r8) return 0;
		olddir = (int)r->rdi;
		old_addr = r->rsi;
		newdir = (int)r->rdx;
		new_addr = r->r10;
	}
	char new_[PATH_MAX_], from_rel[PATH_MAX_];
	struct stat st;
	int from, answered;
	if (old_name(tid, r, olddir, old_addr, new_addr, new_, 0, &from, from_rel, &st, &answered)) return answered;
	struct sn_table *t = sn_current;
	int at = new_name(tid, r, newdir, new_, 0, &answered);
	if (at < 0) return answered;
	if (S_ISDIR(st.st_mode) || from != at || !writable_backing(&t->m[at])) return 0;
	long v = in_parents(t->m[at].fd, from_rel, walk.rel, 0, 0);
	if (t->m[at].kind == SN_MOUNT_UPPER) sn_table_overlay_changed(t);   /* as the overlay's _changed */
	sn_answer(tid, r, v);
	return 1;
}

/* ---- renaming what is not a directory ---------------------------------------
 *
 * rename, renameat and renameat2 (no flag, or RENAME_NOREPLACE), as
 * syscalls/path.py _rename makes them, when the old name is not a directory:
 * both names found by the walk (neither followed; the walk's ENOENT and
 * ENOTDIR answered, the old name's first), both in one backing with nothing
 * to prepare (the old file of a writable backing with a complete parent --
 * a lower file is copied up first --, the new name absent or a file there,
 * a lower file's placeholder too), and the Sentry renames one to the other
 * in their parents opened confined below that backing's root, emptying the
 * walk's memo of symlinks as Python does.  Declined: a directory (it moves
 * with what it holds: the table's nested mounts, Mount.check_move, and the
 * overlay's placeholders, copied up first), RENAME_EXCHANGE and
 * RENAME_WHITEOUT, a final "/", "." or "..", two mounts (EXDEV, or a file
 * over a hidden path's stand-in, _rename_over_stand_in). */

#define RENAME_NOREPLACE_ 1

static int rename_name(int tid, sn_regs *r)
{
	int olddir = -100, newdir = -100;
	uint64_t old_addr = r->rdi, new_addr = r->rsi;
	uint32_t flags = 0;
	if (r->orig_rax != SYS_rename) {
		olddir = (int)r->rdi;
		old_addr = r->rsi;
		newdir = (int)r->rdx;
		new_addr = r->r10;
		if (r->orig_rax == SYS_renameat2) flags = (uint32_t)r->r8;
	}
	if (flags & ~RENAME_NOREPLACE_) return 0;
	char new_[PATH_MAX_], from_rel[PATH_MAX_], start[PATH_MAX_];
	struct stat st;
	int from, answered;
	if (old_name(tid, r, olddir, old_addr, new_addr, new_, 1, &from, from_rel, &st, &answered)) return answered;
	if (S_ISDIR(st.st_mode) || start_dir(tid, newdir, new_, start, sizeof start)) return 0;
	struct sn_table *t = sn_current;
	struct sn_mount *m;
	int fd = fast_lookup(start, new_, 0, 0, &m);
	if (fd == DECLINE) return 0;
	if (fd >= 0) {
		close(fd);
		if (S_ISDIR(((const struct stat *)walk.st)->st_mode)) return 0;
	} else if (fd != ABSENT) {
		if (fd != -ENOENT && fd != -ENOTDIR) return 0;
		sn_answer(tid, r, fd);
		return 1;
	}
	int at = sn_table_names_in_place(t, from, from_rel);
	if (at != from || sn_table_names_in_place(t, (int)(m - t->m), walk.rel) != at) return 0;
	sn_table_clear_links(t);
	long v = in_parents(t->m[at].fd, from_rel, walk.rel, 1, flags);
	if (t->m[at].kind == SN_MOUNT_UPPER) sn_table_overlay_changed(t);   /* as the overlay's _changed */
	sn_answer(tid, r, v);
	return 1;
}

/* ---- reading a symlink, making one, the cwd ------------------------------------
 *
 * readlink and readlinkat, as syscalls/path.py _readlink reads them: the
 * walk finds the name (a final symlink not followed: lookup(follow=False),
 * which exposes nothing, so a directory of the lower layer is EINVAL as
 * any directory is) and its target is read from the walk's own
 * O_PATH|O_NOFOLLOW fd on the link, never from a name looked up again.
 * Declined: a size <= 0 (EINVAL first, as Linux), an empty path (an fd's
 * own link, or ENOENT), what the walk leaves to Python (/proc's magic
 * links, /dev's, a hidden stand-in). */
static int read_link(int tid, sn_regs *r)
{
	int dirfd = -100;
	uint64_t path_addr = r->rdi, buf = r->rsi;
	int size = (int)r->rdx;        /* readlink's bufsiz is an int */
	if (r->orig_rax == SYS_readlinkat) {
		dirfd = (int)r->rdi;
		path_addr = r->rsi;
		buf = r->rdx;
		size = (int)r->r10;
	}
	if (size <= 0) return 0;
	char given[PATH_MAX_], start[PATH_MAX_], target[PATH_MAX_];
	if (sn_read_string(tid, path_addr, given, sizeof given) <= 0) return 0;
	if (start_dir(tid, dirfd, given, start, sizeof start)) return 0;
	struct sn_mount *m;
	int fd = lookup_as(start, given, 0, 1, 0, &m);
	if (fd == DECLINE) return 0;
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ENOTDIR) return 0;
		sn_answer(tid, r, fd);
		return 1;
	}
	long v = -EINVAL;
	if (S_ISLNK(((const struct stat *)walk.st)->st_mode)) {
		ssize_t n = readlinkat(fd, "", target, sizeof target);
		v = n < 0 ? -errno : n < size ? n : size;
		if (v > 0 && !write_guest(tid, buf, target, (size_t)v)) v = -EFAULT;
	}
	close(fd);
	sn_answer(tid, r, v);
	return 1;
}

/* symlink and symlinkat, as _symlink makes them: the new name found as
 * _create_target finds it (new_name: EEXIST, ENOENT after a "/"), in a
 * backing with nothing to prepare, made by the Sentry in its parent opened
 * confined below that backing's root.  The target is only bytes the link
 * holds; the walk resolves it inside the sandbox whenever it is followed.
 * Declined: an empty or unreadable target (ENOENT, EFAULT: Python's), a
 * task whose new names must be given other ids (owner.adopt_name). */
static int make_symlink(int tid, sn_regs *r)
{
	int dirfd = -100;
	uint64_t target_addr = r->rdi, path_addr = r->rsi;
	if (r->orig_rax == SYS_symlinkat) {
		dirfd = (int)r->rsi;
		path_addr = r->rdx;
	}
	if (sn_ident_foreign_creator(tid)) return 0;
	char target[PATH_MAX_], given[PATH_MAX_];
	if (sn_read_string(tid, target_addr, target, sizeof target) <= 0) return 0;
	if (sn_read_string(tid, path_addr, given, sizeof given) <= 0) return 0;
	int answered, at = new_name(tid, r, dirfd, given, 0, &answered);
	if (at < 0) return answered;
	sn_answer(tid, r, on_name(at, walk.rel, NAME_SYMLINK, 0, target));
	return 1;
}

/* getcwd, as sys_getcwd answers it: the kernel's cwd mapped back into the
 * sandbox (start_dir's own mapping); a deleted cwd, or one outside every
 * mount, is Python's (ENOENT). */
static int get_cwd(int tid, sn_regs *r)
{
	char spath[PATH_MAX_];
	if (start_dir(tid, -100, "", spath, sizeof spath)) return 0;
	size_t len = strlen(spath) + 1;
	long v = r->rsi < len ? -ERANGE : write_guest(tid, r->rdi, spath, len) ? (long)len : -EFAULT;
	sn_answer(tid, r, v);
	return 1;
}

/* Returns 1 when the seccomp stop was answered here. */
int sn_fast_path(int tid, sn_regs *r)
{
	if (!enabled) return 0;
	int fdcall = is_attr_call(r->orig_rax);
	int kind = kind_of(r->orig_rax);
	int removal = r->orig_rax == SYS_unlink || r->orig_rax == SYS_unlinkat || r->orig_rax == SYS_rmdir;
	int making = r->orig_rax == SYS_mkdir || r->orig_rax == SYS_mkdirat;
	int linking = r->orig_rax == SYS_link || r->orig_rax == SYS_linkat;
	int renaming = r->orig_rax == SYS_rename || r->orig_rax == SYS_renameat || r->orig_rax == SYS_renameat2;
	/* the cwd's name: no permission is checked, whoever asks (a chrooted
	 * task's is named from its root, in Python) */
	if (r->orig_rax == SYS_getcwd) return sn_ident_chrooted(tid) ? 0 : get_cwd(tid, r);
	int reading = r->orig_rax == SYS_readlink || r->orig_rax == SYS_readlinkat;
	int symlinking = r->orig_rax == SYS_symlink || r->orig_rax == SYS_symlinkat;
	if (kind < 0 && !fdcall && !removal && !making && !linking && !renaming && !reading && !symlinking) return 0;
	/* a guest that dropped root: Python checks permissions as its ids; a
	 * chrooted one: Python resolves from its root */
	if (sn_ident_checks_files(tid) || sn_ident_chrooted(tid)) return 0;
	if (reading) return read_link(tid, r);
	if (symlinking) return make_symlink(tid, r);
	if (fdcall) return attrs(tid, r);
	if (removal) return remove_name(tid, r);
	if (making) return make_dir(tid, r);
	if (linking) return link_name(tid, r);
	if (renaming) return rename_name(tid, r);
	uint64_t path_addr;
	int dirfd = -100;          /* AT_FDCWD */
	int follow = 1;
	uint64_t flags = 0;
	switch (kind) {
	case ACCESS:
		if ((uint32_t)r->rsi & ~7u) return 0;    /* a bad mode: Python's EINVAL */
		path_addr = r->rdi; break;
	case STAT: case OPEN: case CREAT: case EXECVE: case STATFS:
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
		/* both sync types, or STATX__RESERVED: Python's EINVAL */
		if (((uint32_t)r->rdx & 0x6000) == 0x6000 || ((uint32_t)r->r10 & 0x80000000u)) return 0;
		follow = !((uint32_t)r->rdx & AT_SYMLINK_NOFOLLOW_);
		break;
	case FACCESSAT:
		if ((uint32_t)r->rdx & ~7u) return 0;
		path_addr = r->rsi; break;
	case FACCESSAT2:
		/* AT_EACCESS: effective ids instead of real, which only a task that
		 * checks files tells apart (declined above), as _access's
		 * permission.check; AT_EMPTY_PATH and the rest are Python's */
		path_addr = r->rsi;
		if (((uint32_t)r->r10 & ~(AT_EACCESS_ | AT_SYMLINK_NOFOLLOW_)) || ((uint32_t)r->rdx & ~7u)) return 0;
		follow = !((uint32_t)r->r10 & AT_SYMLINK_NOFOLLOW_);
		break;
	case OPENAT:
		path_addr = r->rsi; flags = (uint32_t)r->rdx; break;
	default:
		return 0;
	}
	if (kind == FSTATAT || kind == STATX || kind == FACCESSAT || kind == FACCESSAT2 || kind == OPENAT)
		dirfd = (int)r->rdi;
	/* open's flags and mode are ints (creat(2): O_CREAT|O_WRONLY|O_TRUNC) */
	uint64_t mode = 0;
	if (kind == OPEN) { flags = (uint32_t)r->rsi; mode = (uint32_t)r->rdx & 07777; }
	if (kind == OPENAT) mode = (uint32_t)r->r10 & 07777;
	if (kind == CREAT) { flags = O_CREAT | O_WRONLY | O_TRUNC; mode = (uint32_t)r->rsi & 07777; }
	int creat = 0;
	if (kind == OPEN || kind == OPENAT || kind == CREAT) {
		/* O_TMPFILE, and O_CREAT | O_DIRECTORY (EINVAL before any lookup):
		 * Python's (syscalls/file.py check_open_flags) */
		if ((flags & O_TMPFILE_ & ~O_DIRECTORY) || (flags & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY))
			return 0;
		/* O_NOATIME: the owner or CAP_FOWNER, which Python checks */
		if (flags & 01000000) return 0;
		/* what it creates (or the kernel, should the file vanish before it
		 * opens it) is the Sentry's uid's: a creator of other ids is Python's */
		if ((flags & O_CREAT) && sn_ident_foreign_creator(tid)) return 0;
		creat = (flags & O_CREAT) && !(flags & O_PATH_);
		/* O_CREAT | O_EXCL never follows a final symlink: it is there */
		follow = !(flags & O_NOFOLLOW) && !(creat && (flags & O_EXCL));
	}

	char given[PATH_MAX_], start[PATH_MAX_];
	long n = sn_read_string(tid, path_addr, given, sizeof given);
	if (n <= 0) return 0;
	if (start_dir(tid, dirfd, given, start, sizeof start)) return 0;
	if (flags & O_CREAT) {
		/* a final "/" or "/.": EISDIR before any lookup, Python's to say */
		size_t len = strlen(given);
		if (given[len - 1] == '/' || (given[len - 1] == '.' && (len == 1 || given[len - 2] == '/'))) return 0;
	}
	struct sn_mount *m;
	int fd = fast_lookup(start, given, follow, !creat, &m);
	if (fd == DECLINE) return 0;
	const char *rel = walk.rel;
	if (fd == ABSENT) return create_open(tid, r, (int)(m - sn_current->m), rel, flags, mode);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ENOTDIR) {
			sn_answer(tid, r, fd);
			return 1;
		}
		return 0;
	}
	int handled = 0;
	struct stat st;
	memcpy(&st, walk.st, sizeof st);      /* the walk's lstat of it */
	if (creat && (flags & O_EXCL)) {
		/* it is there (a final symlink not followed): do_open's first word */
		sn_answer(tid, r, -EEXIST);
		handled = 1;
		goto out;
	}
	/* a sticky regular file may be a device node's stand-in, which Python
	 * shows as the node (sentry/vfs/devnodes.py) */
	if (S_ISREG(st.st_mode) && (st.st_mode & S_ISVTX)) goto out;
	/* a socket's mode may be carried by an ACL (sentry/vfs/sockperm.py) */
	if (S_ISSOCK(st.st_mode)) goto out;

	switch (kind) {
	case STAT: case LSTAT: case FSTATAT: {
		/* the walk's fstat of this very fd is the answer: a second one
		 * would only cost a host call (the kernel's struct stat is glibc's) */
		char raw[144];
		memcpy(raw, &st, sizeof raw);
		sn_map_stat_ids(raw);
		uint64_t buf = kind == FSTATAT ? r->rdx : r->rsi;
		sn_answer(tid, r, write_guest(tid, buf, raw, sizeof raw) ? 0 : -EFAULT);
		handled = 1;
		break;
	}
	case STATX: {
		char raw[256];
		if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH_ | ((uint32_t)r->rdx & 0x6000),
			    (uint32_t)r->r10, raw)) goto out;
		sn_map_statx_ids(raw);
		sn_answer(tid, r, write_guest(tid, r->r8, raw, sizeof raw) ? 0 : -EFAULT);
		handled = 1;
		break;
	}
	case ACCESS: case FACCESSAT: case FACCESSAT2: {
		uint32_t mode = kind == ACCESS ? (uint32_t)r->rsi : (uint32_t)r->rdx;
		if (mode & ~7u) goto out;
		long v = 0;
		/* an overlay's lower file is writable, once copied up */
		if ((mode & W_OK) && m->readonly && !(m->kind == SN_MOUNT_DEV && strcmp(rel, "."))
		    && m->kind != SN_MOUNT_LOWER) v = -EROFS;
		else if ((mode & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111)) v = -EACCES;
		sn_answer(tid, r, v);
		handled = 1;
		break;
	}
	case OPEN: case OPENAT: case CREAT: {
		int dev = m->kind == SN_MOUNT_DEV && strcmp(rel, ".");
		if (S_ISLNK(st.st_mode) && !(flags & O_PATH_)) { sn_answer(tid, r, -ELOOP); handled = 1; break; }
		if ((flags & O_CREAT) && (flags & O_PATH_)) flags &= ~(uint64_t)O_CREAT;
		if ((flags & O_CREAT) && S_ISDIR(st.st_mode)) { sn_answer(tid, r, -EISDIR); handled = 1; break; }
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && m->kind == SN_MOUNT_LOWER)
			goto out;                            /* copy-up: Python */
		/* a program a sandbox process runs may not be written (ETXTBSY),
		 * and which ones run only Python knows (Kernel.text_busy): a
		 * write to an executable regular file is Python's */
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && S_ISREG(st.st_mode) && (st.st_mode & 0111))
			goto out;
		/* a set-id file: a CAP_FSETID holder's writes keep its bits, by
		 * traps Python loads at the open (syscalls/fsetid.py) */
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && S_ISREG(st.st_mode) && (st.st_mode & S_ISUID))
			goto out;
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && m->readonly && !dev) {
			sn_answer(tid, r, -EROFS); handled = 1; break;
		}
		if (flags & O_CREAT) {
			/* the file exists: on a mount the guest cannot create in, the
			 * kernel must not be able to create it either if it vanishes;
			 * nor a mount of a single file, rooted at its name in the host's
			 * directory (sentry/vfs/mount.py) */
			int file_root = strcmp(m->root_rel, ".") && !strcmp(rel, m->root_rel);
			if (m->readonly || dev || file_root) flags &= ~(uint64_t)O_CREAT;
		}
		if (!(flags & O_CREAT)) mode = 0;
		/* the host would refuse the guest's host process what its
		 * emulated capabilities allow (a mode-000 file, a directory it
		 * may not search): Python opens it and hands the fd over.  Only
		 * files of host directories are handed over (never a node of
		 * /dev), and only regular files and directories (syscalls/file.py) */
		int handover = m->kind == SN_MOUNT_DIR || m->kind == SN_MOUNT_UPPER || m->kind == SN_MOUNT_LOWER;
		if (handover && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || (flags & O_PATH_))
		    && !sn_host_may_open(m->fd, rel, flags, 1, st.st_mode, st.st_uid, st.st_gid))
			goto out;
		handled = stage_open(tid, r, m, rel, flags, mode);
		break;
	}
	case STATFS: {
		char raw[120];
		if (syscall(SYS_fstatfs, fd, raw)) goto out;
		sn_answer(tid, r, write_guest(tid, r->rsi, raw, sizeof raw) ? 0 : -EFAULT);
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
