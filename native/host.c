/*
 * Host syscalls the Sentry makes for itself that Python's os module does not
 * wrap (or wraps only from 3.12).  Each returns the call's result, or -errno:
 * one convention, as everywhere in native/.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "tracer.h"

static long result(long r)
{
	return r < 0 ? -errno : r;
}

long sn_mount(const char *source, const char *target, const char *fstype,
	      unsigned long flags, const char *data)
{
	return result(mount(source, target, fstype, flags, data));
}

long sn_unshare(int flags)
{
	return result(unshare(flags));
}

long sn_setns(int fd, int nstype)
{
	return result(setns(fd, nstype));
}

long sn_pivot_root(const char *new_root, const char *put_old)
{
	return result(syscall(SYS_pivot_root, new_root, put_old));
}

long sn_umount2(const char *target, int flags)
{
	return result(umount2(target, flags));
}

long sn_prctl(int option, unsigned long arg2, unsigned long arg3)
{
	return result(prctl(option, arg2, arg3, 0, 0));
}

long sn_prctl_str(int option, const char *arg2)
{
	return result(prctl(option, arg2, 0, 0, 0));
}

/* The caller's own capability sets, version 3: effective, permitted and
 * inheritable of the low 32 capabilities, then of the high ones. */
long sn_capget(uint32_t data[6])
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return result(syscall(SYS_capget, &header, (struct __user_cap_data_struct *)data));
}

long sn_capset(const uint32_t data[6])
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return result(syscall(SYS_capset, &header, (const struct __user_cap_data_struct *)data));
}

long sn_tgkill(int tgid, int tid, int sig)
{
	return result(syscall(SYS_tgkill, tgid, tid, sig));
}

long sn_kcmp_file(int pid1, int pid2, int fd1, int fd2)
{
	return result(syscall(SYS_kcmp, pid1, pid2, 0 /* KCMP_FILE */, fd1, fd2));
}

long sn_inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	return result(inotify_add_watch(fd, path, mask));
}

long sn_rt_sigqueueinfo(int tgid, int sig, const char *info)
{
	return result(syscall(SYS_rt_sigqueueinfo, tgid, sig, info));
}

long sn_pidfd_send_signal(int pidfd, int sig, const char *info, unsigned flags)
{
	return result(syscall(SYS_pidfd_send_signal, pidfd, sig, info, flags));
}

long sn_connect(int fd, const char *addr, unsigned len)
{
	return result(connect(fd, (const struct sockaddr *)addr, len));
}

/* The kernel's own sockaddr bytes for a socket's name, *len the room in addr
 * on entry and the name's full length on return (as getsockname(2)). */
long sn_getsockname(int fd, char *addr, unsigned *len)
{
	socklen_t n = *len;
	long r = result(getsockname(fd, (struct sockaddr *)addr, &n));
	*len = n;
	return r;
}

/* A guest's timerfd, borrowed, set with a time the Sentry converted: its
 * struct itimerspecs raw (32 bytes each), old may be NULL. */
long sn_timerfd_settime(int fd, int flags, const char *new_, char *old)
{
	return result(syscall(SYS_timerfd_settime, fd, flags, new_, old));
}

/* The machine's struct sysinfo (112 bytes), as the Sentry's own call sees it. */
long sn_sysinfo(char *info)
{
	return result(syscall(SYS_sysinfo, info));
}
