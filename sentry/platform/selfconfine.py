"""The Sentry confines itself: after set-up, each long-lived process of a
sandbox (the Sentry, its mount namespace helper, its fd holder, its outbound
helper, its janitor) loads a seccomp
filter of its own that allows only the host syscalls that process makes, with
argument checks where BPF can make them cheaply, and drops the capabilities it
no longer uses.  A bug in the Sentry that a guest could steer towards a host
syscall nobody planned for then stops the sandbox instead of reaching the host
(gVisor's Sentry runs under its own allowlist for the same reason).

This module is the one source of the allowlists: the filters are built from
the tables below, and docs/sentry-allowlist.md is generated from them
(`python -m sentry.platform.selfconfine > docs/sentry-allowlist.md`).

What a forbidden call does:
  - the Sentry, the mount helper, the fd holder, the outbound helper and the
    port forwarder: SECCOMP_RET_TRAP, and a
    SIGSYS handler in C (native/selfconfine.c) writes one line naming the
    call on stderr and exits with SELF_FILTER_EXIT (a helper kills the Sentry
    first); guests die with the Sentry (PTRACE_O_EXITKILL);
  - the janitor, which outlives the Sentry with no stderr of its own:
    SECCOMP_RET_KILL_PROCESS, which the kernel records in its audit log
    (`dmesg`: `type=1326 ... syscall=N`).
SENTRY_SELF_FILTER=log (for debugging) turns every forbidden call into
SECCOMP_RET_LOG instead: the call runs, and the kernel's audit log names it.
"""
import errno
import os
import signal
import sys

from sentry.platform import privileges
from sentry.platform.libseccomp import pyseccomp, syscall_names

SELF_FILTER_EXIT = 124          # the Sentry's exit status after a forbidden call of its own
MODES = ("enforce", "log")
ENV = "SENTRY_SELF_FILTER"
PROBE_ENV = "SENTRY_TEST_SELF_FILTER_PROBE"     # test-only: make a forbidden call after confining

# ---- argument conditions ----------------------------------------------------


class Is:
    """Argument `index` equals `value` (under `mask`, when given); `text` is
    how the doc shows it."""

    def __init__(self, index, value, text, mask=None):
        self.index, self.value, self.text, self.mask = index, value, text, mask

    def arg(self, values):
        """values: what a named value (a str, known only at run time) stands for."""
        value = values[self.value] if isinstance(self.value, str) else self.value
        if self.mask is None:
            return pyseccomp.Arg(self.index, pyseccomp.EQ, value)
        return pyseccomp.Arg(self.index, pyseccomp.MASKED_EQ, self.mask, value)


def one_of(index, name, values):
    """Alternatives: argument `index` (called `name`) is one of values {text: value}."""
    return [(Is(index, v, f"{name} = {t}"),) for t, v in values.items()]


class Call:
    """One allowed syscall: why the process makes it; `only`: if given, the
    call is allowed only when one of these alternatives (each a tuple of Is,
    all of which must hold) matches."""

    def __init__(self, name, why, only=None):
        self.name, self.why, self.only = name, why, only


# ---- values named in the conditions -----------------------------------------

CLONE_FORK = 0x01200011          # CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | SIGCHLD: glibc's fork()
# the requests of platform/ptrace.py and native/tracer.c after the seize
PTRACE_REQUESTS = {"PTRACE_CONT": 7, "PTRACE_GETREGS": 12, "PTRACE_SETREGS": 13, "PTRACE_SYSCALL": 24,
                   "PTRACE_GETEVENTMSG": 0x4201, "PTRACE_GETSIGINFO": 0x4202, "PTRACE_SETSIGINFO": 0x4203,
                   "PTRACE_LISTEN": 0x4208}
# and the two registers an answer writes, by their offsets in struct user_regs_struct
PTRACE_POKEUSER = 6
POKED_REGISTERS = {"offsetof(rax)": 80, "offsetof(orig_rax)": 120}
IOCTL_REQUESTS = {
    "TCGETS": 0x5401,                       # isatty() of Python's io on every file it opens
    "TIOCGSID": 0x5429,                     # the session of the host terminal (syscalls/tty.py)
    "TIOCGPTN": 0x80045430,                 # the number of a guest's pty (syscalls/tty.py)
    "FS_IOC_GETFLAGS": 0x80086601, "FS_IOC_SETFLAGS": 0x40086602,      # chattr on a guest's file
    "FS_IOC32_GETFLAGS": 0x80046601, "FS_IOC32_SETFLAGS": 0x40046602,
    "FS_IOC_FSGETXATTR": 0x801C581F, "FS_IOC_FSSETXATTR": 0x401C5820,
    # the fd handover's listener (platform/handover.py)
    "SECCOMP_IOCTL_NOTIF_RECV": 0xC0502100, "SECCOMP_IOCTL_NOTIF_SEND": 0xC0182101,
    "SECCOMP_IOCTL_NOTIF_ADDFD": 0x40182103,
    # the flags of a sandbox interface a guest root's SIOCSIFFLAGS would change (net/links.py)
    "SIOCGIFFLAGS": 0x8913,
    # a guest's interface queries where it holds an outbound socket, on a socket of
    # the sandbox's namespace (net/hostsock.py)
    "SIOCGIFNAME": 0x8910, "SIOCGIFCONF": 0x8912, "SIOCGIFADDR": 0x8915, "SIOCGIFDSTADDR": 0x8917,
    "SIOCGIFBRDADDR": 0x8919, "SIOCGIFNETMASK": 0x891B, "SIOCGIFMETRIC": 0x891D, "SIOCGIFMTU": 0x8921,
    "SIOCGIFHWADDR": 0x8927, "SIOCGIFINDEX": 0x8933, "SIOCGIFTXQLEN": 0x8942, "SIOCGIFMAP": 0x8970,
}
# the host sockets the Sentry makes itself after set-up (sentry/net): outbound
# connections, the routing query of the outbound policy, sock_diag dumps
SOCKET_DOMAINS = {"AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}
FCNTL_COMMANDS = {"F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4,
                  "F_DUPFD_CLOEXEC": 1030}
# a guest's OFD locks on a shared fd table, taken on the Sentry's copy (syscalls/locks.py)
SENTRY_FCNTL_COMMANDS = dict(FCNTL_COMMANDS, F_OFD_GETLK=36, F_OFD_SETLK=37, F_SETLEASE=1024)
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
# what a guest may make in a network namespace of its own (vfs/mountns.py GUEST_FAMILIES)
GUEST_SOCKET_DOMAINS = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16}
MS_BIND, MS_REC = 0x1000, 0x4000


# ---- the allowlists ----------------------------------------------------------
# Derived by tracing the Sentry (strace on its own process, not its children)
# through the whole test suite (bench/ ran clean under the enforced filters),
# then reviewed one by one; calls a code path makes but no test reached are
# kept where the code shows them (named in the why).  Only
# calls after set-up count: the filter is loaded once the guest's first
# process is forked and the mounts are made.

# Calls every Python process of ours makes to run at all.
PYTHON_RUNTIME = [
    Call("read", "reads files, pipes and sockets"),
    Call("write", "the log, stderr, files it writes"),
    Call("close", "closes fds"),
    Call("fstat", "Python's io and os.fstat"),
    Call("newfstatat", "os.stat and friends"),
    Call("lseek", "Python's io"),
    Call("openat", "opens files (Python's own imports, the Sentry's files)"),
    Call("getdents64", "os.scandir, os.listdir"),
    Call("mmap", "the allocator"),
    Call("munmap", "the allocator"),
    Call("mprotect", "the allocator and ctypes/cffi closures"),
    Call("brk", "the allocator"),
    Call("mremap", "the allocator: realloc of a large (mmapped) block"),
    Call("madvise", "the allocator: giving freed pages back"),
    Call("rt_sigaction", "Python's signal handling"),
    Call("rt_sigreturn", "returns from a signal handler"),
    Call("getpid", "Python asks (os.getpid, signal handling)"),
    Call("geteuid", "whether it runs as root"),
    Call("getrandom", "Python's hash seed and random"),
    Call("clock_gettime", "time.monotonic, where the clock source offers no vDSO"),
    Call("exit_group", "exits"),
]

SENTRY = PYTHON_RUNTIME + [
    # the tracer loop
    Call("wait4", "the tracer loop: waitpid(-1, __WALL) for every guest stop"),
    Call("waitid", "whether a thread given an fd handover stopped instead (WNOWAIT)"),
    Call("poll", "waits for a thread's fd handover (platform/handover.py)"),
    Call("ptrace", "stops, inspects and resumes guests",
         one_of(0, "request", PTRACE_REQUESTS)
         # a call answered in C: its result and the skip (native/tracer.c sn_answer)
         + [(Is(0, PTRACE_POKEUSER, "request = PTRACE_POKEUSER"), Is(2, offset, f"addr = {reg}"))
            for reg, offset in POKED_REGISTERS.items()]),
    Call("process_vm_readv", "reads guest memory"),
    Call("process_vm_writev", "writes guest memory"),
    Call("pread64", "reads guest memory through /proc/<pid>/mem, files"),
    Call("pwrite64", "writes the read-only staging page through /proc/<pid>/mem"),
    Call("kill", "signals guests (kill emulated on virtual pids)"),
    Call("tgkill", "signals and kills guest threads"),
    Call("getpriority", "a guest task's nice value (getpriority and setpriority emulated)"),
    Call("setpriority", "a guest task's nice value, set with the guest's emulated CAP_SYS_NICE"),
    Call("rt_sigqueueinfo", "a guest's sigqueue, on host pids"),
    Call("rt_tgsigqueueinfo", "a guest's thread sigqueue, on host tids"),
    Call("kcmp", "whether two guest fds are one open file (record locks)"),
    Call("pidfd_open", "a guest's pidfd, to borrow its fds"),
    Call("pidfd_getfd", "borrows a guest's fd (fstat, fd paths, chattr on it)"),
    Call("pidfd_send_signal", "signals a guest process through its pidfd"),
    Call("sysinfo", "a guest's sysinfo, answered from the Sentry's own (syscalls/sysinfo.py)"),
    Call("timerfd_settime", "a guest's absolute timer in a time namespace, set on its borrowed timerfd"),
    # the file system: every guest path is resolved and acted on by the Sentry
    Call("openat2", "opens guest paths confined to a mount (RESOLVE_IN_ROOT)"),
    Call("statx", "stat of guest files"),
    Call("readlink", "fd paths in /proc/<tid>/fd, symlinks"),
    Call("readlinkat", "symlinks of guest paths"),
    Call("mkdir", "the overlay's directories, synthetic /proc"),
    Call("mkdirat", "guest directories"),
    Call("mknodat", "guest fifos and sockets, their overlay copy-up (a device node: EPERM, no CAP_MKNOD)"),
    Call("rename", "synthetic /proc files replaced atomically"),
    Call("renameat", "os.rename with dir_fd"),
    Call("renameat2", "guest renames, overlay copy-up"),
    Call("unlink", "synthetic /proc files"),
    Call("unlinkat", "guest unlink and rmdir, overlay whiteouts"),
    Call("rmdir", "synthetic /proc directories"),
    Call("linkat", "guest hard links, overlay copy-up"),
    Call("symlink", "synthetic /proc links"),
    Call("symlinkat", "guest symlinks"),
    Call("chmod", "emulated modes (through /proc/self/fd paths)"),
    Call("chown", "emulated owners (through /proc/self/fd paths)"),
    Call("fchownat", "emulated owners"),
    Call("utimensat", "guest utimes, copy-up keeps times"),
    Call("ftruncate", "guest truncate, copy-up"),
    Call("copy_file_range", "overlay copy-up"),
    Call("sendfile", "overlay copy-up where copy_file_range cannot"),
    Call("getxattr", "overlay marks, guest xattrs"),
    Call("setxattr", "overlay marks, guest xattrs"),
    Call("lsetxattr", "overlay marks, guest xattrs"),
    Call("fsetxattr", "guest xattrs"),
    Call("listxattr", "copy-up copies xattrs, guest xattrs"),
    Call("removexattr", "overlay marks, guest xattrs"),
    Call("fremovexattr", "guest xattrs"),
    Call("fstatfs", "statfs of guest files"),
    Call("inotify_add_watch", "a guest's watch, added on the path the Sentry confined"),
    Call("chdir", "back to / after a guest's unix socket bind"),
    Call("fchdir", "into the directory of a guest's unix socket to bind"),
    Call("fcntl", "fd flags; a guest's OFD locks on its copy of the fd",
         one_of(1, "cmd", SENTRY_FCNTL_COMMANDS)),
    Call("flock", "a guest's flock on its copy of the fd (syscalls/locks.py)"),
    Call("ioctl", "terminal and inode-flag requests on guest fds; fd handovers; an interface's flags",
         one_of(1, "request", IOCTL_REQUESTS)),
    # sockets: only those of guests (borrowed) and the helper's socket pair
    Call("sendmsg", "requests to the mount helper, with fds"),
    Call("recvmsg", "replies from the mount helper, with fds"),
    Call("getsockname", "guest sockets' names"),
    Call("bind", "a guest's unix socket whose name no mount-helper view serves, bound on the "
         "Sentry's copy (it creates no socket of its own: no socket(2) here); the sandbox port an "
         "outbound socket's name holds (net/hostsock.py); a UDP relay's socket (net/udp.py)"),
    Call("getsockopt", "guest sockets' type, family, credentials; an outbound socket's SO_ERROR"),
    # the sandbox's network (sentry/net): outbound connections made on the host
    Call("socket", "an outbound connection, the outbound policy's routing query, the host's "
         "sock_diag dump of the outbound sockets for a guest's ss (net/diag.py)",
         one_of(0, "domain", SOCKET_DOMAINS)),
    Call("connect", "an outbound connection; a guest's AF_UNSPEC disconnect, on its borrowed socket"),
    Call("setsockopt", "a guest socket's options copied onto its outbound socket"),
    Call("sendto", "the routing query (netlink) of the outbound policy; the sock_diag dump request"),
    Call("recvfrom", "their answers"),
    Call("shutdown", "a guest's shutdown, on its borrowed socket (sentry/net/connect.py)"),
    Call("getpeername", "whether a guest socket is connected already, before an outbound connect"),
    # identity and the rest
    Call("getcwd", "the traceback of one of its own bugs, logged (linecache)"),
    Call("getuid", "who the Sentry is"),
    Call("geteuid", "who the Sentry is"),
    Call("getgid", "who the Sentry is"),
    Call("getpgid", "process groups of guests"),
    Call("getsid", "sessions of guests"),
    Call("uname", "the host's uname for the guest's"),
    Call("umask", "the guest's umask for a unix socket it binds itself"),
    Call("clone", "fork of the clean-up child (sandbox/privatedirs.discard, when no janitor could be had)",
         [(Is(0, CLONE_FORK, "flags = CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD (fork)"),)]),
    Call("set_robust_list", "glibc in a forked child"),
    Call("gettid", "Python in a forked child"),
    Call("dup2", "the clean-up child's stdio onto /dev/null"),
]

# A helper's SIGSYS handler (native/selfconfine.c) takes the Sentry down
# with it, so that the sandbox stops.
KILLS_THE_SENTRY = Call("kill", "its SIGSYS handler takes the Sentry down with it (so the sandbox stops)",
                        [(Is(0, "sentry_pid", "pid = the Sentry's"), Is(1, 9, "sig = SIGKILL"))])

# What a Python helper holding sockets asks of them and of its fds.
SOCKET_OBJECTS = [
    Call("getsockopt", "socket(fileno=) asks the socket's family and type"),
    Call("getsockname", "socket(fileno=) asks"),
    Call("fcntl", "fd flags", one_of(1, "cmd", FCNTL_COMMANDS)),
    Call("ioctl", "isatty() of Python's io", one_of(1, "request", {"TCGETS": 0x5401})),
]

MOUNT_HELPER = PYTHON_RUNTIME + [
    Call("recvmsg", "requests from the Sentry, with fds"),
    Call("sendmsg", "replies to the Sentry"),
    Call("clone", "a child per unix socket bind",
         [(Is(0, CLONE_FORK, "flags = CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD (fork)"),)]),
    Call("set_robust_list", "glibc in a forked child"),
    Call("gettid", "Python in a forked child"),
    Call("wait4", "waits for that child"),
    Call("unshare", "the child's own mount namespace; a network namespace a guest makes (vfs/mountns.py _new_netns)",
         [(Is(0, CLONE_NEWNS, "flags = CLONE_NEWNS"),), (Is(0, CLONE_NEWNET, "flags = CLONE_NEWNET"),)]),
    Call("setns", "into a guest-made network namespace and back, for a socket, link change or /proc/net file there",
         [(Is(1, CLONE_NEWNET, "nstype = CLONE_NEWNET"),)]),
    Call("socket", "a guest's socket in a network namespace it made (families checked there too), and "
         "the netlink socket of its lo's link change", one_of(0, "domain", GUEST_SOCKET_DOMAINS)),
    Call("socketpair", "a guest's pair of unix sockets in a network namespace it made",
         [(Is(0, 1, "domain = AF_UNIX"),)]),
    Call("mount", "the child's scratch tmpfs and bind of the socket's directory",
         [(Is(3, 0, "flags = 0 (a tmpfs)"),), (Is(3, MS_BIND | MS_REC, "flags = MS_BIND|MS_REC"),)]),
    Call("openat2", "reopens the socket's directory confined (RESOLVE_IN_ROOT)"),
    Call("readlink", "the directory's path"),
    Call("mkdir", "the scratch tree"),
    Call("mkdirat", "the scratch tree"),
    Call("chdir", "the bind's cwd"),
    Call("chroot", "the bind's root"),
    Call("umask", "the guest's umask for the socket file"),
    Call("bind", "binds the guest's unix socket"),
    *SOCKET_OBJECTS,
    Call("pwrite64", "a guest root's write at an offset of a network setting it makes (syscalls/settings.py)"),
    Call("sendto", "a guest root's link change (up/down, MTU) on its netlink socket in the sandbox's "
         "network namespace (vfs/netns.py); a UDP relay's route (sentry/net/udp.py)"),
    Call("recvfrom", "the kernel's answer to it"),
    KILLS_THE_SENTRY,
]

JANITOR = PYTHON_RUNTIME + [
    Call("dup2", "its stdio onto /dev/null (it outlives the Sentry's terminal)"),
    Call("close_range", "closes every fd but its pipe"),
    Call("unlinkat", "removes the private directories"),
    Call("rmdir", "removes the private directories"),
    Call("unlink", "removes the private directories"),
    Call("chmod", "an unprivileged janitor makes read-only directories writable first"),
    Call("clock_nanosleep", "time.sleep between retries"),
    Call("fcntl", "fd flags", one_of(1, "cmd", FCNTL_COMMANDS)),
    Call("ioctl", "isatty() of Python's io", one_of(1, "request", {"TCGETS": 0x5401})),
]

FD_HOLDER = PYTHON_RUNTIME + [
    Call("recvmsg", "an fd to hold, and its number, from the Sentry (native/holder.c)"),
    Call("sendto", "its answer"),
    Call("dup3", "holds the fd at its number"),
    KILLS_THE_SENTRY,
]

# The outbound helper (sentry/net/outbound.py): waits for the handshakes of
# the host connections the Sentry started, makes each "connected for good",
# and sends it to the guest thread that waits.  It never makes a socket
# (no socket(2)): every socket it holds the Sentry made and passed to it.  It
# also relays DNS datagrams between the sandbox and its resolvers
# (sentry/net/dns.py), on sockets the Sentry made too.
OUTBOUND_HELPER = PYTHON_RUNTIME + [
    Call("recvmsg", "an outbound socket to shut down once connected, or DNS relay sockets, from the Sentry"),
    Call("poll", "waits for the Sentry's requests and the handshakes in progress"),
    Call("getsockopt", "socket(fileno=) asks family and type"),
    Call("getsockname", "socket(fileno=) asks"),
    Call("shutdown", "a guest's shutdown of an outbound socket, once its handshake has ended"),
    Call("ioctl", "isatty() of Python's io", one_of(1, "request", {"TCGETS": 0x5401})),
    Call("fcntl", "fd flags", one_of(1, "cmd", FCNTL_COMMANDS)),
    Call("sendto", "DNS queries to a resolver and answers to the guest that asked (sentry/net/dns.py)"),
    Call("recvfrom", "the DNS relay: a guest's query, a resolver's answer"),
    KILLS_THE_SENTRY,
]

# The UDP relay (sentry/net/udp.py): moves datagrams between the relay
# sockets the Sentry bound inside the sandbox, at the outside destinations
# the policy allowed, and host UDP sockets it makes, one per guest socket,
# each connected to its relay's destination.  No bind, no listen, no
# stream socket.
UDP_RELAY = PYTHON_RUNTIME + [
    Call("recvmsg", "a relay's socket, and a raw ICMP socket of the sandbox's namespace, from the Sentry; "
         "a flow's host socket's error queue"),
    Call("poll", "waits for the Sentry's requests and datagrams"),
    Call("socket", "a flow's host socket",
         [(Is(0, domain, f"domain = {name}"), Is(1, 0o4002 | 0o2000000, "type = SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC"))
          for domain, name in ((2, "AF_INET"), (10, "AF_INET6"))]),
    Call("setsockopt", "a flow's host socket hears its destination's ICMP errors",
         [(Is(1, 0, "level = IPPROTO_IP"), Is(2, 11, "optname = IP_RECVERR")),
          (Is(1, 41, "level = IPPROTO_IPV6"), Is(2, 25, "optname = IPV6_RECVERR"))]),
    Call("connect", "a flow's host socket to its relay's destination"),
    Call("recvfrom", "a guest's datagram, a destination's answer"),
    Call("sendto", "the datagram to the destination, the answer (or its ICMP error) to the guest socket"),
    *SOCKET_OBJECTS,
    KILLS_THE_SENTRY,
]

# The port forwarder of --publish (sentry/net/publish.py): copies data between
# connections it accepts on the host's published ports (sockets the Sentry
# bound) and connections it makes inside the sandbox.  It joined the
# sandbox's network namespace before loading this: every socket it makes is
# the sandbox's.  No bind, no listen.
PUBLISH = PYTHON_RUNTIME + [
    Call("poll", "waits for clients, data and the Sentry's exit"),
    Call("accept4", "a client of a published TCP port, on the host"),
    Call("socket", "its connection into the sandbox (made in the sandbox's network namespace)",
         one_of(0, "domain", {"AF_INET": 2})),
    Call("connect", "to 127.0.0.1:PORT inside the sandbox"),
    Call("getsockopt", "SO_ERROR of a connection made inside"),
    Call("getsockname", "socket(fileno=) asks, for the listeners it was given"),
    Call("recvfrom", "data, and datagrams of published UDP ports"),
    Call("sendto", "data, and datagrams to the host client they answer"),
    Call("shutdown", "a half-close passed on"),
    Call("pipe2", "a pipe per direction of a forwarded connection"),
    Call("splice", "moves the bytes: socket -> pipe -> socket"),
    Call("ioctl", "setblocking(); isatty() of Python's io",
         one_of(1, "request", {"FIONBIO": 0x5421, "TCGETS": 0x5401})),
    Call("fcntl", "fd flags; the pipes' size", one_of(1, "cmd", dict(FCNTL_COMMANDS, F_SETPIPE_SZ=1031))),
    KILLS_THE_SENTRY,
]

# The OCI pid file's process (sentry/oci/standin.py): waits for the Sentry, its
# child, and ends as it ended.  It runs no guest code and holds no fd of
# anyone's; it keeps no capability.
STAND_IN = PYTHON_RUNTIME + [
    Call("wait4", "waits for the Sentry"),
    Call("prlimit64", "no core file of its own (RLIMIT_CORE 0) before it takes the Sentry's signal"),
    Call("rt_sigprocmask", "unblocks that signal"),
    Call("kill", "takes the Sentry's signal itself; kills the Sentry if its own wait fails"),
]

# The capabilities each keeps, when it runs with any: the rest go from its
# effective, permitted, inheritable, ambient and bounding sets.
SENTRY_CAPS = {
    "CAP_CHOWN": "emulated owners: files guests create are chowned to the guest's ids",
    "CAP_DAC_OVERRIDE": "acts on guest files and directories whatever their modes (the Sentry checks the "
                        "guest's permissions itself); it covers reading and searching too, so "
                        "CAP_DAC_READ_SEARCH goes, and open_by_handle_at with it",
    "CAP_FOWNER": "chmod, utimes, xattrs of files it does not own",
    "CAP_FSETID": "keeps the set-group-id bit a guest's chmod sets on a file of a group the Sentry is "
                  "not in (the kernel would clear it silently)",
    "CAP_SYS_PTRACE": "traces and reads guests that made themselves non-dumpable; pidfd_getfd",
    "CAP_SYS_NICE": "lowers a guest task's nice value past its RLIMIT_NICE for a guest holding the "
                    "emulated CAP_SYS_NICE (setpriority, syscalls/process.py)",
}
MOUNT_HELPER_CAPS = {
    "CAP_SYS_ADMIN": "unshare(CLONE_NEWNS) and mount for a unix socket's bind; unshare(CLONE_NEWNET) and "
                     "setns for a guest's network namespace",
    "CAP_SYS_CHROOT": "chroot for a unix socket's bind",
    "CAP_DAC_OVERRIDE": "creates the socket file in a guest directory whatever its mode",
    "CAP_NET_ADMIN": "the link changes a guest root makes on the sandbox's own interfaces (lo up/down, "
                     "MTU: vfs/netns.py), in the sandbox's network namespace, on its own netlink socket; "
                     "a guest root's writes of the network settings the kernel would refuse its host process "
                     "there (IPv4 forwarding; all of them, unprivileged: syscalls/settings.py)",
}
JANITOR_CAPS = {
    "CAP_DAC_OVERRIDE": "lists and removes what guests left, whatever its modes",
    "CAP_FOWNER": "removes files of other owners from sticky directories",
}

PROFILES = {
    "sentry": ("the Sentry", SENTRY, SENTRY_CAPS),
    "mount-helper": ("the mount helper", MOUNT_HELPER, MOUNT_HELPER_CAPS),
    "janitor": ("the janitor", JANITOR, JANITOR_CAPS),
    "fd-holder": ("the fd holder", FD_HOLDER, {}),
    "outbound": ("the outbound helper", OUTBOUND_HELPER, {}),
    "publish": ("the port forwarder", PUBLISH, {}),
    "udp-relay": ("the UDP relay", UDP_RELAY, {}),
    "stand-in": ("the OCI pid file's stand-in", STAND_IN, {}),
}
# Its name (comm) once confined: what ps and the kernel's audit log show
# (SENTRY_SELF_FILTER=log records name the process this way).
COMM = {"sentry": b"sentry", "mount-helper": b"sentry-mounts", "janitor": b"sentry-janitor",
        "fd-holder": b"sentry-fdholder", "outbound": b"sentry-outbound",
        "publish": b"sentry-publish", "udp-relay": b"sentry-udp", "stand-in": b"sentry-standin"}
PR_SET_NAME = 15
# Killed by the kernel for a forbidden call, with no handler of ours: the
# janitor (it outlives the Sentry, with no terminal to write to), and the
# stand-in (its death by SIGSYS is the container's status, and the Sentry
# dies with it)
KILLED_BY_THE_KERNEL = ("janitor", "stand-in")


# ---- loading -----------------------------------------------------------------

def mode():
    """enforce (the default) or log, from SENTRY_SELF_FILTER; ValueError
    for anything else (a typo must not turn the filter off)."""
    m = os.environ.get(ENV) or "enforce"
    if m not in MODES:
        raise ValueError(f"{ENV}={m}: one of {', '.join(MODES)}")
    return m


def _dedup(calls):
    """One entry per syscall: the last one given wins (a profile may narrow a
    runtime call with argument checks)."""
    out = {}
    for c in calls:
        out.pop(c.name, None)
        out[c.name] = c
    return list(out.values())


def build(profile, enforce=True, values=None):
    """The seccomp filter of one profile; values: what the named values of
    its conditions stand for (sentry_pid for the mount helper)."""
    who, calls, _ = PROFILES[profile]
    if not enforce:
        default = pyseccomp.LOG
    elif profile in KILLED_BY_THE_KERNEL:
        default = pyseccomp.KILL_PROCESS
    else:
        default = pyseccomp.TRAP
    f = pyseccomp.SyscallFilter(default)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
    # Loaded without CAP_SYS_ADMIN too (an unprivileged sentry); it never
    # executes anything after set-up, so no_new_privs costs it nothing.
    f.set_attr(pyseccomp.Attr.CTL_NNP, 1)
    for c in _dedup(calls):
        if c.only is None:
            f.add_rule(pyseccomp.ALLOW, c.name)
        else:
            for alt in c.only:
                f.add_rule(pyseccomp.ALLOW, c.name, *(a.arg(values or {}) for a in alt))
    return f


def _names_to_native():
    """The SIGSYS handler names the call: the table is given before loading,
    since the handler may not allocate."""
    from sentry._native import lib
    for nr, name in syscall_names().items():
        lib.sn_self_name(nr, name.encode())


def confine(profile, sentry_pid=0):
    """Drop the capabilities `profile` does not keep, then load its filter.
    Call in the process itself, once set-up is done; every process it forks
    later inherits both.  sentry_pid: for the mount helper, the Sentry its
    SIGSYS handler kills."""
    enforce = mode() == "enforce"
    who, _, caps = PROFILES[profile]
    privileges.prctl_bytes(PR_SET_NAME, COMM[profile])
    privileges.keep_only([privileges.CAPS[c] for c in caps])
    filt = build(profile, enforce, {"sentry_pid": sentry_pid})
    if profile not in KILLED_BY_THE_KERNEL:
        from sentry._native import lib
        _names_to_native()
        if lib.sn_self_trap(who.encode(), SELF_FILTER_EXIT, sentry_pid):
            raise OSError(errno.EINVAL, "SIGSYS handler")
    target, _, delay = (os.environ.get(PROBE_ENV) or "").partition("@")
    if target == profile and delay:
        # armed before the filter is loaded: setitimer is not in the list
        signal.signal(signal.SIGALRM, lambda *_: probe())
        signal.setitimer(signal.ITIMER_REAL, float(delay))
    filt.load()
    if target == profile and not delay:
        probe()


def probe():
    """Test-only (SENTRY_TEST_SELF_FILTER_PROBE=<profile>[@<seconds>]): an
    execveat the filter forbids, at once or that many seconds later (the
    guests running then), which would fail harmlessly (EBADF) if it were let
    through."""
    from sentry._native import lib
    lib.sn_self_probe()


# ---- the generated doc ---------------------------------------------------------

def doc():
    out = ["# The Sentry's own seccomp allowlists", "",
           "Generated by `python -m sentry.platform.selfconfine > docs/sentry-allowlist.md` from",
           "`sentry/platform/selfconfine.py`, the same tables the filters are built from; do not edit.",
           "",
           "After set-up, each long-lived process of a sandbox loads a filter that allows only the",
           "calls listed for it (argument conditions: any one alternative must hold) and keeps only",
           "the capabilities listed for it. Anything else: the Sentry and its helpers but the janitor "
           "and the OCI stand-in print",
           "`sentry: internal error: <who> made syscall N (name), which its own filter forbids; "
           "stopping`",
           f"and exit with status {SELF_FILTER_EXIT} (the guests die with the Sentry); the janitor and "
           "the stand-in are killed by the kernel,",
           "which records it in its audit log. `SENTRY_SELF_FILTER=log` lets such calls run and has "
           "the kernel log them.", ""]
    for profile, (who, calls, caps) in PROFILES.items():
        calls = sorted(_dedup(calls), key=lambda c: c.name)
        out += [f"## {who[0].upper() + who[1:]} (`{profile}`): {len(calls)} syscalls", "",
                "| syscall | only when | why |", "| --- | --- | --- |"]
        for c in calls:
            cond = "" if c.only is None else " or ".join(" and ".join(a.text for a in alt) for alt in c.only)
            cond = cond.replace("|", "\\|")        # a bare | would end the table's cell
            out.append(f"| `{c.name}` | {cond} | {c.why} |")
        out += ["", f"Capabilities kept (when it has any): " +
                (", ".join(f"`{k}`" for k in caps) or "none") + ".", ""]
        out += [f"- `{k}`: {v}" for k, v in caps.items()]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(doc())
