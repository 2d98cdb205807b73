/* Declarations shared by the C files of native/ and the cffi cdef in build.py:
 * the interface between Python and C, with resolve.h (the path walk's). */
#ifndef SENTRY_TRACER_H
#define SENTRY_TRACER_H
#include <stdint.h>
#include <stddef.h>

#define SN_MAX_SYSCALL 512
#define SN_MAX_MOUNTS 20
#define SN_HIDDEN_FD_BASE 1000   /* = sentry.vfs.mount.HIDDEN_FD_BASE */

/* struct user_regs_struct, x86-64 */
typedef struct {
	uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx,
		rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base,
		ds, es, fs, gs;
} sn_regs;

enum sn_kind {
	SN_EXITED = 1, SN_SIGNALED, SN_SECCOMP, SN_SYSCALL_EXIT, SN_FORK, SN_VFORK,
	SN_CLONE, SN_EXEC, SN_EXIT, SN_VFORK_DONE, SN_GROUP_STOP, SN_NEW_STOP,
	SN_SIGNAL, SN_OTHER_EVENT, SN_GONE
};

/* sn_event.code of an SN_SECCOMP stop that C would have answered but for a
 * staging slot: the area is to be mapped first */
#define SN_STAGING_FIRST 1

typedef struct {
	int tid;
	int kind;
	int status;
	int sig;
	int code;           /* SN_EXITED: exit code, SN_SIGNALED: signal, SN_SECCOMP: SN_STAGING_FIRST or 0 */
	unsigned long msg;
	sn_regs regs;
} sn_event;

typedef struct {
	uint64_t seccomp_stops, fast_allowed, fast_denied, killed_foreign, fast_paths;
	uint64_t python_exit_stops, python_other_stops;   /* syscall-exit and other stops Python served */
	uint64_t staging_first;     /* seccomp stops C would have answered but for a staging slot (SN_STAGING_FIRST) */
	uint64_t c_other_stops;     /* new tasks' first stops and SIGCHLD deliveries C served */
	uint64_t staging_in_c;      /* staging areas C mapped for a new image's first call */
} sn_counters;

/* One task's ids as the guest sees them (native/identity.c). */
typedef struct {
	int vtid, vpid, vppid, vpgrp;
	uint32_t ruid, euid, suid, rgid, egid, sgid;
	int checks_files;   /* the Sentry checks file permissions: no path fast path */
	int foreign_creator; /* what it creates is given other ids than the Sentry's: no O_CREAT here */
	int chown_any;      /* holds CAP_CHOWN: its chown needs no owner check (fchown here) */
	int dumps_core;     /* its RLIMIT_CORE allows a core: its death by SIGSEGV & co shows WCOREDUMP */
	int chrooted;       /* it has a root or a mount table of its own (chroot(2), a mount
	                     * namespace a guest made): no path fast path */
	int nested_pidns;   /* it is in a PID namespace below the sandbox's, or makes its children
	                     * in one: its pid calls and clone3 are Python's */
	int id_view;        /* it is in a user namespace below the sandbox's: the ids it reads
	                     * (its own, a stat's) are that namespace's view, Python's */
	int files_alone;    /* no other task shares its fd table (Process.alone): a number
	                     * it names cannot change while it is stopped (fastnet.c) */
} sn_ident;

void sn_set_staging(uint64_t base, uint64_t size);
void sn_set_mm_check(int nr, int on);
void sn_set_statx_null(int ok);
void sn_get_counters(sn_counters *out);
uint64_t sn_traps_of(int nr);
uint64_t sn_python_stops_of(int nr);
long sn_ptrace(int req, int tid, uint64_t addr, uint64_t data);
int sn_getregs(int tid, sn_regs *regs);
int sn_setregs(int tid, const sn_regs *regs);
int sn_wait(sn_event *ev);
int sn_take_queued(int tid);
long sn_read_mem(int tid, uint64_t addr, void *buf, size_t len);
long sn_read_string(int tid, uint64_t addr, char *buf, size_t max);
long sn_write_mem(int memfd, uint64_t addr, const void *buf, size_t len);
long sn_write_vm(int tid, uint64_t addr, const void *buf, size_t len);
int sn_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
long sn_fstatat(int dirfd, const char *name, int flags, void *buf144);
long sn_statx(int dirfd, const char *name, int flags, unsigned mask, void *buf256);
long sn_fstatfs(int fd, void *buf120);
long sn_renameat2(int olddir, const char *old, int newdir, const char *new_, unsigned flags);
long sn_utimensat(int dirfd, const char *name, const void *times, int flags);
long sn_fchownat(int dirfd, const char *name, unsigned uid, unsigned gid, int flags);
long sn_pidfd_getfd(int pidfd, int fd);
void sn_answer(int tid, sn_regs *r, long value);
/* identity.c */
void sn_set_ident(int tid, const sn_ident *id);
int sn_ident_answer(int tid, sn_regs *r);
int sn_ident_exit(int tid, sn_regs *r);
int sn_exit_pid(int tid, int child, int vchild);
int sn_exit_pending(int tid);
int sn_ident_checks_files(int tid);
int sn_ident_chrooted(int tid);
int sn_ident_foreign_creator(int tid);
int sn_ident_chown_any(int tid);
int sn_ident_id_view(int tid);
int sn_ident_files_alone(int tid);
void sn_mark_core_dump(int tid, uint64_t addr);
void sn_sigchld_to_python(int on);
void sn_signals_to_python(int tid, int on);
int sn_start_child(int tid, uint64_t addr, int value, int regs, uint64_t rdi, uint64_t rsi);
void sn_ident_gone(int tid);
int sn_ident_first_stop(int tid);
void sn_park_first_stops(int on);
int sn_unpark(int tid);
int sn_ident_sigchld(int tid);
int sn_ident_restore_at_exit(int tid, uint64_t rdi, uint64_t rsi);
int sn_restore_args_at_exit(int tid, unsigned mask, const uint64_t args[6]);
unsigned sn_exit_to_python(int tid, uint64_t saved[6]);
/* clone3.c: clone3's arguments copied to the staging slot (sentry/kernel/clone.py) */
#define SN_CLONE_ARGS_VER0 64
#define SN_CLONE_ARGS_SIZE 88
#define SN_CLONE3_STAGED 104
int sn_fast_clone3(int tid, sn_regs *r);
/* image.c: the exec stop's check, fast path (sentry/loader/image.py) */
int sn_image_ok(int tid, uint64_t dev, uint64_t ino);
/* handover.c: the Sentry's files into a guest's fd table (platform/handover.py) */
uint64_t sn_handover_ip(void);
int sn_handover_filter(void);
long sn_handover_serve(int listener, int tid, int srcfd, int newfd, unsigned newfd_flags);
/* holder.c: the process whose fds guests name as magic links (platform/fdholder.py) */
void sn_holder_serve(int sock);
/* fastpath.c */
void sn_fast_enable(int on);
int sn_fast_enabled(void);
enum { SN_MOUNT_PYTHON, SN_MOUNT_DIR, SN_MOUNT_DEV, SN_MOUNT_UPPER, SN_MOUNT_LOWER };
int sn_add_mount(const char *path, const char *host_root, int fd, int guest_fd, int readonly, int kind);
void sn_set_dev_nodes(const char *names);
/* the guest's one-id user namespace (native/idmap.c): stats made for it show its ids */
void sn_set_idmap(uint32_t guest_uid, uint32_t host_uid, uint32_t guest_gid, uint32_t host_gid);
void sn_map_stat_ids(void *raw144);
void sn_map_statx_ids(void *raw256);
long sn_idmap_host(int is_gid, uint32_t guest);
void sn_set_slot(int tid, uint64_t addr);
long sn_stage(int tid, uint64_t addr, const void *buf, size_t len);
uint64_t sn_slot_of(int tid);
int sn_take_slot_missing(void);
/* sn_take_slot_missing(): why a fast path lacked its slot */
#define SN_SLOT_NONE 1
#define SN_SLOT_UNMAPPED 2
void sn_set_slot_unmapped(int tid, uint64_t addr);
int sn_slot_ready(int tid);
void sn_slot_now_mapped(int tid);
/* the staging area's mapping (platform/staging.py: PROT_READ, MAP_FLAGS) */
void sn_set_staging_mmap(int prot, int flags);
/* fastnet.c: sendto, sendmsg and connect to the sandbox's own addresses */
int sn_fast_net(int tid, sn_regs *r);
void sn_net_policy(int open, uint32_t addr, uint32_t mask, uint64_t netns_cookie);
int sn_add_link(const char *from, const char *to);
int sn_add_placeholder(uint64_t dev, uint64_t ino);
void sn_overlay_changed(void);
void sn_clear_links(void);
int sn_fast_path(int tid, sn_regs *r);
int sn_fast_resolve(const char *start, const char *path, int follow, int *index, char *rel_out, size_t size, void *st144);
/* host.c: host syscalls of the Sentry's own that Python's os does not wrap */
long sn_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data);
long sn_unshare(int flags);
long sn_setns(int fd, int nstype);
long sn_pivot_root(const char *new_root, const char *put_old);
long sn_umount2(const char *target, int flags);
long sn_prctl(int option, unsigned long arg2, unsigned long arg3);
long sn_prctl_str(int option, const char *arg2);
long sn_capget(uint32_t data[6]);
long sn_capset(const uint32_t data[6]);
long sn_tgkill(int tgid, int tid, int sig);
long sn_kcmp_file(int pid1, int pid2, int fd1, int fd2);
long sn_inotify_add_watch(int fd, const char *path, uint32_t mask);
long sn_rt_sigqueueinfo(int tgid, int sig, const char *info);
long sn_pidfd_send_signal(int pidfd, int sig, const char *info, unsigned flags);
long sn_connect(int fd, const char *addr, unsigned len);
long sn_getsockname(int fd, char *addr, unsigned *len);
long sn_timerfd_settime(int fd, int flags, const char *new_, char *old);
long sn_sysinfo(char *info);
/* selfconfine.c: the SIGSYS handler of the Sentry's own filter */
void sn_self_name(int nr, const char *name);
int sn_self_trap(const char *who, int code, int kill_pid);
long sn_self_probe(void);
#endif
