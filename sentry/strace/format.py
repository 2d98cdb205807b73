"""How strace shows each argument meaning (syscalls/signature.py): one
formatter per meaning, the formatter table of gVisor's strace package.

Names of flags and constants come from python-ptrace where it has them (open
flags, mmap protections, clone flags, access modes, SYSCALL_ARG_DICT's
per-call constants, signal and socket names) and from the standard library
(os, mmap, errno) for the rest; structures are unpacked with `struct` in
strace's notation (`{st_mode=S_IFREG|0644, st_size=5, ...}`).
"""
import errno
import os
import socket
import stat as _stat
import struct

from ptrace.signames import signalName
from ptrace.syscall.posix_arg import ACCESS_MODE_BITMASK, CLONE_FLAGS_BITMASK, MMAP_PROT_BITMASK
from ptrace.syscall.posix_constants import SYSCALL_ARG_DICT
from ptrace.syscall.socketcall_constants import SOCKET_FAMILY, SOCKET_TYPE

from sentry.platform import memory

STRING_LIMIT = 32          # strace -s: bytes of a buffer shown before "..."
AT_FDCWD = -100


class Context:
    """What a formatter may look at: the task's host tid (to read its
    memory), the call's decoded arguments and, at exit, its result."""
    __slots__ = ("tid", "args", "result", "string_limit")

    def __init__(self, tid, args, result=None, string_limit=STRING_LIMIT):
        self.tid, self.args, self.result, self.string_limit = tid, args, result, string_limit


def _read(ctx, addr, n):
    try:
        return memory.read(ctx.tid, addr, n)
    except Exception:
        return None


def _i32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def ptr(v):
    return "NULL" if v == 0 else hex(v)


def bits(value, table, zero="0"):
    """`A|B|0x40` as strace writes a set of flags; `zero` when none."""
    names, rest = [], value
    for bit, name in table:
        if bit and value & bit == bit and rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) or zero


# --- strings: strace's escaping --------------------------------------------
_ESC = {ord("\t"): "\\t", ord("\n"): "\\n", ord("\v"): "\\v", ord("\f"): "\\f",
        ord("\r"): "\\r", ord('"'): '\\"', ord("\\"): "\\\\"}


def quote(data, limit=None, more=False, hexa=False):
    """`"abc\\n"` with strace's escapes; past `limit` bytes (or when `more`
    says the string went on), `"..."...`; hexa: every byte as `\\xNN`."""
    cut = limit is not None and len(data) > limit
    if cut:
        data = data[:limit]
    if hexa:
        return '"' + "".join(f"\\x{b:02x}" for b in data) + '"' + ("..." if cut or more else "")
    out = []
    for i, b in enumerate(data):
        if b in _ESC:
            out.append(_ESC[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            # the shortest octal form, unless a digit follows (it would join it)
            nxt = data[i + 1] if i + 1 < len(data) else None
            out.append(f"\\{b:03o}" if nxt is not None and 0x30 <= nxt <= 0x37 else f"\\{b:o}")
    return '"' + "".join(out) + '"' + ("..." if cut or more else "")


def c_string(ctx, addr, limit=memory.PATH_MAX):
    """A NUL-terminated string, its first `limit` bytes shown."""
    if addr == 0:
        return "NULL"
    data = b""
    while len(data) <= limit:         # page by page: the string may end before a hole
        chunk = _read(ctx, addr + len(data), 4096 - ((addr + len(data)) & 4095))
        if chunk is None:
            if not data:
                return hex(addr)
            break
        nul = chunk.find(b"\0")
        if nul >= 0:
            data += chunk[:nul]
            return quote(data[:limit], more=len(data) > limit)
        data += chunk
    return quote(data[:limit], more=True)


# --- numbers by name ---------------------------------------------------------
def fd(ctx, v):
    return str(_i32(v))


def dirfd(ctx, v):
    v = _i32(v)
    return "AT_FDCWD" if v == AT_FDCWD else str(v)


_O_ACC = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR", 3: "O_ACCMODE"}
# in strace's order; O_SYNC is __O_SYNC|O_DSYNC and O_TMPFILE contains
# O_DIRECTORY, so each comes before its part; O_LARGEFILE is implied on x86-64
# and strace leaves it out.  (python-ptrace's OPEN_FLAGS_BITMASK has i386 values.)
_O_BITS = [(os.O_CREAT, "O_CREAT"), (os.O_EXCL, "O_EXCL"), (os.O_NOCTTY, "O_NOCTTY"),
           (os.O_TRUNC, "O_TRUNC"), (os.O_APPEND, "O_APPEND"), (os.O_NONBLOCK, "O_NONBLOCK"),
           (os.O_SYNC, "O_SYNC"), (os.O_SYNC & ~os.O_DSYNC, "__O_SYNC"), (os.O_DSYNC, "O_DSYNC"),
           (os.O_DIRECT, "O_DIRECT"), (os.O_TMPFILE, "O_TMPFILE"), (os.O_DIRECTORY, "O_DIRECTORY"),
           (os.O_NOFOLLOW, "O_NOFOLLOW"), (os.O_NOATIME, "O_NOATIME"), (os.O_CLOEXEC, "O_CLOEXEC"),
           (os.O_ASYNC, "FASYNC"), (os.O_PATH, "O_PATH"), (0o100000, "O_LARGEFILE")]
# strace's order puts O_DIRECTORY after O_CLOEXEC and O_TMPFILE last
_O_ORDER = ["O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_SYNC",
            "__O_SYNC", "O_DSYNC", "O_DIRECT", "O_LARGEFILE", "O_NOFOLLOW", "O_NOATIME",
            "O_CLOEXEC", "O_DIRECTORY", "FASYNC", "O_PATH", "O_TMPFILE"]


def open_flags(ctx, v):
    v &= 0xFFFFFFFF
    rest = v & ~3 & ~0o100000          # O_LARGEFILE: implied, not shown (as strace)
    names = []
    for bit, name in _O_BITS:
        if bit and rest & bit == bit:
            names.append(name)
            rest &= ~bit
    names.sort(key=_O_ORDER.index)
    if rest:
        names.append(hex(rest))
    return "|".join([_O_ACC[v & 3]] + names)


def mode(ctx, v):
    return f"0{v & 0o7777:o}" if v & 0o7777 else "000"


def access_mode(ctx, v):
    return bits(v & 0xFFFFFFFF, [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")], "F_OK") \
        if (v & ~7) == 0 else bits(v, ACCESS_MODE_BITMASK, "F_OK")


_AT_BITS = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_EACCESS"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x2000, "AT_STATX_FORCE_SYNC"),
            (0x4000, "AT_STATX_DONT_SYNC"), (0x8000, "AT_RECURSIVE")]


def at_flags(ctx, v):
    return bits(v & 0xFFFFFFFF, _AT_BITS)


def mmap_prot(ctx, v):
    return bits(v, MMAP_PROT_BITMASK, "PROT_NONE")


_MAP_TYPE = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
# strace's order; the standard library's mmap module knows only a few of them
_MAP_BITS = [(0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"),
             (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"),
             (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
             (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"),
             (0x80000, "MAP_SYNC"), (0x100000, "MAP_FIXED_NOREPLACE")]


def mmap_flags(ctx, v):
    kind = _MAP_TYPE.get(v & 3, hex(v & 3))
    rest = bits(v & ~3 & 0xFFFFFFFF, _MAP_BITS, "")
    return kind + ("|" + rest if rest else "")


_CLONE_BITS = list(CLONE_FLAGS_BITMASK) + [(0x00001000, "CLONE_PIDFD"), (0x10000000, "CLONE_NEWUSER"),
                                           (0x20000000, "CLONE_NEWPID"), (0x40000000, "CLONE_NEWNET"),
                                           (0x80000000, "CLONE_IO"), (0x02000000, "CLONE_NEWCGROUP")]
_CLONE_BITS = [(b, n) for b, n in _CLONE_BITS if n not in ("CLONE_STOPPED", "CLONE_DETACHED")]


_STRACE_SIGNAMES = {6: "SIGABRT", 29: "SIGIO", 17: "SIGCHLD", 1: "SIGHUP"}   # among aliases, strace's


def signal(ctx, v):
    v = _i32(v)
    if v == 0:
        return "0"
    if v in _STRACE_SIGNAMES:
        return _STRACE_SIGNAMES[v]
    if 32 <= v <= 64:                  # strace numbers real-time signals as the kernel does
        return "SIGRTMIN" if v == 32 else f"SIGRT_{v - 32}"
    name = signalName(v)
    return name if name.startswith("SIG") and "signal" not in name else str(v)


def clone_flags(ctx, v):
    sig = v & 0xFF
    rest = bits(v & ~0xFF, _CLONE_BITS, "")
    parts = [p for p in (rest, signal(ctx, sig) if sig else "") if p]
    return "|".join(parts) or "0"


_STATX_BITS = [(1, "STATX_TYPE"), (2, "STATX_MODE"), (4, "STATX_NLINK"), (8, "STATX_UID"),
               (0x10, "STATX_GID"), (0x20, "STATX_ATIME"), (0x40, "STATX_MTIME"),
               (0x80, "STATX_CTIME"), (0x100, "STATX_INO"), (0x200, "STATX_SIZE"),
               (0x400, "STATX_BLOCKS"), (0x800, "STATX_BTIME"), (0x1000, "STATX_MNT_ID"),
               (0x2000, "STATX_DIOALIGN")]


def statx_mask(ctx, v):
    v &= 0xFFFFFFFF
    if v & 0x7FF == 0x7FF:            # as strace: the basic set by its name
        rest = bits(v & ~0x7FF, _STATX_BITS, "")
        return "STATX_BASIC_STATS" + ("|" + rest if rest else "")
    return bits(v, _STATX_BITS)


def pid(ctx, v):
    return str(_i32(v))


def uid(ctx, v):
    v &= 0xFFFFFFFF
    return "-1" if v == 0xFFFFFFFF else str(v)


def addr(ctx, v):
    return ptr(v)


def integer(kind):
    def fmt(ctx, v):
        if kind in ("i32", "i64"):
            return str(v)
        return str(v) if v < 1 << 32 else hex(v)
    return fmt


_FAMILIES = {**SOCKET_FAMILY, 1: "AF_UNIX"}


# constants python-ptrace does not name (from the kernel's uapi headers)
MORE_CONSTANTS = {
    "arch_prctl.option": {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
                          0x1004: "ARCH_GET_GS", 0x1011: "ARCH_GET_CPUID", 0x1012: "ARCH_SET_CPUID"},
    "prctl.option": {1: "PR_SET_PDEATHSIG", 2: "PR_GET_PDEATHSIG", 3: "PR_GET_DUMPABLE",
                     4: "PR_SET_DUMPABLE", 8: "PR_SET_KEEPCAPS", 7: "PR_GET_KEEPCAPS",
                     15: "PR_SET_NAME", 16: "PR_GET_NAME", 22: "PR_SET_SECCOMP",
                     21: "PR_GET_SECCOMP", 23: "PR_CAPBSET_READ", 24: "PR_CAPBSET_DROP",
                     36: "PR_SET_CHILD_SUBREAPER", 37: "PR_GET_CHILD_SUBREAPER",
                     38: "PR_SET_NO_NEW_PRIVS", 39: "PR_GET_NO_NEW_PRIVS", 47: "PR_CAP_AMBIENT",
                     0x59616d61: "PR_SET_PTRACER", 0x53564D41: "PR_SET_VMA"},
    "fcntl.cmd": {**SYSCALL_ARG_DICT["fcntl"]["cmd"], 5: "F_GETLK", 6: "F_SETLK", 7: "F_SETLKW",
                  8: "F_SETOWN", 9: "F_GETOWN", 1024: "F_SETLEASE", 1025: "F_GETLEASE",
                  1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ",
                  1033: "F_ADD_SEALS", 1034: "F_GET_SEALS", 36: "F_OFD_GETLK", 37: "F_OFD_SETLK",
                  38: "F_OFD_SETLKW"},
    "socket.domain": _FAMILIES,
}
MORE_CONSTANTS["ioctl.cmd"] = {
    0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF", 0x540B: "TCFLSH",
    0x540E: "TIOCSCTTY", 0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5411: "TIOCOUTQ",
    0x5412: "TIOCSTI", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ", 0x541B: "FIONREAD",
    0x5421: "FIONBIO", 0x5422: "TIOCNOTTY", 0x5429: "TIOCGSID", 0x5450: "FIONCLEX",
    0x5451: "FIOCLEX", 0x5452: "FIOASYNC", 0x80045430: "TIOCGPTN", 0x40045431: "TIOCSPTLCK",
    0x5441: "TIOCGPTPEER", 0x80086601: "FS_IOC_GETFLAGS", 0x40086602: "FS_IOC_SETFLAGS"}
_BIT_CONSTANTS = {"getrandom.flags": [(1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE")]}


def constant(key):
    """Names of `call.arg` (a meaning's `const:call.arg`): python-ptrace's
    SYSCALL_ARG_DICT (lseek's whence, rlimit resources...) or MORE_CONSTANTS."""
    if key in _BIT_CONSTANTS:
        table = _BIT_CONSTANTS[key]
        return lambda ctx, v: bits(v & 0xFFFFFFFF, table)
    call, _, name = key.partition(".")
    names = MORE_CONSTANTS.get(key) or SYSCALL_ARG_DICT.get(call, {}).get(name) or {}

    def fmt(ctx, v):
        v = v & 0xFFFFFFFF if key == "ioctl.cmd" else _i32(v)
        return names.get(v, hex(v) if key == "ioctl.cmd" else str(v))
    return fmt


_IPPROTO = {0: "IPPROTO_IP", 1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP",
            58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP", 255: "IPPROTO_RAW"}


def socket_protocol(ctx, v):
    """As strace: IPPROTO_* names for internet sockets, a number otherwise."""
    v = _i32(v)
    if _i32(ctx.args[0]) in (socket.AF_INET, socket.AF_INET6):
        return _IPPROTO.get(v, str(v))
    return str(v)


_CLOCKS = {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 2: "CLOCK_PROCESS_CPUTIME_ID",
           3: "CLOCK_THREAD_CPUTIME_ID", 4: "CLOCK_MONOTONIC_RAW", 5: "CLOCK_REALTIME_COARSE",
           6: "CLOCK_MONOTONIC_COARSE", 7: "CLOCK_BOOTTIME", 8: "CLOCK_REALTIME_ALARM",
           9: "CLOCK_BOOTTIME_ALARM", 11: "CLOCK_TAI"}


def clockid(ctx, v):
    v = _i32(v)
    return _CLOCKS.get(v, str(v))


def hexadecimal(ctx, v):
    return hex(v)


def offset(ctx, v):
    return hex(v) if v else "0"


def dirents(ctx, v):
    """getdents64's buffer, at exit: how many records the kernel wrote."""
    n, off = 0, 0
    data = _read(ctx, v, ctx.result) if ctx.result > 0 else b""
    if data is None:
        return ptr(v)
    while off + 19 <= len(data):
        reclen = struct.unpack_from("H", data, off + 16)[0]
        if reclen == 0:
            break
        off += reclen
        n += 1
    return f"{ptr(v)} /* {n} entries */"


def _rlim(v):
    if v == 0xFFFFFFFFFFFFFFFF:
        return "RLIM64_INFINITY"
    return f"{v // 1024}*1024" if v and v % 1024 == 0 else str(v)


def rlimit(ctx, v):
    data = _read(ctx, v, 16)
    if data is None:
        return ptr(v)
    cur, mx = struct.unpack("QQ", data)
    return f"{{rlim_cur={_rlim(cur)}, rlim_max={_rlim(mx)}}}"


_SOCK_FLAGS = [(0o2000000, "SOCK_CLOEXEC"), (0o4000, "SOCK_NONBLOCK")]


def socket_type(ctx, v):
    v &= 0xFFFFFFFF
    base = SOCKET_TYPE.get(v & 0xF, str(v & 0xF))
    rest = bits(v & ~0xF, _SOCK_FLAGS, "")
    return base + ("|" + rest if rest else "")


# --- strings, buffers, arrays ------------------------------------------------
def path(ctx, v):
    return c_string(ctx, v)


def string(ctx, v):
    return c_string(ctx, v, ctx.string_limit)


def buffer(ctx, v, length, hexa=False):
    if v == 0:
        return "NULL"
    n = max(0, min(length, ctx.string_limit + 1))
    data = _read(ctx, v, n)
    if data is None:
        return hex(v)
    return quote(data, ctx.string_limit, hexa=hexa)


def argv(ctx, v):
    if v == 0:
        return "NULL"
    try:
        ptrs = memory.read_pointer_array(ctx.tid, v)
    except Exception:
        return hex(v)
    shown = [c_string(ctx, p, ctx.string_limit) for p in ptrs[:32]]
    return "[" + ", ".join(shown) + (", ..." if len(ptrs) > 32 else "") + "]"


def envp(ctx, v):
    if v == 0:
        return "NULL"
    try:
        n = len(memory.read_pointer_array(ctx.tid, v))
    except Exception:
        return hex(v)
    return f"{hex(v)} /* {n} var{'s' if n != 1 else ''} */"


# --- structures --------------------------------------------------------------
_S_IFMT = {_stat.S_IFREG: "S_IFREG", _stat.S_IFDIR: "S_IFDIR", _stat.S_IFLNK: "S_IFLNK",
           _stat.S_IFCHR: "S_IFCHR", _stat.S_IFBLK: "S_IFBLK", _stat.S_IFIFO: "S_IFIFO",
           _stat.S_IFSOCK: "S_IFSOCK"}


def file_mode(m):
    kind = _S_IFMT.get(m & 0o170000)
    perm = f"0{m & 0o7777:o}" if m & 0o7777 else "000"
    return f"{kind}|{perm}" if kind else perm


def _makedev(rdev):
    major = ((rdev >> 8) & 0xFFF) | ((rdev >> 32) & ~0xFFF)
    minor = (rdev & 0xFF) | ((rdev >> 12) & ~0xFF)
    return f"makedev({hex(major)}, {hex(minor)})"


_STAT = struct.Struct("QQQIIIxxxxQqqq")     # up to st_blocks (x86-64 struct stat)


def stat(ctx, v):
    data = _read(ctx, v, _STAT.size)
    if data is None:
        return ptr(v)
    _dev, _ino, _nlink, m, _uid, _gid, rdev, size, _blksize, _blocks = _STAT.unpack(data)
    kind = m & 0o170000
    sized = f"st_rdev={_makedev(rdev)}" if kind in (_stat.S_IFCHR, _stat.S_IFBLK) else f"st_size={size}"
    return f"{{st_mode={file_mode(m)}, {sized}, ...}}"


_STATX = struct.Struct("IIQIIIHxxQQQ")      # stx_mask .. stx_blocks


def statx(ctx, v):
    data = _read(ctx, v, _STATX.size)
    if data is None:
        return ptr(v)
    mask, _blksize, attrs, _nlink, _uid, _gid, m, _ino, size, _blocks = _STATX.unpack(data)
    return (f"{{stx_mask={statx_mask(ctx, mask)}, stx_attributes={attrs and hex(attrs) or 0}, "
            f"stx_mode={file_mode(m)}, stx_size={size}, ...}}")


def sockaddr_bytes(data):
    if len(data) < 2:
        return "{sa_family=???}"
    family = struct.unpack_from("H", data)[0]
    name = _FAMILIES.get(family, str(family))
    if family == socket.AF_UNIX:
        path = data[2:]
        if path[:1] == b"\0":
            shown = "@" + quote(path[1:])[1:-1]
            return f'{{sa_family=AF_UNIX, sun_path=@"{shown[1:]}"}}'
        path = path.split(b"\0", 1)[0]
        return f"{{sa_family=AF_UNIX, sun_path={quote(path)}}}" if len(data) > 2 else "{sa_family=AF_UNIX}"
    if family == socket.AF_INET and len(data) >= 8:
        port = struct.unpack_from("!H", data, 2)[0]
        ip = socket.inet_ntop(socket.AF_INET, data[4:8])
        return f'{{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr("{ip}")}}'
    if family == socket.AF_INET6 and len(data) >= 24:
        port, flow = struct.unpack_from("!HI", data, 2)
        ip = socket.inet_ntop(socket.AF_INET6, data[8:24])
        scope = struct.unpack_from("I", data, 24)[0] if len(data) >= 28 else 0
        return (f"{{sa_family=AF_INET6, sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), "
                f'inet_pton(AF_INET6, "{ip}", &sin6_addr), sin6_scope_id={scope}}}')
    return f"{{sa_family={name}, sa_data={quote(data[2:16])}}}"


def sockaddr(ctx, v, length):
    if v == 0:
        return "NULL"
    data = _read(ctx, v, max(0, min(length, 128)))
    return sockaddr_bytes(data) if data is not None else hex(v)


def iovec(ctx, v, count, budget=None):
    """`[{iov_base="...", iov_len=5}, ...]`; at exit the bytes shown are
    those the call transferred (`budget`)."""
    if v == 0:
        return "NULL"
    n = min(count, 16)
    data = _read(ctx, v, 16 * n)
    if data is None:
        return hex(v)
    out = []
    for i in range(n):
        base, length = struct.unpack_from("QQ", data, 16 * i)
        take = length if budget is None else max(0, min(length, budget))
        if budget is not None:
            budget -= take
        out.append(f"{{iov_base={buffer(ctx, base, take)}, iov_len={length}}}")
    return "[" + ", ".join(out) + (", ..." if count > n else "") + "]"


_RESOLVE_BITS = [(1, "RESOLVE_NO_XDEV"), (2, "RESOLVE_NO_MAGICLINKS"), (4, "RESOLVE_NO_SYMLINKS"),
                 (8, "RESOLVE_BENEATH"), (0x10, "RESOLVE_IN_ROOT"), (0x20, "RESOLVE_CACHED")]


def open_how(ctx, v):
    data = _read(ctx, v, 24)
    if data is None:
        return ptr(v)
    flags, m, resolve = struct.unpack("QQQ", data)
    shown = f"{{flags={open_flags(ctx, flags)}"
    if flags & (os.O_CREAT | 0o20000000):
        shown += f", mode={mode(ctx, m)}"
    return shown + f", resolve={bits(resolve, _RESOLVE_BITS)}}}"


def clone_args(ctx, v):
    data = _read(ctx, v, 64)
    if data is None:
        return ptr(v)
    flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls = struct.unpack("8Q", data)
    return (f"{{flags={clone_flags(ctx, flags)}, pidfd={ptr(pidfd)}, child_tid={ptr(child_tid)}, "
            f"parent_tid={ptr(parent_tid)}, exit_signal={signal(ctx, exit_signal)}, "
            f"stack={ptr(stack)}, stack_size={hex(stack_size)}, tls={ptr(tls)}}}")


def sigset_bits(mask):
    sigs = [n for n in range(1, 65) if mask >> (n - 1) & 1]
    if len(sigs) > 32:               # most of them: strace shows the complement
        missing = [n for n in range(1, 65) if not mask >> (n - 1) & 1]
        return "~[" + " ".join(signal(None, n)[3:] for n in missing) + "]"
    return "[" + " ".join(signal(None, n)[3:] for n in sigs) + "]"


def sigset(ctx, v):
    data = _read(ctx, v, 8)
    return ptr(v) if data is None else sigset_bits(struct.unpack("Q", data)[0])


_SA_BITS = [(0x04000000, "SA_RESTORER"), (0x10000000, "SA_RESTART"), (0x08000000, "SA_ONSTACK"),
            (0x40000000, "SA_NODEFER"), (0x80000000, "SA_RESETHAND"), (4, "SA_SIGINFO"),
            (1, "SA_NOCLDSTOP"), (2, "SA_NOCLDWAIT")]


def sigaction(ctx, v):
    data = _read(ctx, v, 32)
    if data is None:
        return ptr(v)
    handler, flags, restorer, mask = struct.unpack("QQQQ", data)
    h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler, hex(handler))
    shown = f"{{sa_handler={h}, sa_mask={sigset_bits(mask)}, sa_flags={bits(flags, _SA_BITS)}"
    if flags & 0x04000000:
        shown += f", sa_restorer={hex(restorer)}"
    return shown + "}"


def timespec(ctx, v):
    data = _read(ctx, v, 16)
    if data is None:
        return ptr(v)
    sec, nsec = struct.unpack("qq", data)
    return f"{{tv_sec={sec}, tv_nsec={nsec}}}"


# --- results ---------------------------------------------------------------
# the kernel's restart codes, which a tracer sees at a syscall's exit
RESTART = {512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
           513: ("ERESTARTNOINTR", "To be restarted"),
           514: ("ERESTARTNOHAND", "To be restarted if no handler"),
           516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal")}
ADDRESS_RESULTS = {"mmap", "brk", "mremap", "shmat"}


def result(name, value):
    """` = 3`, ` = -1 ENOENT (No such file or directory)`, ` = 0x7f...`."""
    if -4096 < value < 0:
        e = -value
        if e in RESTART:
            code, text = RESTART[e]
            return f"? {code} ({text})"
        return f"-1 {errno.errorcode.get(e, str(e))} ({os.strerror(e)})"
    if name in ADDRESS_RESULTS:
        return hex(value & 0xFFFFFFFFFFFFFFFF)
    return str(value)


SIMPLE = {"fd": fd, "dirfd": dirfd, "open_flags": open_flags, "mode": mode,
          "access_mode": access_mode, "at_flags": at_flags, "mmap_prot": mmap_prot,
          "mmap_flags": mmap_flags, "clone_flags": clone_flags, "statx_mask": statx_mask,
          "signal": signal, "pid": pid, "uid": uid, "addr": addr, "path": path, "string": string,
          "argv": argv, "envp": envp, "stat": stat, "statx": statx, "open_how": open_how,
          "clone_args": clone_args, "sigaction": sigaction, "timespec": timespec, "sigset": sigset,
          "ptr": lambda ctx, v: ptr(v), "socket_protocol": socket_protocol, "clockid": clockid,
          "hex": hexadecimal, "rlimit": rlimit, "offset": offset, "dirents": dirents}


def arg(call, args, i, ctx):
    """Format argument i of `call` (args: its syscalls.signature.Args)."""
    a, value = args[i], ctx.args[i]
    m = a.meaning
    if a.out and (ctx.result is None or ctx.result < 0):
        return ptr(value)              # not written: the kernel failed, or not yet
    if m in SIMPLE:
        return SIMPLE[m](ctx, value)
    if m.startswith("const:"):
        return constant(m[6:])(ctx, value)
    if m == "socket_type":
        return socket_type(ctx, value)
    if m == "buf_in":
        return buffer(ctx, value, ctx.args[a.size])
    if m == "buf_out":
        # random bytes: strace shows them in hex, as text they mean nothing
        return buffer(ctx, value, ctx.result, hexa=call == "getrandom")
    if m == "sockaddr":
        return sockaddr(ctx, value, _sockaddr_length(ctx, args, i))
    if m == "iovec":
        budget = ctx.result if a.out else None
        return iovec(ctx, value, ctx.args[a.size] if a.size < len(ctx.args) else 1, budget)
    return integer(a.kind)(ctx, value)


def omitted(args, values):
    """Indices strace leaves out: open's mode unless the flags create a file."""
    out = set()
    for i, a in enumerate(args):
        if a.meaning == "open_flags" and not values[i] & (os.O_CREAT | 0o20000000):
            out.update(j for j in range(i + 1, len(args)) if args[j].meaning == "mode")
    return out


def _sockaddr_length(ctx, args, i):
    """A sockaddr's length is the next argument: by value (connect, bind,
    sendto) or, for one the kernel fills, through a pointer (accept,
    getsockname, recvfrom)."""
    if i + 1 >= len(args):
        return 128
    n = ctx.args[i + 1]
    if "*" in args[i + 1].ctype:
        data = _read(ctx, n, 4)
        return struct.unpack("I", data)[0] if data else 0
    return n & 0xFFFFFFFF
