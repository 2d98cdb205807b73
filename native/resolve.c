/*
 * The path walk: the one implementation of path resolution against the
 * sandbox's mount table (sentry/vfs/resolve.py drives it for every lookup
 * Python makes; native/fastpath.c calls it for the calls it answers alone).
 *
 * Linux semantics: symlinks resolve inside the sandbox (an absolute target
 * restarts at the sandbox's root), ".." stops at the root and is taken on
 * the path already resolved (no symlinks left in it), ELOOP after 40 links,
 * ENOTDIR for a non-directory met before the last name or named with a
 * trailing "/" or "/.", ENAMETOOLONG past PATH_MAX or NAME_MAX.  Each name is
 * found by the mount at the longest prefix of the sandbox path so far, with
 * one confined lookup from that mount's root (openat2 RESOLVE_BENEATH|
 * RESOLVE_NO_SYMLINKS): a directory swapped for a symlink by a racing guest
 * makes the lookup fail, never leave the mount.
 *
 * Backends:
 *  - SN_MOUNT_DIR: a host directory (bind, tmpfs, a hidden path's stand-in
 *    rooted at root_rel inside the stand-in store);
 *  - SN_MOUNT_DEV: a host directory of which only some names exist;
 *  - SN_MOUNT_UPPER/LOWER: an overlay's layers (sentry/fsimpl/overlay.py says
 *    what a placeholder and a marked directory mean; the rules are here);
 *  - SN_MOUNT_PYTHON: synthetic (/proc, /sys): the walk stops and asks
 *    Python for that one name (SN_WALK_LOOKUP), then goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tracer.h"
#include "resolve.h"

#define O_PATH_ 010000000
#define RESOLVE_CONFINED (0x08 | 0x04)      /* RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS */
#define OVERLAY_MARK "user.sentry.lower"
#define MAX_LINKS_FOLLOWED 40
#define NAME_MAX_ 255

struct sn_table *sn_current;        /* the Sentry's table (the last made) */
/* The generation of every table's cache of overlay directory states: an
 * overlay's layers are shared by the tables of all mount namespaces, so a
 * change made through any one of them makes every cache stale. */
static unsigned dir_gen = 1;

struct sn_table *sn_table_new(void)
{
	struct sn_table *t = sn_table_new_private();
	if (t) sn_current = t;
	return t;
}

/* A table of a mount namespace a guest made: never the fast path's. */
struct sn_table *sn_table_new_private(void)
{
	return calloc(1, sizeof(struct sn_table));
}

void sn_table_free(struct sn_table *t)
{
	if (t == sn_current) sn_current = NULL;
	free(t);
}

void sn_table_reset(struct sn_table *t)
{
	t->n = 0;
	t->nlinks = 0;
	t->nplaceholders = 0;
	t->dev_names[0] = t->fast_dev_names[0] = 0;
	dir_gen++;
	sn_host_forget();         /* the backings' fds may be others' now */
}

int sn_table_add(struct sn_table *t, const char *path, const char *root_rel, const char *host_root,
		 int fd, int guest_fd, int readonly, int kind, int fast)
{
	if (t->n >= SN_MAX_ENTRIES || strlen(path) >= sizeof t->m[0].path
	    || strlen(root_rel) >= sizeof t->m[0].root_rel || strlen(host_root) >= sizeof t->m[0].host_root)
		return -1;
	struct sn_mount *m = &t->m[t->n];
	strcpy(m->path, path);
	m->len = strlen(path);
	strcpy(m->root_rel, root_rel);
	strcpy(m->host_root, host_root);
	m->host_len = strlen(host_root);
	m->fd = fd;
	m->guest_fd = guest_fd;
	m->readonly = readonly;
	m->kind = kind;
	m->fast = fast;
	m->lower = -1;
	if (kind == SN_MOUNT_LOWER)           /* an overlay's layers: upper, then lower */
		for (int i = 0; i < t->n; i++)
			if (t->m[i].kind == SN_MOUNT_UPPER && !strcmp(t->m[i].path, path)) t->m[i].lower = t->n;
	t->n++;
	return 0;
}

void sn_table_set_dev(struct sn_table *t, const char *names, const char *fast_names)
{
	snprintf(t->dev_names, sizeof t->dev_names, " %s ", names);
	snprintf(t->fast_dev_names, sizeof t->fast_dev_names, " %s ", fast_names);
}

int sn_dev_name_in(const char *list, const char *rel)
{
	char key[NAME_MAX_ + 3];
	if (strchr(rel, '/') || strlen(rel) > NAME_MAX_) return 0;
	snprintf(key, sizeof key, " %s ", rel);
	return strstr(list, key) != NULL;
}

/* ---- symlinks already followed (the walk's own memo) ------------------------ */

int sn_table_add_link(struct sn_table *t, const char *from, const char *to)
{
	if (t->nlinks >= SN_MAX_CACHED_LINKS || strlen(from) >= sizeof t->links[0].from
	    || strlen(to) >= sizeof t->links[0].to) return -1;
	for (int i = 0; i < t->nlinks; i++)
		if (!strcmp(t->links[i].from, from)) return 0;
	strcpy(t->links[t->nlinks].from, from);
	strcpy(t->links[t->nlinks].to, to);
	t->links[t->nlinks].from_len = strlen(from);
	t->nlinks++;
	return 0;
}

void sn_table_clear_links(struct sn_table *t) { t->nlinks = 0; }

/* Replace known symlinks at the head of absolute path: a leading directory,
 * or the whole path when its last name is followed.  Each step leaves an
 * equivalent path, so one that would not fit is simply not taken. */
static void substitute_links(struct sn_table *t, char *path, size_t size, int follow)
{
	for (int round = 0; round < 8; round++) {
		int hit = -1;
		for (int i = 0; i < t->nlinks; i++) {
			size_t n = t->links[i].from_len;
			if (!strncmp(path, t->links[i].from, n) && (path[n] == '/' || (follow && !path[n]))) {
				hit = i;
				break;
			}
		}
		if (hit < 0) return;
		const char *to = t->links[hit].to;
		size_t tl = strcmp(to, "/") ? strlen(to) : 0, n = t->links[hit].from_len, rest = strlen(path + n);
		if (tl + rest + 1 > size) return;
		memmove(path + tl, path + n, rest + 1);
		memcpy(path, to, tl);
		if (!path[0]) strcpy(path, "/");
	}
}

/* ---- the mount table -------------------------------------------------------- */

/* The entry at the longest prefix of normalised sandbox path spath ("/" or
 * "/a/b"), and the path below its fd ("." for its root).  -1: none. */
int sn_locate(struct sn_table *t, const char *spath, char *rel, size_t size)
{
	int best = -1;
	for (int i = 0; i < t->n; i++) {
		struct sn_mount *m = &t->m[i];
		if (m->len == 1 ? 1 : (!strncmp(spath, m->path, m->len) && (spath[m->len] == '/' || !spath[m->len])))
			if (best < 0 || m->len > t->m[best].len) best = i;   /* an upper layer, first, wins */
	}
	if (best < 0) return -1;
	struct sn_mount *m = &t->m[best];
	const char *rest = spath + (m->len == 1 ? 1 : m->len);
	if (*rest == '/') rest++;
	int w;
	if (!*rest) w = snprintf(rel, size, "%s", m->root_rel);
	else if (!strcmp(m->root_rel, ".")) w = snprintf(rel, size, "%s", rest);
	else w = snprintf(rel, size, "%s/%s", m->root_rel, rest);
	return w > 0 && (size_t)w < size ? best : -1;
}

/* The entry whose host root is the longest prefix of a host path the kernel
 * reported (a guest's cwd or fd), -1 outside every mount; with out, the
 * sandbox path it names. */
int sn_host_to_sandbox(struct sn_table *t, const char *host, char *out, size_t size)
{
	int best = -1;
	for (int i = 0; i < t->n; i++) {
		struct sn_mount *m = &t->m[i];
		size_t n = m->host_len;
		if (n == 1 || (!strncmp(host, m->host_root, n) && (host[n] == '/' || !host[n])))
			if (best < 0 || n > t->m[best].host_len) best = i;
	}
	if (best < 0 || !out) return best;
	struct sn_mount *m = &t->m[best];
	const char *rest = host + (m->host_len == 1 ? 0 : m->host_len);
	int w = snprintf(out, size, "%s%s", m->len == 1 ? "" : m->path, rest);
	if (w < 0 || (size_t)w >= size) return -1;
	if (!out[0]) strcpy(out, "/");
	return best;
}

/* ---- one name, in one backend ------------------------------------------------ */

static int confined_open(int dirfd, const char *rel)
{
	struct { uint64_t flags, mode, resolve; } how = { O_PATH_ | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_CONFINED };
	long r = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
	return r < 0 ? -errno : (int)r;
}

/* (st_dev, st_ino) of the inodes every overlay file placeholder links to
 * (overlay.Placeholders: a handful per overlay). */
int sn_table_add_placeholder(struct sn_table *t, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < t->nplaceholders; i++)
		if (t->placeholders[i].dev == dev && t->placeholders[i].ino == ino) return 0;
	if (t->nplaceholders >= SN_MAX_PLACEHOLDERS) return -1;
	t->placeholders[t->nplaceholders].dev = dev;
	t->placeholders[t->nplaceholders].ino = ino;
	t->nplaceholders++;
	return 0;
}

int sn_add_placeholder(uint64_t dev, uint64_t ino)
{
	return sn_current ? sn_table_add_placeholder(sn_current, dev, ino) : 0;
}

static int is_placeholder(struct sn_table *t, const struct stat *st)
{
	for (int i = 0; i < t->nplaceholders; i++)
		if (t->placeholders[i].dev == st->st_dev && t->placeholders[i].ino == st->st_ino) return 1;
	return 0;
}

/* 1 marked (a placeholder directory), 0 not, -errno. */
static int marked(int fd)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	if (getxattr(p, OVERLAY_MARK, NULL, 0) >= 0) return 1;
	return errno == ENODATA || errno == EOPNOTSUPP || errno == EPERM ? 0 : -errno;
}

void sn_table_overlay_changed(struct sn_table *t) { (void)t; dir_gen++; }

static unsigned dir_slot(const char *path)
{
	unsigned h = 2166136261u;
	for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
	return h % SN_DIR_CACHE;
}

enum { DIR_UPPER = 1, DIR_LOWER = 2 };

/* Which layer holds the entries of directory `dir` (".", or a path relative
 * to the overlay): DIR_UPPER (a complete upper directory), DIR_LOWER (not
 * copied up: the lower layer's), or -errno (ENOENT: removed; ELOOP, ENOTDIR:
 * not a directory in the upper layer). */
static int dir_state(struct sn_table *t, struct sn_mount *up, const char *dir, int depth)
{
	size_t len = strlen(dir);
	if (depth > SN_PATH_MAX / 2) return -ENAMETOOLONG;
	unsigned i = dir_slot(dir);
	int cacheable = len < sizeof t->dir_cache[0].path;
	if (cacheable && t->dir_cache[i].gen == dir_gen && !strcmp(t->dir_cache[i].path, dir))
		return t->dir_cache[i].state;
	int state;
	if (!strcmp(dir, ".")) {
		int mk = marked(up->fd);
		if (mk < 0) return mk;
		state = mk ? DIR_LOWER : DIR_UPPER;
	} else {
		char parent[SN_PATH_MAX];
		const char *slash = strrchr(dir, '/');
		if (slash) { memcpy(parent, dir, slash - dir); parent[slash - dir] = 0; }
		else strcpy(parent, ".");
		state = dir_state(t, up, parent, depth + 1);
		if (state == DIR_UPPER) {
			struct stat st;
			int fd = confined_open(up->fd, dir);
			if (fd < 0) return fd;
			if (fstat(fd, &st)) state = -errno;
			else if (is_placeholder(t, &st)) state = DIR_LOWER;    /* the lower one decides */
			else if (S_ISLNK(st.st_mode)) state = -ELOOP;
			else if (!S_ISDIR(st.st_mode)) state = -ENOTDIR;
			else {
				int mk = marked(fd);
				state = mk < 0 ? mk : mk ? DIR_LOWER : DIR_UPPER;
			}
			close(fd);
		}
	}
	if (cacheable && (state == DIR_UPPER || state == DIR_LOWER)) {
		memcpy(t->dir_cache[i].path, dir, len + 1);
		t->dir_cache[i].state = (unsigned char)state;
		t->dir_cache[i].gen = dir_gen;
	}
	return state;
}

/* rel of overlay whose upper layer is entry `ui`: an O_PATH fd on it and
 * *layer the entry of the layer holding it, or -errno.  A placeholder, or a
 * name in a directory not copied up, is the lower layer's. */
static int overlay_find(struct sn_table *t, int ui, const char *rel, int *layer, struct stat *st)
{
	struct sn_mount *up = &t->m[ui];
	int li = up->lower;
	if (li < 0) return -ENOENT;
	if (!strcmp(rel, ".")) {
		int s = dir_state(t, up, ".", 0);
		if (s < 0) return s;
		*layer = s == DIR_LOWER ? li : ui;
		int fd = fcntl(t->m[*layer].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) return -errno;
		if (fstat(fd, st)) { close(fd); return -EIO; }
		return fd;
	}
	char parent[SN_PATH_MAX];
	const char *slash = strrchr(rel, '/');
	if (slash) { memcpy(parent, rel, slash - rel); parent[slash - rel] = 0; }
	else strcpy(parent, ".");
	int s = dir_state(t, up, parent, 0);
	if (s < 0) return s;
	if (s == DIR_UPPER) {
		int fd = confined_open(up->fd, rel);
		if (fd < 0) return fd;
		if (fstat(fd, st)) { close(fd); return -EIO; }
		int lower = is_placeholder(t, st);
		if (!lower && S_ISDIR(st->st_mode)) {
			lower = marked(fd);
			if (lower < 0) { close(fd); return lower; }
		}
		if (!lower) { *layer = ui; return fd; }
		close(fd);
	}
	int fd = confined_open(t->m[li].fd, rel);
	if (fd < 0) return fd;
	if (fstat(fd, st)) { close(fd); return -EIO; }
	*layer = li;
	return fd;
}

/* Where a name rel of entry i (found there, or to be made there) can be
 * made or removed with nothing prepared first (Mount.prepare_change(CREATE
 * or REMOVE) would change nothing) and nothing of Python's to apply: the
 * entry whose host directory holds it -- i itself for a writable host
 * directory the fast path serves (a bind, a tmpfs; not a hidden path's
 * stand-in, not /dev/pts), an overlay's upper layer when rel's parent is a
 * complete directory there (a file of the lower layer has its placeholder
 * in it) -- or -1: Python's (a read-only mount's EROFS, a directory the
 * overlay must copy up first, a mount's root, a single file's mount). */
int sn_table_names_in_place(struct sn_table *t, int i, const char *rel)
{
	if (i < 0 || i >= t->n || !strcmp(rel, ".")) return -1;
	/* a mount rooted below its host directory (a single file's, a hidden
	 * stand-in's): its one name is its root, Python's to refuse (EBUSY) */
	if (strcmp(t->m[i].root_rel, ".")) return -1;
	if (t->m[i].kind == SN_MOUNT_LOWER) i--;          /* an overlay: upper, then lower */
	struct sn_mount *m = &t->m[i];
	if (!m->fast || m->readonly) return -1;
	if (m->kind == SN_MOUNT_DIR) return i;
	if (m->kind != SN_MOUNT_UPPER) return -1;
	char parent[SN_PATH_MAX];
	const char *slash = strrchr(rel, '/');
	if (strlen(rel) >= sizeof parent) return -1;
	if (slash) { memcpy(parent, rel, slash - rel); parent[slash - rel] = 0; }
	else strcpy(parent, ".");
	return dir_state(t, m, parent, 0) == DIR_UPPER ? i : -1;
}

/* rel in entry `i`, whose backend is the C walk's: an O_PATH fd and the
 * entry of the backing holding it (an overlay's layer), or -errno. */
static int find(struct sn_table *t, int i, const char *rel, int *backing, struct stat *st)
{
	struct sn_mount *m = &t->m[i];
	if (m->kind == SN_MOUNT_UPPER || m->kind == SN_MOUNT_LOWER)
		return overlay_find(t, m->kind == SN_MOUNT_UPPER ? i : i - 1, rel, backing, st);
	if (m->kind == SN_MOUNT_DEV && strcmp(rel, ".") && !sn_dev_name_in(t->dev_names, rel))
		return -ENOENT;
	int fd;
	if (!strcmp(rel, ".")) {
		fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) return -errno;
	} else {
		fd = confined_open(m->fd, rel);
		if (fd < 0) return fd;
	}
	if (fstat(fd, st)) { close(fd); return -EIO; }
	*backing = i;
	return fd;
}

/* rel in entry i, for Python (an overlay's lookups: OverlayMount.find):
 * an O_PATH fd and *backing, or -errno. */
int sn_table_find(struct sn_table *t, int i, const char *rel, int *backing)
{
	struct stat st;
	if (i < 0 || i >= t->n) return -EINVAL;
	return find(t, i, rel, backing, &st);
}

/* ---- the host's check on the guest's host process ---------------------------- */

/* The guest's host process: the Sentry's own uid, gid and groups, with no
 * capability (design notes §1).  The host checks its opens with the kernel's
 * generic_permission on these, which sn_host_may_open repeats from the mode
 * bits (POSIX ACLs are not read: a file with one may be decided differently,
 * which costs a trip to Python or gives the host's EACCES, never access the
 * host would refuse). */
static uint32_t host_uid, host_gid, host_groups[64];
static int host_ngroups;

void sn_set_host_ids(uint32_t uid, uint32_t gid, const uint32_t *groups, int n)
{
	host_uid = uid;
	host_gid = gid;
	host_ngroups = n < 0 ? 0 : n > 64 ? 64 : n;
	for (int i = 0; i < host_ngroups; i++) host_groups[i] = groups[i];
}

/* want (4 read, 2 write, 1 search/exec) of a file of this mode and owner */
static int host_permits(uint32_t mode, uint32_t uid, uint32_t gid, int want)
{
	uint32_t bits = mode;
	if (uid == host_uid) bits = mode >> 6;
	else {
		int in = gid == host_gid;
		for (int i = 0; !in && i < host_ngroups; i++) in = host_groups[i] == gid;
		if (in) bits = mode >> 3;
	}
	return (bits & (uint32_t)want) == (uint32_t)want;
}

/* Directories the guest's host process was found free to search, up to a
 * path's last name, and for a creation to write in: (backing root fd, that
 * directory, what was asked of it), the root and every directory on the way
 * checked.  An ordinary open, or creation, of the same directory's files then
 * stats nothing.  Only positive answers are kept, and only while nothing
 * changed a directory's mode, owner or name: sn_wait forgets them all before
 * and after every stop Python sees (a rename, a mount, a copy-up), the fast
 * path's chmod, chown and rmdir forget them too, and after HOST_MEMO_USES
 * answers, so a change made outside the sandbox is seen soon too. */
#define HOST_MEMO 512
#define HOST_MEMO_USES 4096
static struct { int rootfd; unsigned gen; int want; char dir[228]; } host_memo[HOST_MEMO];
static unsigned host_gen = 1, host_uses;

void sn_host_forget(void)
{
	host_gen++;
	host_uses = 0;
}

static unsigned host_slot(int rootfd, const char *dir, size_t n)
{
	unsigned h = 2166136261u ^ (unsigned)rootfd;
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)dir[i]) * 16777619u;
	return h % HOST_MEMO;
}

/* Whether the guest's host process may walk rel from the backing's root
 * fd, as its confined openat2 does: search on the root and on every
 * directory before rel's last name, and `want_parent` too on the last of
 * them.  0 when refused or unknown (a component gone or not a directory:
 * the guest's own open then fails as it would). */
static int host_may_walk(int rootfd, const char *rel, int want_parent)
{
	char prefix[SN_PATH_MAX];
	struct stat st;
	if (strlen(rel) >= sizeof prefix) return 0;
	const char *last = strrchr(rel, '/');
	size_t dn = last ? (size_t)(last - rel) : 0;
	unsigned slot = host_slot(rootfd, rel, dn);
	int memo = dn < sizeof host_memo[0].dir;
	if (memo && host_memo[slot].gen == host_gen && host_memo[slot].rootfd == rootfd
	    && (host_memo[slot].want & want_parent) == want_parent
	    && !strncmp(host_memo[slot].dir, rel, dn) && !host_memo[slot].dir[dn]) {
		if (++host_uses < HOST_MEMO_USES) return 1;
		sn_host_forget();
	}
	const char *slash = strchr(rel, '/');
	if (fstat(rootfd, &st)) return 0;
	if (!host_permits(st.st_mode, st.st_uid, st.st_gid, 1 | (slash ? 0 : want_parent))) return 0;
	while (slash) {
		size_t n = slash - rel;
		memcpy(prefix, rel, n);
		prefix[n] = 0;
		slash = strchr(slash + 1, '/');
		if (fstatat(rootfd, prefix, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)) return 0;
		if (!host_permits(st.st_mode, st.st_uid, st.st_gid, 1 | (slash ? 0 : want_parent))) return 0;
	}
	if (memo) {
		host_memo[slot].rootfd = rootfd;
		host_memo[slot].gen = host_gen;
		host_memo[slot].want = want_parent;
		memcpy(host_memo[slot].dir, rel, dn);
		host_memo[slot].dir[dn] = 0;
	}
	return 1;
}

/* The one prediction of the host's check on an open the guest's host
 * process makes of rel below the backing's root fd (the C fast path and
 * syscalls/file.py both ask it): 1 the host allows it, 0 it refuses (or
 * cannot tell: the caller then takes the slow, exact way).  exists: rel
 * names a file of this mode and owner (its lstat, host ids); otherwise the
 * open creates it in rel's parent.  O_TMPFILE: rel is the directory, which
 * must be writable and searchable.  The file's own bits come first: when
 * they refuse, nothing is walked. */
int sn_host_may_open(int rootfd, const char *rel, uint64_t flags, int exists, uint32_t mode, uint32_t uid,
		     uint32_t gid)
{
	if ((flags & SN_O_TMPFILE) == SN_O_TMPFILE)
		return host_permits(mode, uid, gid, 2 | 1) && host_may_walk(rootfd, rel, 0);
	if (!exists) return host_may_walk(rootfd, rel, 2 | 1);
	int want = 0;
	if (!(flags & O_PATH_)) {
		if ((flags & O_ACCMODE) != O_WRONLY) want |= 4;
		if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) want |= 2;
	}
	if (want && !host_permits(mode, uid, gid, want)) return 0;
	return host_may_walk(rootfd, rel, 0);
}

/* ---- the walk -------------------------------------------------------------- */

/* The next name in the walk's remaining path, "." skipped: its start and
 * length; *last when nothing but "/" and "." follows it, *dir when such a
 * "/" does (the name must then be a directory, and is followed). */
static int next_name(struct sn_walk *w, const char **c, size_t *n, int *last, int *dir)
{
	const char *p = w->todo + w->pos;
	for (;;) {
		while (*p == '/') p++;
		if (p[0] == '.' && (p[1] == '/' || !p[1])) { p++; continue; }
		break;
	}
	if (!*p) return 0;
	const char *e = strchrnul(p, '/');
	*c = p;
	*n = e - p;
	const char *q = e;
	for (;;) {
		while (*q == '/') q++;
		if (q[0] == '.' && (q[1] == '/' || !q[1])) { q++; continue; }
		break;
	}
	*last = !*q;
	*dir = *last && *e;
	return 1;
}

static void consume(struct sn_walk *w, const char *c, size_t n)
{
	w->pos = (c - w->todo) + n;
	w->searched = 0;
}

/* stack + "/" + name, into out */
static int join(char *out, size_t size, const char *stack, const char *c, size_t n)
{
	size_t sl = strlen(stack);
	if (sl + 1 + n + 1 > size) return -ENAMETOOLONG;
	memcpy(out, stack, sl);
	out[sl] = '/';
	memcpy(out + sl + 1, c, n);
	out[sl + 1 + n] = 0;
	return 0;
}

void sn_walk_init(struct sn_walk *w, const char *start, const char *path, int flags, int scope)
{
	w->flags = flags;
	w->scope = scope;
	w->started = w->answered = w->searched = w->links = w->nseen = w->python = 0;
	w->fd = -1;
	w->pos = 0;
	w->err = 0;
	w->base = -1;
	w->root_len = 0;
	w->stack[0] = 0;
	size_t pl = strlen(path);
	if (!pl) { w->err = ENOENT; return; }
	if (pl >= SN_PATH_MAX) { w->err = ENAMETOOLONG; return; }
	if (path[0] == '/' && (scope & SN_RESOLVE_BENEATH)) { w->err = EXDEV; return; }
	/* openat2's RESOLVE_BENEATH and RESOLVE_IN_ROOT make the start (the
	 * dirfd's directory) the root that ".." and absolute paths stop at */
	int scoped = scope & (SN_RESOLVE_BENEATH | SN_RESOLVE_IN_ROOT | SN_RESOLVE_CHROOT);
	if ((path[0] != '/' || scoped) && strcmp(start, "/")) {
		if (strlen(start) >= sizeof w->stack) { w->err = ENAMETOOLONG; return; }
		strcpy(w->stack, start);
		if (scoped) w->root_len = strlen(start);
	}
	strcpy(w->todo, path);
}

static int finish(struct sn_table *t, struct sn_walk *w);

/* Resolved: entry `index`, rel, spath, fd (or -1 and exists 0) and its lstat
 * (unless Python found it). */
static int done(struct sn_table *t, struct sn_walk *w, int index, const char *rel, const char *spath, int fd,
		int exists, const struct stat *st)
{
	_Static_assert(sizeof(struct stat) == sizeof w->st, "struct stat is 144 bytes on x86-64");
	if (st) memcpy(w->st, st, sizeof w->st);
	w->index = index;
	if (rel != w->rel) snprintf(w->rel, sizeof w->rel, "%s", rel);
	if (spath != w->spath) snprintf(w->spath, sizeof w->spath, "%s", spath[0] ? spath : "/");
	else if (!w->spath[0]) strcpy(w->spath, "/");
	w->fd = fd;
	w->exists = exists;
	return finish(t, w);
}

/* The walk needs Python for one name (or the final directory). */
static int ask(struct sn_walk *w, int index, const char *rel, const char *spath, int final, int follows)
{
	w->follows = follows;
	if (!(w->flags & SN_WALK_CALLBACKS)) return SN_WALK_DECLINE;
	w->index = index;
	snprintf(w->rel, sizeof w->rel, "%s", rel);
	snprintf(w->spath, sizeof w->spath, "%s", spath[0] ? spath : "/");
	w->final = final;
	return SN_WALK_LOOKUP;
}

/* A directory reached with no name to look up: "/", ".", "a/..". */
static int at_stack(struct sn_table *t, struct sn_walk *w)
{
	const char *spath = w->stack[0] ? w->stack : "/";
	char rel[SN_PATH_MAX];
	int i = sn_locate(t, spath, rel, sizeof rel);
	if (i < 0) return -ENOENT;
	if (t->m[i].kind == SN_MOUNT_PYTHON) {
		if (!w->answered) return ask(w, i, rel, spath, 1, 0);
		w->answered = 0;
		if (w->ans == SN_ANS_ABSENT) return -ENOENT;
		w->python = 1;
		return done(t, w, w->ans_index, rel, spath, -1, 1, NULL);
	}
	struct stat st;
	int b;
	int fd = find(t, i, rel, &b, &st);
	if (fd < 0) return fd;
	return done(t, w, b, rel, spath, fd, 1, &st);
}

/* The names from *c on, up to a "..", in one lookup when they all lie in
 * entry i (no other mount's root among them): found, every name but the
 * last is a directory and none a symlink -- what the walk would meet name by
 * name -- and the walk moves on to the last (*c, *n, *last, *want_dir, cand,
 * rel, w->stack and w->pos are then the last name's), with its fd.  -1: take
 * the names one by one (a symlink on the way, an error to place exactly);
 * *err set: the walk's answer is that error. */
static int run(struct sn_table *t, struct sn_walk *w, int i, char *cand, char *rel,
	       const char **c, size_t *n, int *last, int *want_dir, int *backing, struct stat *st, int *err)
{
	char s[SN_PATH_MAX], srel[SN_PATH_MAX];
	size_t sl = strlen(cand);
	memcpy(s, cand, sl + 1);
	const char *saved = w->todo + w->pos;
	w->pos = (*c - w->todo) + *n;
	const char *lc = *c, *nc;
	size_t ln = *n, nn;
	int count = 1, nlast = 0, ndir = 0;
	while (next_name(w, &nc, &nn, &nlast, &ndir)) {
		if ((nn == 2 && nc[0] == '.' && nc[1] == '.') || nn > NAME_MAX_ || sl + 1 + nn + 1 > sizeof s) break;
		s[sl] = '/';
		memcpy(s + sl + 1, nc, nn);
		sl += 1 + nn;
		s[sl] = 0;
		lc = nc;
		ln = nn;
		count++;
		w->pos = (nc - w->todo) + nn;
		if (nlast) break;
	}
	w->pos = saved - w->todo;
	if (count < 2 || sn_locate(t, s, srel, sizeof srel) != i) return -1;
	int fd = find(t, i, srel, backing, st);
	if (fd == -ENOENT || fd == -ENOTDIR) {
		/* met before any symlink (the kernel stops at one with ELOOP
		 * first), so met name by name too, at the same place: the answer,
		 * unless it may be the last name's absence, to be created */
		const char *x;
		size_t xn;
		int xl, xd;
		w->pos = lc - w->todo;
		next_name(w, &x, &xn, &xl, &xd);
		w->pos = saved - w->todo;
		if (fd == -ENOTDIR || !xl || (w->flags & SN_WALK_MUST_EXIST)) *err = fd;
		return -1;
	}
	if (fd < 0) return -1;
	/* on to the run's last name */
	size_t parent = sl - ln - 1;
	memcpy(w->stack, s, parent);
	w->stack[parent] = 0;
	strcpy(cand, s);
	strcpy(rel, srel);
	*c = lc;
	*n = ln;
	/* the run's last name is the path's last only if nothing follows it */
	w->pos = lc - w->todo;
	const char *x;
	size_t xn;
	next_name(w, &x, &xn, last, want_dir);
	return fd;
}

int sn_walk(struct sn_table *t, struct sn_walk *w)
{
	char cand[SN_PATH_MAX], rel[SN_PATH_MAX];
	if (w->err) return -w->err;
	if (!w->started) {
		w->started = 1;
		/* the memo names absolute paths; a relative one starts from a
		 * directory the walk resolved, with no symlink in its path */
		/* not for a guest checked at each directory: a memo skips the
		 * link's own directories, which it must be allowed to search */
		if (w->todo[0] == '/' && !w->scope && !(w->flags & SN_WALK_SEARCH))
			substitute_links(t, w->todo, sizeof w->todo, w->flags & SN_WALK_FOLLOW);
		if (w->scope & SN_RESOLVE_NO_XDEV) {
			w->base = sn_locate(t, w->stack[0] ? w->stack : "/", rel, sizeof rel);
			if (w->base < 0) return -ENOENT;
		}
	}
	int follow = w->flags & SN_WALK_FOLLOW;
	for (;;) {
		const char *c;
		size_t n;
		int last, want_dir;
		if (!next_name(w, &c, &n, &last, &want_dir)) return at_stack(t, w);
		if (n > NAME_MAX_) return -ENAMETOOLONG;
		if ((w->flags & SN_WALK_SEARCH) && !w->searched) {
			if (!(w->flags & SN_WALK_CALLBACKS)) return SN_WALK_DECLINE;
			w->searched = 1;
			snprintf(w->spath, sizeof w->spath, "%s", w->stack[0] ? w->stack : "/");
			return SN_WALK_SEARCH_DIR;
		}
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			if (strlen(w->stack) > w->root_len) *strrchr(w->stack, '/') = 0;
			else if (w->scope & SN_RESOLVE_BENEATH) return -EXDEV;
			consume(w, c, n);
			if (w->base >= 0 && sn_locate(t, w->stack[0] ? w->stack : "/", rel, sizeof rel) != w->base)
				return -EXDEV;
			continue;
		}
		int r = join(cand, sizeof cand, w->stack, c, n);
		if (r) return r;
		int i = sn_locate(t, cand, rel, sizeof rel);
		if (i < 0) return -ENOENT;
		if (w->base >= 0 && i != w->base) return -EXDEV;
		int backing = i, fd = -1, kind, py = t->m[i].kind == SN_MOUNT_PYTHON;
		struct stat st;
		char target[SN_PATH_MAX];
		target[0] = 0;
		if (py) {
			if (!w->answered) return ask(w, i, rel, cand, last, !last || follow || want_dir);
			kind = w->ans;
			backing = w->ans_index;
		} else {
			fd = -1;
			if (!last && !(w->flags & SN_WALK_SEARCH) && !w->scope && t->m[i].kind != SN_MOUNT_DEV) {
				int err = 0;
				fd = run(t, w, i, cand, rel, &c, &n, &last, &want_dir, &backing, &st, &err);
				if (err) return err;
			}
			if (fd == -1 && !last && !strcmp(rel, ".")
			    && (t->m[i].kind == SN_MOUNT_DIR || t->m[i].kind == SN_MOUNT_DEV)) {
				/* a mount's root on the way (never a symlink): its
				 * type is all the walk needs of it, not an fd */
				if (fstat(t->m[i].fd, &st)) return -EIO;
				backing = i;
				kind = S_ISDIR(st.st_mode) ? SN_ANS_DIR : SN_ANS_OTHER;
			} else {
				if (fd == -1)
					fd = find(t, i, rel, &backing, &st);
				if (fd == -ENOENT) kind = SN_ANS_ABSENT;
				else if (fd < 0) return fd;
				else if (S_ISLNK(st.st_mode)) kind = SN_ANS_LINK;
				else kind = S_ISDIR(st.st_mode) ? SN_ANS_DIR : SN_ANS_OTHER;
			}
		}
		if (py && !((kind == SN_ANS_LINK || kind == SN_ANS_MAGIC) && (!last || follow || want_dir)))
			w->answered = 0;
		if (kind == SN_ANS_ABSENT) {
			/* to be created: a trailing "/" is the caller's to judge
			 * (mkdir takes it, open(O_CREAT) says EISDIR) */
			if (last && !(w->flags & SN_WALK_MUST_EXIST)) {
				w->python = py;
				return done(t, w, i, rel, cand, -1, 0, NULL);
			}
			return -ENOENT;
		}
		if ((kind == SN_ANS_LINK || kind == SN_ANS_MAGIC) && (!last || follow || want_dir)) {
			int err = 0;
			if (w->scope & SN_RESOLVE_NO_SYMLINKS) err = -ELOOP;
			else if (kind == SN_ANS_MAGIC && (w->scope & SN_RESOLVE_NO_MAGICLINKS)) err = -ELOOP;
			else if (kind == SN_ANS_MAGIC && (w->scope & (SN_RESOLVE_BENEATH | SN_RESOLVE_IN_ROOT))) err = -EXDEV;
			else if (w->links + 1 > MAX_LINKS_FOLLOWED) err = -ELOOP;
			if (err) {
				if (fd >= 0) close(fd);
				w->answered = 0;
				return err;
			}
			if (py && w->answered == 1) {
				/* Python reads the link only once the walk follows it
				 * (/proc/<pid>/fd/N is checked then) */
				w->index = i;
				snprintf(w->rel, sizeof w->rel, "%s", rel);
				snprintf(w->spath, sizeof w->spath, "%s", cand);
				return SN_WALK_READLINK;
			}
			w->links++;
			if (py) {
				w->answered = 0;
				snprintf(target, sizeof target, "%s", w->target);
			} else {
				ssize_t tl = readlinkat(fd, "", target, sizeof target - 1);
				close(fd);
				if (tl < 0) return -errno;
				target[tl] = 0;
			}
			if (w->nseen < SN_WALK_SEEN && !py && strlen(cand) < sizeof w->seen[0])
				strcpy(w->seen[w->nseen++], cand);
			else if (py)
				w->nseen = SN_WALK_SEEN + 1;     /* who asks matters: remember none */
			/* the rest of the path after the link's target */
			size_t tl = strlen(target), rest = strlen(c + n);
			if (!tl) return -ENOENT;
			if (tl + 1 + rest + 1 > sizeof w->todo) return -ENAMETOOLONG;
			size_t sep = rest ? 1 : 0;      /* "link" ends the path: the target's own "/" counts */
			memmove(w->todo + tl + sep, c + n, rest + 1);
			memcpy(w->todo, target, tl);
			if (sep) w->todo[tl] = '/';
			w->pos = 0;
			w->searched = 0;
			if (target[0] == '/') {
				if (w->scope & SN_RESOLVE_BENEATH) return -EXDEV;
				w->stack[w->root_len] = 0;
				if (w->base >= 0 && sn_locate(t, w->stack[0] ? w->stack : "/", rel, sizeof rel) != w->base)
					return -EXDEV;
			}
			continue;
		}
		if ((!last || want_dir) && kind != SN_ANS_DIR) {
			if (fd >= 0) close(fd);
			return -ENOTDIR;
		}
		consume(w, c, n);
		strcpy(w->stack, cand);
		if (last) {
			w->python = py;
			return done(t, w, backing, rel, cand, fd, 1, py ? NULL : &st);
		}
		if (fd >= 0) close(fd);
	}
}

/* After a walk: remember where the symlinks it followed lead, if nothing
 * Python serves was on the way (what /proc/self/... means depends on who
 * asks). */
static int finish(struct sn_table *t, struct sn_walk *w)
{
	if (!(w->flags & SN_WALK_RECORD) || w->nseen > SN_WALK_SEEN) return SN_WALK_DONE;
	static struct sn_walk sub;          /* the Sentry is one thread; this never nests */
	for (int k = 0; k < w->nseen; k++) {
		int known = 0;
		for (int j = 0; j < t->nlinks && !known; j++) known = !strcmp(t->links[j].from, w->seen[k]);
		if (known) continue;
		sn_walk_init(&sub, "/", w->seen[k], SN_WALK_FOLLOW | SN_WALK_MUST_EXIST, 0);
		if (sn_walk(t, &sub) == SN_WALK_DONE) {
			if (sub.fd >= 0) close(sub.fd);
			if (sub.nseen <= SN_WALK_SEEN && t->m[sub.index].kind != SN_MOUNT_PYTHON)
				sn_table_add_link(t, w->seen[k], sub.spath);
		}
	}
	return SN_WALK_DONE;
}
