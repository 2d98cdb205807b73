"""What to run for an execve: follows `#!` and PT_INTERP inside the sandbox.

The host kernel never resolves a program path or an ELF interpreter itself:
it would use the host's /lib.  The Sentry reads the file through a confined fd,
and for a dynamic ELF runs the sandbox's own interpreter with the program as
its argument (`ld.so --argv0 ARGV0 PROGRAM ARGS...`).
"""
import errno
import logging
import os
import stat

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from syscalls.errors import SyscallError

log = logging.getLogger("sentry")

MAX_SHEBANG_DEPTH = 4      # as BINPRM_MAX_RECURSION
SHEBANG_MAX = 256
EM_X86_64 = "EM_X86_64"


class Program:
    def __init__(self, loc, argv, exe_spath):
        self.loc = loc              # Resolved of the file the kernel will exec
        self.argv = argv            # list of bytes (None entries = guest's own pointer)
        self.exe = exe_spath        # what /proc/self/exe shows


def read_head(loc, n=4096):
    from syscalls.lookup import open_final
    if not stat.S_ISREG(loc.st.st_mode):
        raise SyscallError(errno.EACCES)
    if not loc.st.st_mode & 0o111:
        raise SyscallError(errno.EACCES)
    fd = open_final(loc, os.O_RDONLY)
    try:
        return fd, os.pread(fd, n, 0)
    except OSError as e:
        os.close(fd)
        raise SyscallError(e.errno)


def parse_shebang(head):
    line = head[2:SHEBANG_MAX].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise SyscallError(errno.ENOEXEC)
    parts = line.split(None, 1)
    interp = parts[0]
    arg = parts[1].strip(b" \t") if len(parts) > 1 else None
    return interp, arg


_interp_cache = {}     # (dev, ino, size, mtime) -> PT_INTERP or None


def elf_interp(fd, path):
    """PT_INTERP of a 64-bit x86-64 ELF (None for a static one); ENOEXEC for
    anything else, with one clear log line.  Cached per file version: a shell
    script execs the same few programs again and again."""
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _interp_cache:
        _interp_cache[key] = _read_interp(fd, path)
    return _interp_cache[key]


def _read_interp(fd, path):
    with os.fdopen(os.dup(fd), "rb") as f:
        try:
            elf = ELFFile(f)
        except ELFError:
            raise SyscallError(errno.ENOEXEC)
        if elf.elfclass != 64 or elf["e_machine"] != EM_X86_64:
            log.warning("%s: %d-bit %s ELF is not supported (ENOEXEC): sentry runs x86-64 only",
                        path, elf.elfclass, elf["e_machine"])
            raise SyscallError(errno.ENOEXEC)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                return seg.get_interp_name().encode()
    return None


def load(resolve, path, argv0):
    """resolve(path_bytes) -> Resolved; returns the Program to exec.

    The argv is built as the kernel would: a script's interpreter takes the
    place of argv[0] and gets the script path; `None` stands for the guest's
    own argv[1:], passed on as its pointers."""
    args = [argv0, None]
    for _ in range(MAX_SHEBANG_DEPTH + 1):
        loc = resolve(path)
        fd, head = read_head(loc)
        try:
            if head.startswith(b"#!"):
                interp, arg = parse_shebang(head)
                args = [interp] + ([arg] if arg else []) + [path] + args[1:]
                path = interp
                continue
            if not head.startswith(b"\x7fELF"):
                raise SyscallError(errno.ENOEXEC)
            interp = elf_interp(fd, loc.spath)
        finally:
            os.close(fd)
        if interp is None:
            return Program(loc, args, loc.spath)
        iloc = resolve(interp)
        if not stat.S_ISREG(iloc.st.st_mode):
            raise SyscallError(errno.ELIBBAD)
        return Program(iloc, [interp, b"--argv0", args[0], loc.spath.encode()] + args[1:], loc.spath)
    raise SyscallError(errno.ELOOP)
