"""What each syscall argument means: the typed declarations every consumer reads.

The table (syscalls/table.py) knows each argument's C type and name, as the
kernel declares it (python-ptrace's prototypes, and PROTOTYPES_ADDED).  That
is enough to decode a register (sentry/kernel/abi.py) but not to show it or to
draw a test value for it: an `int` may be an fd, a signal or a set of O_*
flags.  Here each argument gets a *meaning*, derived from its type and name by
a few rules plus a short list of exceptions, and each call its strace classes
(`%file`, `%network`…) derived from its arguments' meanings.  The --strace
printer (sentry/strace/), the fuzz test and docs/syscalls.md read these.

This module imports nothing of the project but the literals of
syscalls/ptracedata.py: it describes, it does not act.
"""
import re

from syscalls.ptracedata import FILENAME_ARGUMENTS, SYSCALL_ARG_DICT


class Arg:
    """One declared argument: `ctype name` with its decoding kind (abi.py),
    its meaning (below) and, for a pointer the kernel writes, out=True (shown
    at the syscall's exit, from what the call left there).  `size` is the
    index of the argument that gives a buffer's length, if any."""
    __slots__ = ("ctype", "name", "kind", "meaning", "out", "size")

    def __init__(self, ctype, name, kind, meaning, out=False, size=None):
        self.ctype, self.name, self.kind = ctype, name, kind
        self.meaning, self.out, self.size = meaning, out, size

    def __repr__(self):
        return f"{self.ctype} {self.name}: {self.meaning}{' out' if self.out else ''}"

    def declaration(self):
        sep = "" if self.ctype.endswith("*") else " "
        return f"{self.ctype}{sep}{self.name}" if self.name else self.ctype


# Meanings:
#   fd dirfd path string argv envp buf_in buf_out      (fds, names, data)
#   open_flags at_flags mode access_mode mmap_prot mmap_flags clone_flags
#   statx_mask signal const:<name>                     (numbers shown by name)
#   stat statx sockaddr iovec open_how clone_args sigaction timespec sigset rlimit
#                                                      (pointers to structures)
#   clockid socket_protocol                            (more numbers by name)
#   dirents (getdents' buffer: its record count)
#   pid uid addr ptr hex offset int                    (the rest)
STRUCTS = {"stat": "stat", "__old_kernel_stat": "stat", "statx": "statx", "sockaddr": "sockaddr",
           "iovec": "iovec", "open_how": "open_how", "clone_args": "clone_args",
           "sigaction": "sigaction", "timespec": "timespec", "__kernel_timespec": "timespec",
           "sigset_t": "sigset", "rlimit": "rlimit", "rlimit64": "rlimit"}

FD_NAMES = {"fd", "oldfd", "newfd", "sockfd", "epfd", "fd_in", "fd_out", "in_fd", "out_fd", "fdin",
            "fdout", "pidfd", "fs_fd", "ufd", "fildes", "mqdes", "fanotify_fd", "mount_fd"}
DIRFD_NAMES = {"dfd", "dirfd", "olddfd", "newdfd", "from_dfd", "to_dfd"}
PATH_NAMES = FILENAME_ARGUMENTS | {"pathname", "oldpath", "newpath", "linkpath", "specialfile",
                                   "special", "from_path", "to_path", "new_root", "put_old",
                                   "dir_name", "dev_name", "library"}

# (call, argument) whose meaning the rules cannot see in the declaration
EXCEPTIONS = {
    ("open", "flags"): "open_flags", ("openat", "flags"): "open_flags",
    ("open", "mode"): "mode", ("openat", "mode"): "mode", ("creat", "mode"): "mode",
    ("mkdir", "mode"): "mode", ("mkdirat", "mode"): "mode", ("chmod", "mode"): "mode",
    ("fchmod", "mode"): "mode", ("fchmodat", "mode"): "mode", ("fchmodat2", "mode"): "mode",
    ("mknod", "mode"): "mode", ("mknodat", "mode"): "mode",
    ("access", "mode"): "access_mode", ("faccessat", "mode"): "access_mode",
    ("faccessat2", "mode"): "access_mode",
    ("mmap", "prot"): "mmap_prot", ("mprotect", "prot"): "mmap_prot",
    ("pkey_mprotect", "prot"): "mmap_prot", ("mmap", "flags"): "mmap_flags",
    ("mmap", "fd"): "fd",
    ("clone", "flags"): "clone_flags",
    ("statx", "mask"): "statx_mask",
    **{(c, a): "at_flags" for c, a in (
        ("newfstatat", "flag"), ("fstatat64", "flag"), ("unlinkat", "flag"), ("fchownat", "flag"),
        ("linkat", "flags"), ("utimensat", "flags"), ("statx", "flags"), ("faccessat2", "flags"),
        ("execveat", "flags"), ("name_to_handle_at", "flag"), ("fchmodat2", "flags"))},
    # a name that is not a path, or a path with a length rather than a NUL
    ("sethostname", "name"): "buf_in", ("setdomainname", "name"): "buf_in",
    ("init_module", "uargs"): "string", ("finit_module", "uargs"): "string",
    ("delete_module", "name_user"): "string",
    ("umount2", "name"): "path",
    ("fsconfig", "value"): "ptr",
    # constants named in python-ptrace's SYSCALL_ARG_DICT under another call
    ("lseek", "whence"): "const:lseek.origin", ("prlimit64", "resource"): "const:getrlimit.resource",
    ("arch_prctl", "option"): "const:arch_prctl.option", ("getrandom", "flags"): "const:getrandom.flags",
    ("prctl", "option"): "const:prctl.option", ("fcntl", "cmd"): "const:fcntl.cmd",
    ("socket", "type"): "socket_type", ("socketpair", "type"): "socket_type",
    ("socketpair", "domain"): "const:socket.domain",
    ("socket", "protocol"): "socket_protocol", ("socketpair", "protocol"): "socket_protocol",
    ("rseq", "rseq_len"): "hex", ("rseq", "sig"): "hex", ("mmap", "pgoff"): "offset",
    ("ioctl", "cmd"): "const:ioctl.cmd", ("getdents64", "dirent"): "dirents",
    ("getdents", "dirent"): "dirents",
    ("kill", "pid"): "pid", ("tgkill", "tgid"): "pid", ("tkill", "pid"): "pid",
}

# Buffers: (call, argument) -> index of the length argument.  Shown at exit
# (what the kernel wrote, as long as the result says) or at entry.
BUFFERS_OUT = {("read", "buf"): 2, ("pread64", "buf"): 2, ("readlink", "buf"): 2,
               ("readlinkat", "buf"): 3, ("getcwd", "buf"): 1, ("recvfrom", "ubuf"): 2,
               ("recvfrom", "buf"): 2, ("getrandom", "buf"): 1, ("getxattr", "value"): 3,
               ("lgetxattr", "value"): 3, ("fgetxattr", "value"): 3}
BUFFERS_IN = {("write", "buf"): 2, ("pwrite64", "buf"): 2, ("sendto", "buff"): 2,
              ("sendto", "buf"): 2, ("sethostname", "name"): 1, ("setdomainname", "name"): 1,
              ("setxattr", "value"): 3, ("lsetxattr", "value"): 3, ("fsetxattr", "value"): 3}

# Pointers the kernel only reads though their declaration lacks `const`
READ_ONLY = {("connect", "addr"), ("bind", "umyaddr"), ("bind", "addr"), ("sendto", "addr"),
             ("sendto", "dest_addr"), ("futex", "utime"), ("clone3", "uargs"), ("openat2", "how"),
             ("rt_sigsuspend", "unewset"), ("rt_sigprocmask", "set"), ("nanosleep", "rqtp"), ("clock_nanosleep", "rqtp"),
             ("utimensat", "utimes"), ("rt_sigtimedwait", "uthese"), ("ppoll", "tsp"),
             ("pselect6", "tsp"), ("timer_settime", "new_setting"), ("setrlimit", "rlim"),
             ("prlimit64", "new_rlim")}

_UID = {"uid_t", "gid_t"}
_PTR = re.compile(r"\*|\[")


def _meaning(call, ctype, name, kind):
    m = EXCEPTIONS.get((call, name))
    if m is not None:
        return m
    if (call, name) in BUFFERS_OUT:
        return "buf_out"
    if (call, name) in BUFFERS_IN:
        return "buf_in"
    base = ctype.replace("const", "").replace("struct", "").replace("*", "").strip()
    if _PTR.search(ctype):
        if call in ("execve", "execveat") and name in ("argv", "envp"):
            return name
        if "char" in base and name in PATH_NAMES:
            return "path"
        if base in STRUCTS:
            return STRUCTS[base]
        return "ptr"
    if name in FD_NAMES:
        return "fd"
    if name in DIRFD_NAMES:
        return "dirfd"
    if name in ("sig", "signum"):
        return "signal"
    if name in SYSCALL_ARG_DICT.get(call, ()):
        return f"const:{call}.{name}"
    if ctype == "pid_t":
        return "pid"
    if ctype == "clockid_t":
        return "clockid"
    if ctype in _UID:
        return "uid"
    if ctype == "unsigned long" and name in ("addr", "start", "brk", "new_addr", "child_stack"):
        return "addr"
    return "int"


def _is_out(call, ctype, name, meaning):
    if meaning in ("buf_out", "dirents"):
        return True
    if not _PTR.search(ctype) or "const" in ctype or (call, name) in READ_ONLY:
        return False
    return meaning in ("stat", "statx", "sockaddr", "sigaction", "timespec", "sigset", "iovec", "rlimit")


def signature(call, arg_types, kind_of):
    """The Args of `call`, from its declared ((ctype, name), ...)."""
    out = []
    for ctype, name in arg_types or ():
        kind = kind_of(ctype)
        meaning = _meaning(call, ctype, name, kind)
        size = BUFFERS_OUT.get((call, name), BUFFERS_IN.get((call, name)))
        if meaning == "iovec":
            size = len(out) + 1          # readv(fd, iov, iovcnt): the count follows
        out.append(Arg(ctype, name, kind, meaning, _is_out(call, ctype, name, meaning), size))
    return tuple(out)


# --- strace's classes (-e trace=%file ...), from the arguments' meanings -----
# A few calls have nothing in their arguments that says what they are about:
# these lists name them (strace's own syscallent.h marks them so too).
_FD_MAKERS = {"open", "creat", "openat", "openat2", "pipe", "pipe2", "socket", "socketpair",
              "eventfd", "eventfd2", "epoll_create", "epoll_create1", "memfd_create", "memfd_secret",
              "timerfd_create", "inotify_init", "inotify_init1", "userfaultfd", "perf_event_open",
              "pidfd_open", "fanotify_init", "signalfd", "signalfd4", "fsopen", "open_tree", "fspick",
              "fsmount", "io_uring_setup", "landlock_create_ruleset", "bpf"}
_NET_BY_NAME = {"socket", "socketpair", "bind", "connect", "listen", "accept", "accept4",
                "getsockname", "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg",
                "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt"}
_PROCESS_BY_NAME = {"fork", "vfork", "clone", "clone3", "execve", "execveat", "exit", "exit_group",
                    "wait4", "waitid", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
                    "rt_tgsigqueueinfo", "pidfd_send_signal", "unshare"}
_SIGNAL_TYPES = ("sigset_t", "siginfo", "sigaction", "sigaltstack", "sigevent")
_MEMORY_EXTRA = {"mmap", "munmap", "mremap", "mincore", "get_mempolicy", "set_mempolicy",
                 "set_mempolicy_home_node", "migrate_pages", "move_pages", "map_shadow_stack",
                 "shmat", "shmdt", "process_madvise", "process_mrelease", "memfd_secret"}
_CREDS_NAME = re.compile(r"^(get|set)(e|res|fs|re)?[ug]id$|^(get|set)groups$|^cap(get|set)$")

CLASSES = ("file", "desc", "network", "process", "signal", "memory", "creds")


def classes(call, args):
    """The strace classes of `call` given its Args."""
    meanings = {a.meaning for a in args}
    out = set()
    if "path" in meanings:
        out.add("file")
    if meanings & {"fd", "dirfd"} or call in _FD_MAKERS:
        out.add("desc")
    if "sockaddr" in meanings or call in _NET_BY_NAME or any("msghdr" in a.ctype for a in args):
        out.add("network")
    if call in _PROCESS_BY_NAME or "clone_flags" in meanings or "clone_args" in meanings:
        out.add("process")
    if ("signal" in meanings or call.startswith(("rt_sig", "sig")) or call == "pause"
            or any(t in a.ctype for a in args for t in _SIGNAL_TYPES)):
        out.add("signal")
    if "mmap_prot" in meanings or "addr" in meanings or call in _MEMORY_EXTRA or call.startswith(("mlock", "munlock", "madvise", "msync", "mbind")):
        out.add("memory")
    if "uid" in meanings or _CREDS_NAME.match(call) or any("uid_t" in a.ctype or "gid_t" in a.ctype for a in args):
        out.add("creds")
    return frozenset(out)


def select(spec, entries):
    """The names `--strace=SPEC` traces: strace's `-e trace=` syntax, a
    comma-separated list of names and %classes; `all` (or nothing) is every
    call, a leading `!` inverts.  Raises ValueError on an unknown name."""
    spec = (spec or "all").strip()
    invert = spec.startswith("!")
    if invert:
        spec = spec[1:]
    names = {e.name for e in entries}
    chosen = set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if item == "all":
            chosen |= names
        elif item.startswith("%"):
            cls = item[1:]
            if cls not in CLASSES:
                raise ValueError(f"unknown syscall class {item} (known: %" + ", %".join(CLASSES) + ")")
            chosen |= {e.name for e in entries if cls in e.classes}
        elif item.startswith("/"):
            try:
                pattern = re.compile(item[1:])
            except re.error as err:
                raise ValueError(f"bad regular expression {item}: {err}") from None
            chosen |= {n for n in names if pattern.search(n)}
        elif item in names:
            chosen.add(item)
        else:
            raise ValueError(f"unknown syscall {item!r}")
    return names - chosen if invert else chosen
