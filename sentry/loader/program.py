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


_structs = {}


def _elf_structs(data):
    """pyelftools' ELF structs (its low-level layer: the ELFFile façade drags
    in DWARF and section parsers, twice the start-up time, for one header)."""
    from elftools.elf.structs import ELFStructs     # imported on first use
    elfclass = {1: 32, 2: 64}.get(data[4] if len(data) > 4 else 0)
    if elfclass is None:
        raise SyscallError(errno.ENOEXEC)
    base = _structs.get(elfclass)
    if base is None:
        base = _structs[elfclass] = ELFStructs(little_endian=True, elfclass=elfclass)
        base.create_basic_structs()
    hdr = base.Elf_Ehdr.parse(data)
    key = (elfclass, hdr["e_type"], hdr["e_machine"], hdr["e_ident"]["EI_OSABI"])
    full = _structs.get(key)
    if full is None:
        full = _structs[key] = ELFStructs(little_endian=True, elfclass=elfclass)
        full.create_basic_structs()
        full.create_advanced_structs(*key[1:])
    return hdr, full


def _read_interp(fd, path):
    from elftools.common.exceptions import ELFError
    from elftools.construct.core import ConstructError
    head = os.pread(fd, 64, 0)
    try:
        hdr, structs = _elf_structs(head)
    except (ELFError, ConstructError, ValueError, KeyError, IndexError):
        raise SyscallError(errno.ENOEXEC)
    ident = hdr["e_ident"]
    if ident["EI_CLASS"] != "ELFCLASS64" or ident["EI_DATA"] != "ELFDATA2LSB" \
            or hdr["e_machine"] != EM_X86_64:
        log.warning("%s: %s %s ELF is not supported (ENOEXEC): sentry runs x86-64 only",
                    path, ident["EI_CLASS"], hdr["e_machine"])
        raise SyscallError(errno.ENOEXEC)
    size = hdr["e_phentsize"]
    table = os.pread(fd, hdr["e_phnum"] * size, hdr["e_phoff"])
    for i in range(hdr["e_phnum"]):
        ph = structs.Elf_Phdr.parse(table[i * size:(i + 1) * size])
        if ph["p_type"] == "PT_INTERP":
            interp = os.pread(fd, min(ph["p_filesz"], 4096), ph["p_offset"])
            return interp.split(b"\0", 1)[0]
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
