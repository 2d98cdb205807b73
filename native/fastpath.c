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
 *
 * An overlay (sentry/fsimpl/overlay.py) is two entries, its upper layer
 * (SN_MOUNT_UPPER, registered first) and its lower one (SN_MOUNT_LOWER).  A
 * path found in the upper layer that is not a placeholder is the upper
 * file; a placeholder file, or a path below a placeholder directory (or
 * below the still-marked root), is the lower file.  Changes and directories
 * of the lower layer (which Python copies up before the guest sees them) go
 * to Python.
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
#include <sys/xattr.h>
#include <unistd.h>

#include "tracer.h"
#include "tidtable.h"

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
	char host_root[PATH_MAX_];
	size_t host_len;
	int fd;          /* O_PATH fd of the host root, in the Sentry */
	int guest_fd;    /* the same, hidden in every guest */
	int readonly;
	int kind;        /* SN_MOUNT_* */
};

/* More entries than host directories: every hidden path (sentry/fsimpl/
 * hidden.py) is an entry of its own, all sharing one directory and its fd. */
#define MAX_ENTRIES 160
static struct mount mounts[MAX_ENTRIES];
static int nmounts;
static int enabled;

/* tid -> staging slot address, kept by Python (staging.Slots), and the
 * task's /proc/<tid>/mem, opened on first use and closed with the slot (an
 * exec replaces the address space the fd refers to). */
#define SLOT_TABLE 16384
static struct { int tid; uint64_t addr; int memfd; } slot_table[SLOT_TABLE];

void sn_fast_enable(int on) { enabled = on; }

/* Directory symlinks, kept by Python (sentry/vfs/linkcache.py). */
#define MAX_LINKS 256
static struct { char from[256], to[256]; size_t from_len; } links[MAX_LINKS];
static int nlinks;

int sn_add_link(const char *from, const char *to)
{
	if (nlinks >= MAX_LINKS || strlen(from) >= 256 || strlen(to) >= 256) return -1;
	strcpy(links[nlinks].from, from);
	strcpy(links[nlinks].to, to);
	links[nlinks].from_len = strlen(from);
	nlinks++;
	return 0;
}

void sn_clear_links(void) { nlinks = 0; }

/* Rewrite known symlinks in path: a leading directory, or the whole path
 * when the call follows its final component (lstat and O_NOFOLLOW must see
 * the link itself).  0 on success or nothing to do. */
static int substitute_links(char *path, size_t size, int follow)
{
	for (int round = 0; round < 8; round++) {
		int hit = -1;
		for (int i = 0; i < nlinks; i++) {
			size_t n = links[i].from_len;
			if (!strncmp(path, links[i].from, n) && (path[n] == '/' || (follow && !path[n]))) {
				hit = i;
				break;
			}
		}
		if (hit < 0) return 0;
		char tmp[PATH_MAX_];
		const char *to = links[hit].to;
		int w = snprintf(tmp, sizeof tmp, "%s%s", strcmp(to, "/") ? to : "", path + links[hit].from_len);
		if (w <= 0 || (size_t)w >= size) return -1;
		strcpy(path, tmp);
	}
	return -1;
}

/* (st_dev, st_ino) of the inodes every overlay file placeholder links to
 * (overlay.Placeholders), and the xattr that marks a placeholder directory. */
#define MAX_PLACEHOLDERS 64
static struct { uint64_t dev, ino; } placeholders[MAX_PLACEHOLDERS];
static int nplaceholders;
#define OVERLAY_MARK "user.sentry.lower"

int sn_add_placeholder(uint64_t dev, uint64_t ino)
{
	if (nplaceholders >= MAX_PLACEHOLDERS) return -1;
	placeholders[nplaceholders].dev = dev;
	placeholders[nplaceholders].ino = ino;
	nplaceholders++;
	return 0;
}

static int is_placeholder(const struct stat *st)
{
	for (int i = 0; i < nplaceholders; i++)
		if (placeholders[i].dev == st->st_dev && placeholders[i].ino == st->st_ino) return 1;
	return 0;
}

static int marked(int fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	return getxattr(p, OVERLAY_MARK, NULL, 0) >= 0;
}

/* Names a /dev mount serves (space-separated, from Python's DevMount). */
static char dev_nodes[256];
void sn_set_dev_nodes(const char *names)
{
	snprintf(dev_nodes, sizeof dev_nodes, " %s ", names);
}

static int dev_node_allowed(const char *rel)
{
	char key[64];
	if (strchr(rel, '/') || strlen(rel) > 60) return 0;
	snprintf(key, sizeof key, " %s ", rel);
	return strstr(dev_nodes, key) != NULL;
}

int sn_add_mount(const char *path, const char *host_root, int fd, int guest_fd, int readonly, int kind)
{
	if (nmounts >= MAX_ENTRIES || strlen(path) >= sizeof mounts[0].path
	    || strlen(host_root) >= sizeof mounts[0].host_root) return -1;
	struct mount *m = &mounts[nmounts++];
	strcpy(m->path, path);
	m->len = strlen(path);
	strcpy(m->host_root, host_root);
	m->host_len = strlen(host_root);
	m->fd = fd;
	m->guest_fd = guest_fd;
	m->readonly = readonly;
	m->kind = kind;
	return 0;
}

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
	}
}

static uint64_t slot_of(int tid)
{
	int i = slot_index(tid);
	return i >= 0 ? slot_table[i].addr : 0;
}

/* The mount at the longest prefix of a plain absolute path, and the path
 * relative to its root; NULL when the path is not plain or the mount is not
 * one the fast path serves. */
static struct mount *locate(const char *path, const char **rel)
{
	if (path[0] != '/') return NULL;
	for (const char *p = path[1] ? path : ""; *p; ) {
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
	/* an overlay's upper layer is registered before its lower one, and wins */
	if (!best || best->kind == SN_MOUNT_PYTHON || best->kind == SN_MOUNT_LOWER) return NULL;
	if (best->len > 1 && !path[best->len]) *rel = ".";     /* the mount's root itself */
	else *rel = path + (best->len == 1 ? 1 : best->len + 1);
	if (!**rel) *rel = ".";
	if (best->kind == SN_MOUNT_DEV && strcmp(*rel, ".") && !dev_node_allowed(*rel))
		return NULL;                                 /* Python says ENOENT */
	return best;
}

/* The sandbox path of a directory the kernel names by host path (a guest's
 * cwd or dirfd): the mount whose host root is its longest prefix.  As in
 * Python's MountTable.sandbox_path; the result is then located again by
 * sandbox path, so a host path never picks its mount by itself. */
static int host_to_sandbox(const char *host, char *out, size_t size)
{
	struct mount *best = NULL;
	for (int i = 0; i < nmounts; i++) {
		struct mount *m = &mounts[i];
		size_t n = m->host_len;
		if (n == 1 || (!strncmp(host, m->host_root, n) && (host[n] == '/' || !host[n])))
			if (!best || n > best->host_len) best = m;
	}
	if (!best) return -1;
	const char *rest = host + (best->host_len == 1 ? 0 : best->host_len);
	int w = snprintf(out, size, "%s%s", best->len == 1 ? "" : best->path, rest);
	if (w <= 0 || (size_t)w >= size) return -1;
	if (!out[0]) strcpy(out, "/");
	return 0;
}

/* Turn a path relative to dirfd (or the cwd) into a sandbox absolute path. */
static int absolute(int tid, int dirfd, const char *path, char *out, size_t size)
{
	if (path[0] == '/') {
		if (strlen(path) >= size) return -1;
		strcpy(out, path);
		return 0;
	}
	char link[64], host[PATH_MAX_], dir[PATH_MAX_];
	if (dirfd == -100) snprintf(link, sizeof link, "/proc/%d/cwd", tid);
	else if (dirfd >= SN_HIDDEN_FD_BASE && dirfd < SN_HIDDEN_FD_BASE + SN_MAX_MOUNTS) return -1;
	else if (dirfd >= 0) snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
	else return -1;
	ssize_t n = readlink(link, host, sizeof host - 1);
	if (n <= 0 || host[0] != '/') return -1;      /* pipes, sockets: Python */
	host[n] = 0;
	if (n > 10 && !strcmp(host + n - 10, " (deleted)")) return -1;
	if (host_to_sandbox(host, dir, sizeof dir)) return -1;
	int w = snprintf(out, size, "%s/%s", strcmp(dir, "/") ? dir : "", path);
	return w > 0 && (size_t)w < size ? 0 : -1;
}

static int confined_openat(int dirfd, const char *rel, uint64_t flags)
{
	struct { uint64_t flags, mode, resolve; } how = { flags, 0, RESOLVE_CONFINED };
	long r = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
	return r < 0 ? -errno : (int)r;
}

static int confined_open(struct mount *m, const char *rel, uint64_t flags)
{
	return confined_openat(m->fd, rel, flags);
}

#define DECLINE (-100000)      /* not plain: Python */

/* The lower layer holds rel: an O_PATH fd on it, -ENOENT/-ENOTDIR, or
 * DECLINE (a directory, which Python copies up before the guest sees it). */
static int overlay_lower(struct mount **mp, const char *rel)
{
	struct mount *up = *mp;
	for (int i = 0; i < nmounts; i++)
		if (mounts[i].kind == SN_MOUNT_LOWER && !strcmp(mounts[i].path, up->path)) {
			int fd = confined_open(&mounts[i], rel, O_PATH_ | O_NOFOLLOW | O_CLOEXEC);
			struct stat st;
			if (fd >= 0 && (fstat(fd, &st) || S_ISDIR(st.st_mode))) {
				close(fd);
				return DECLINE;
			}
			*mp = &mounts[i];
			return fd;
		}
	return DECLINE;
}

/* Which layer holds the entries of each upper directory seen: a cache
 * keyed by path relative to the overlay, valid for one generation.  Python
 * starts a new one whenever a directory may change state (copy-up, removal,
 * rename: sn_overlay_changed). */
enum { DIR_UPPER = 1, DIR_LOWER = 2 };
#define DIR_CACHE 2048
static struct { char path[240]; unsigned gen; unsigned char state; } dir_cache[DIR_CACHE];
static unsigned dir_gen = 1;

void sn_overlay_changed(void) { dir_gen++; }

static unsigned dir_slot(const char *path)
{
	unsigned h = 2166136261u;
	for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
	return h % DIR_CACHE;
}

/* DIR_UPPER (a complete upper directory), DIR_LOWER (its entries are the
 * lower layer's), -ENOENT/-ENOTDIR, or DECLINE, for directory `dir` (".",
 * or a path relative to the overlay) -- as Python's OverlayMount._dir_layer. */
static int dir_state(struct mount *up, const char *dir, int depth)
{
	size_t len = strlen(dir);
	if (depth > 64 || len >= sizeof dir_cache[0].path) return DECLINE;
	unsigned i = dir_slot(dir);
	if (dir_cache[i].gen == dir_gen && !strcmp(dir_cache[i].path, dir)) return dir_cache[i].state;
	int state;
	if (!strcmp(dir, ".")) {
		state = marked(up->fd) ? DIR_LOWER : DIR_UPPER;
	} else {
		char parent[240];
		const char *slash = strrchr(dir, '/');
		if (slash) { memcpy(parent, dir, slash - dir); parent[slash - dir] = 0; }
		else strcpy(parent, ".");
		state = dir_state(up, parent, depth + 1);
		if (state == DIR_UPPER) {
			struct stat st;
			int fd = confined_open(up, dir, O_PATH_ | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) return fd == -ENOENT || fd == -ENOTDIR ? fd : DECLINE;
			if (fstat(fd, &st)) state = DECLINE;
			else if (is_placeholder(&st)) state = DIR_LOWER;      /* the lower layer says ENOTDIR or ELOOP */
			else if (S_ISLNK(st.st_mode)) state = DECLINE;        /* a symlink to resolve */
			else if (!S_ISDIR(st.st_mode)) state = -ENOTDIR;
			else state = marked(fd) ? DIR_LOWER : DIR_UPPER;
			close(fd);
		}
	}
	if (state == DIR_UPPER || state == DIR_LOWER) {
		memcpy(dir_cache[i].path, dir, len + 1);
		dir_cache[i].state = (unsigned char)state;
		dir_cache[i].gen = dir_gen;
	}
	return state;
}

/* rel on an overlay whose upper layer is *mp, as Python's OverlayMount.find
 * decides: an O_PATH fd (and *mp set to the layer holding it), -ENOENT or
 * -ENOTDIR to answer, or DECLINE. */
static int overlay_open(struct mount **mp, const char *rel)
{
	struct mount *up = *mp;
	struct stat st;
	if (!strcmp(rel, ".")) return DECLINE;
	char parent[PATH_MAX_];
	const char *slash = strrchr(rel, '/');
	if (slash) { memcpy(parent, rel, slash - rel); parent[slash - rel] = 0; }
	else strcpy(parent, ".");
	int state = dir_state(up, parent, 0);
	if (state == DIR_LOWER) return overlay_lower(mp, rel);
	if (state != DIR_UPPER) return state;
	int fd = confined_open(up, rel, O_PATH_ | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) return fd == -ENOENT ? fd : DECLINE;      /* missing from a complete directory */
	if (fstat(fd, &st)) { close(fd); return DECLINE; }
	if (is_placeholder(&st)) { close(fd); return overlay_lower(mp, rel); }
	if (S_ISDIR(st.st_mode) && marked(fd)) { close(fd); return DECLINE; }
	return fd;
}

static int fast_lookup(char *path, int follow, struct mount **m, const char **rel);

/* Whether Python's walk reaches mount m: its mount point's parent is a
 * directory met with no symlink on the way (under a missing, non-directory
 * or symlink ancestor the walk finds no mount there). */
static int reaches(struct mount *m)
{
	const char *slash = strrchr(m->path, '/');
	if (slash == m->path) return 1;              /* below "/" (or "/" itself) */
	char parent[PATH_MAX_];
	memcpy(parent, m->path, slash - m->path);
	parent[slash - m->path] = 0;
	struct mount *pm;
	const char *prel;
	int fd = fast_lookup(parent, 0, &pm, &prel);
	if (fd < 0) return 0;
	struct stat st;
	int ok = !fstat(fd, &st) && S_ISDIR(st.st_mode);
	close(fd);
	return ok;
}

/* An absolute sandbox path (rewritten in place by the link cache) to an
 * O_PATH fd on what it names, *m the backing holding it and *rel its path
 * there; -ENOENT/-ENOTDIR/another -errno; or DECLINE: Python's. */
static int fast_lookup(char *path, int follow, struct mount **m, const char **rel)
{
	if (substitute_links(path, PATH_MAX_, follow)) return DECLINE;
	*m = locate(path, rel);
	if (!*m) return DECLINE;
	if (!reaches(*m)) return DECLINE;
	return (*m)->kind == SN_MOUNT_UPPER ? overlay_open(m, *rel)
	                                    : confined_open(*m, *rel, O_PATH_ | O_NOFOLLOW | O_CLOEXEC);
}

/* The fast path's answer for a path, without a guest (tests/test_resolver_diff.py):
 * 0 and *index (of sn_add_mount's entries), rel and the file's lstat when it
 * would answer with a file; -errno when it would answer an error; 1 when it
 * would send the call to Python. */
int sn_fast_resolve(const char *spath, int follow, int *index, char *rel_out, size_t size, void *st144)
{
	char path[PATH_MAX_];
	struct mount *m;
	const char *rel;
	if (strlen(spath) >= sizeof path) return 1;
	strcpy(path, spath);
	int fd = fast_lookup(path, follow, &m, &rel);
	if (fd == DECLINE) return 1;
	if (fd < 0) return fd == -ENOENT || fd == -ENOTDIR ? fd : 1;
	struct stat st;
	int r = 1;
	if (!fstat(fd, &st) && !(S_ISLNK(st.st_mode) && follow) && strlen(rel) < size) {
		*index = (int)(m - mounts);
		strcpy(rel_out, rel);
		memcpy(st144, &st, sizeof st < 144 ? sizeof st : 144);
		r = 0;
	}
	close(fd);
	return r;
}

/* Forget every mount, link, placeholder and cached directory (tests). */
void sn_reset_mounts(void)
{
	nmounts = 0;
	nlinks = 0;
	nplaceholders = 0;
	dev_nodes[0] = 0;
	dir_gen++;
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

enum { STAT, LSTAT, FSTATAT, STATX, ACCESS, FACCESSAT, FACCESSAT2, OPEN, OPENAT, EXECVE, STATFS };

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
	case SYS_statfs: return STATFS;
	}
	return -1;
}

/* Returns 1 when the seccomp stop was answered here. */
int sn_fast_path(int tid, sn_regs *r)
{
	if (!enabled) return 0;
	int kind = kind_of(r->orig_rax);
	if (kind < 0) return 0;
	/* a guest that dropped root: Python checks permissions as its ids */
	if (sn_ident_checks_files(tid)) return 0;
	uint64_t path_addr;
	int dirfd = -100;          /* AT_FDCWD */
	int follow = 1;
	uint64_t flags = 0;
	switch (kind) {
	case STAT: case ACCESS: case OPEN: case EXECVE: case STATFS:
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
	if (kind == FSTATAT || kind == STATX || kind == FACCESSAT || kind == FACCESSAT2 || kind == OPENAT)
		dirfd = (int)r->rdi;
	if (kind == OPEN) flags = (uint32_t)r->rsi;
	if (kind == OPEN || kind == OPENAT) {
		/* creating is Python's; O_CREAT of a file that exists is taken here */
		if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) || (flags & O_TMPFILE_) == O_TMPFILE_)
			return 0;
		follow = !(flags & O_NOFOLLOW);
	}

	char given[PATH_MAX_], path[PATH_MAX_];
	long n = sn_read_string(tid, path_addr, given, sizeof given);
	if (n <= 0) return 0;
	if (absolute(tid, dirfd, given, path, sizeof path)) return 0;
	const char *rel;
	struct mount *m;
	int fd = fast_lookup(path, follow, &m, &rel);
	if (fd == DECLINE) return 0;
	if (fd < 0) {
		if (fd == -ENOENT && (flags & O_CREAT)) return 0;    /* to be created: Python */
		if (fd == -ENOENT || fd == -ENOTDIR) {
			sn_answer(tid, r, fd);
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
	case OPEN: case OPENAT: {
		int dev = m->kind == SN_MOUNT_DEV && strcmp(rel, ".");
		uint64_t mode = 0;
		if (S_ISLNK(st.st_mode) && !(flags & O_PATH_)) { sn_answer(tid, r, -ELOOP); handled = 1; break; }
		if ((flags & O_CREAT) && (flags & O_PATH_)) flags &= ~(uint64_t)O_CREAT;
		if ((flags & O_CREAT) && S_ISDIR(st.st_mode)) { sn_answer(tid, r, -EISDIR); handled = 1; break; }
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && m->kind == SN_MOUNT_LOWER)
			goto out;                            /* copy-up: Python */
		if (((flags & O_ACCMODE) || (flags & O_TRUNC)) && m->readonly && !dev) {
			sn_answer(tid, r, -EROFS); handled = 1; break;
		}
		if (flags & O_CREAT) {
			/* the file exists: on a mount the guest cannot create in, the
			 * kernel must not be able to create it either if it vanishes */
			if (m->readonly || dev) flags &= ~(uint64_t)O_CREAT;
			else mode = (kind == OPEN ? r->rdx : r->r10) & 07777;
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
		uint64_t how[3] = { flags, mode, RESOLVE_CONFINED };
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
