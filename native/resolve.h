/* The path walk (native/resolve.c): the mount table and the walk's state,
 * shared by Python (cffi, sentry/vfs/resolve.py) and the fast path. */
#ifndef SN_RESOLVE_H
#define SN_RESOLVE_H
#define SN_PATH_MAX 4096
#define SN_MAX_ENTRIES 160
#define SN_MAX_CACHED_LINKS 256
#define SN_DIR_CACHE 2048
#define SN_TODO_MAX 32768
#define SN_WALK_SEEN 8
#define SN_MAX_PLACEHOLDERS 64
/* sn_walk's flags */
#define SN_WALK_FOLLOW 1
#define SN_WALK_MUST_EXIST 2
#define SN_WALK_RECORD 4
#define SN_WALK_CALLBACKS 8
#define SN_WALK_SEARCH 16
/* sn_walk's answers: 0 resolved, -errno, or one of these */
#define SN_WALK_DONE 0
#define SN_WALK_LOOKUP 1
#define SN_WALK_SEARCH_DIR 2
#define SN_WALK_DECLINE 3
#define SN_WALK_READLINK 4
/* Python's answer to SN_WALK_LOOKUP */
#define SN_ANS_ABSENT 0
#define SN_ANS_DIR 1
#define SN_ANS_LINK 2
#define SN_ANS_OTHER 3
#define SN_ANS_MAGIC 4
/* openat2's RESOLVE_* flags, the guest's own (sn_walk_init's scope) */
#define SN_RESOLVE_NO_XDEV 1
#define SN_RESOLVE_NO_MAGICLINKS 2
#define SN_RESOLVE_NO_SYMLINKS 4
#define SN_RESOLVE_BENEATH 8
#define SN_RESOLVE_IN_ROOT 16
/* not openat2's: the process's root (chroot(2)), which ".." and absolute
 * paths stop at as for RESOLVE_IN_ROOT, magic links followed */
#define SN_RESOLVE_CHROOT 4096
/* open's O_TMPFILE (with O_DIRECTORY), for sn_host_may_open */
#define SN_O_TMPFILE 4259840

struct sn_mount {
	char path[256];
	size_t len;
	char root_rel[256];
	char host_root[4096];
	size_t host_len;
	int fd;
	int guest_fd;
	int readonly;
	int kind;
	int fast;
	int lower;
};

struct sn_link { char from[256]; char to[256]; size_t from_len; };
struct sn_dir_entry { char path[240]; unsigned gen; unsigned char state; };

struct sn_placeholder { uint64_t dev; uint64_t ino; };

struct sn_table {
	struct sn_mount m[160];
	int n;
	struct sn_link links[256];
	int nlinks;
	struct sn_dir_entry dir_cache[2048];
	char dev_names[1024];
	char fast_dev_names[256];
	struct sn_placeholder placeholders[64];
	int nplaceholders;
};

struct sn_walk {
	int flags;
	int err;
	int index;
	int fd;
	int exists;
	int final;
	int follows;
	int python;
	int ans;
	int ans_index;
	char st[144];
	char rel[4096];
	char spath[4096];
	char target[4096];
	int scope;
	int base;
	size_t root_len;
	int started;
	int answered;
	int searched;
	int links;
	int nseen;
	size_t pos;
	char stack[4096];
	char todo[32768];
	char seen[8][256];
};

struct sn_table *sn_table_new(void);
struct sn_table *sn_table_new_private(void);
void sn_table_free(struct sn_table *t);
void sn_table_reset(struct sn_table *t);
int sn_table_add(struct sn_table *t, const char *path, const char *root_rel, const char *host_root,
		 int fd, int guest_fd, int readonly, int kind, int fast);
void sn_table_set_dev(struct sn_table *t, const char *names, const char *fast_names);
int sn_table_add_link(struct sn_table *t, const char *from, const char *to);
void sn_table_clear_links(struct sn_table *t);
void sn_table_overlay_changed(struct sn_table *t);
int sn_table_add_placeholder(struct sn_table *t, uint64_t dev, uint64_t ino);
int sn_table_find(struct sn_table *t, int i, const char *rel, int *backing);
int sn_table_names_in_place(struct sn_table *t, int i, const char *rel);
int sn_locate(struct sn_table *t, const char *spath, char *rel, size_t size);
int sn_host_to_sandbox(struct sn_table *t, const char *host, char *out, size_t size);
int sn_dev_name_in(const char *list, const char *rel);
void sn_host_forget(void);
void sn_set_host_ids(uint32_t uid, uint32_t gid, const uint32_t *groups, int n);
int sn_host_may_open(int rootfd, const char *rel, uint64_t flags, int exists, uint32_t mode, uint32_t uid,
		     uint32_t gid);
void sn_walk_init(struct sn_walk *w, const char *start, const char *path, int flags, int scope);
int sn_walk(struct sn_table *t, struct sn_walk *w);
#endif
