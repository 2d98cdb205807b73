"""What to run for an execve: follows `#!` and PT_INTERP inside the sandbox.

The host kernel never resolves a program path or an ELF interpreter itself:
it would use the host's /lib.  The Sentry reads the file through a confined fd,
and for a dynamic ELF runs the sandbox's own interpreter with the program as
its argument (`ld.so --argv0 ARGV0 PROGRAM ARGS...`).
"""
import errno
import fcntl
import logging
import os
import stat
import struct

from sentry.errors import SyscallError
from sentry.vfs.mount import open_final

log = logging.getLogger("sentry")

MAX_SHEBANG_DEPTH = 4      # as BINPRM_MAX_RECURSION
SHEBANG_MAX = 256
EM_X86_64 = "EM_X86_64"


class Program:
    def __init__(self, loc, argv, exe_spath, st, busy=None, image=None):
        self.loc = loc              # Resolved of the file the kernel will exec
        self.argv = argv            # list of bytes (None entries = guest's own pointer)
        self.exe = exe_spath        # what /proc/self/exe shows
        self.st = st                # stat of the file the Sentry read (what the kernel must map)
        # (Resolved, stat, on a nosuid mount) of the ELF program itself, not
        # its interpreter nor a script: the file whose set-id bits count, as
        # for the kernel
        self.image = image or (loc, st, False)
        # the Sentry runs its ELF interpreter, which opens the program itself
        self.by_loader = self.image[1] is not st
        # (dev, ino) of the files Linux keeps from being written while it runs
        # them: the program and its ELF interpreter
        self.busy = busy or ((st.st_dev, st.st_ino),)


def read_head(loc, n=4096):
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


ELF64_EHDR = 64
ELF64_PHDR = 56
PHDRS_MAX = 65536          # the kernel's bound on a program header table (elf_read_phdrs)
INTERP_MAX = 4096          # PATH_MAX, as the kernel's bound on PT_INTERP's size
_parsed = {}               # ELF header + program header table (bytes) -> (offset, size) of PT_INTERP, or None
PARSED_MAX = 256


def elf_interp(fd, path, head):
    """PT_INTERP of a 64-bit x86-64 ELF (None for a static one); ENOEXEC for
    anything else, with one clear log line.

    Read through the Sentry's own fd at every exec, never taken from a cache
    keyed by file attributes: a guest rewrites a header in place and puts the
    mtime back.  Only the parse is cached, keyed by the very bytes parsed (a
    shell script execs the same few programs again and again).  The file may
    still change between this read and the kernel's: kernel.on_exec checks
    what the kernel actually mapped."""
    if len(head) < ELF64_EHDR or head[4] != 2:      # not ELFCLASS64: pyelftools says what it is
        _parse_headers(head[:ELF64_EHDR], b"", path)
        raise SyscallError(errno.ENOEXEC)
    (phoff,) = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    size = phentsize * phnum
    if phentsize != ELF64_PHDR or not 0 < size <= PHDRS_MAX:
        raise SyscallError(errno.ENOEXEC)          # as the kernel refuses it
    table = head[phoff:phoff + size] if phoff + size <= len(head) else _pread(fd, size, phoff)
    if len(table) != size:
        raise SyscallError(errno.ENOEXEC)
    key = head[:ELF64_EHDR] + table
    where = _parsed.get(key, False)
    if where is False:
        where = _fast_interp(head[:ELF64_EHDR], table)
    if where is False:
        where = _parse_headers(head[:ELF64_EHDR], table, path)
        if len(_parsed) >= PARSED_MAX:
            _parsed.clear()
        _parsed[key] = where
    if where is None:
        return None
    offset, size = where
    if not 2 <= size <= INTERP_MAX:
        raise SyscallError(errno.ENOEXEC)          # as the kernel refuses it
    interp = head[offset:offset + size] if offset + size <= len(head) else _pread(fd, size, offset)
    return interp.split(b"\0", 1)[0]


EI_DATA, ELFDATA2LSB = 5, 1
E_MACHINE, EM_X86_64_NR = 18, 62
PT_INTERP = 3


def _fast_interp(ehdr, table):
    """What _parse_headers answers, for the one kind of ELF sentry runs (64-bit,
    little-endian, x86-64), read with struct alone: (offset, size) of the first
    PT_INTERP, or None.  False (declined) for any other kind: pyelftools then
    parses it, and says what it is.  A start imports no ELF library this way
    (pyelftools costs ~20 ms to import); tests/test_programs.py checks that both
    give the same answer."""
    if ehdr[4] != 2 or ehdr[EI_DATA] != ELFDATA2LSB or \
            struct.unpack_from("<H", ehdr, E_MACHINE)[0] != EM_X86_64_NR:
        return False
    for i in range(0, len(table) - ELF64_PHDR + 1, ELF64_PHDR):
        if struct.unpack_from("<I", table, i)[0] == PT_INTERP:
            (offset,) = struct.unpack_from("<Q", table, i + 8)
            (size,) = struct.unpack_from("<Q", table, i + 32)
            return offset, size
    return None


def _pread(fd, n, offset):
    try:
        return os.pread(fd, n, offset)
    except (OSError, OverflowError):
        raise SyscallError(errno.ENOEXEC)


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


def _parse_headers(ehdr, table, path):
    """(offset, size) of the PT_INTERP of an x86-64 ELF, from its header
    and program header table; None when it has none."""
    from elftools.common.exceptions import ELFError
    from elftools.construct.core import ConstructError
    try:
        hdr, structs = _elf_structs(ehdr)
    except (ELFError, ConstructError, ValueError, KeyError, IndexError):
        raise SyscallError(errno.ENOEXEC)
    ident = hdr["e_ident"]
    if ident["EI_CLASS"] != "ELFCLASS64" or ident["EI_DATA"] != "ELFDATA2LSB" \
            or hdr["e_machine"] != EM_X86_64:
        log.warning("%s: %s %s ELF is not supported (ENOEXEC): sentry runs x86-64 only",
                    path, ident["EI_CLASS"], hdr["e_machine"])
        raise SyscallError(errno.ENOEXEC)
    for i in range(len(table) // ELF64_PHDR):
        ph = structs.Elf_Phdr.parse(table[i * ELF64_PHDR:(i + 1) * ELF64_PHDR])
        if ph["p_type"] == "PT_INTERP":
            return ph["p_offset"], ph["p_filesz"]
    return None


F_SETLEASE, F_RDLCK, F_UNLCK = 1024, 0, 2


def check_not_written(fd):
    """ETXTBSY for a program some process has open for writing, as the
    kernel's deny_write_access says for the file it execs.  The Sentry runs
    a dynamic program's loader, whose file the kernel checks; the program's
    own it checks here: a read lease is refused (EAGAIN) while the file is
    open for writing anywhere.  Taken and dropped at once (a writer opening
    in between waits for it; its break signal, SIGIO, the Sentry ignores).
    Where no lease can be had (leases off, or an unprivileged Sentry on a
    file it does not own) nothing is checked."""
    try:
        fcntl.fcntl(fd, F_SETLEASE, F_RDLCK)
    except OSError as e:
        if e.errno == errno.EAGAIN:
            raise SyscallError(errno.ETXTBSY)
        return
    fcntl.fcntl(fd, F_SETLEASE, F_UNLCK)


def check_interpreter(iloc):
    """Open the interpreter a program names (resolved in the sandbox) as the
    kernel would, and return the stat of what was read.  The Sentry execs it
    as a program, so the kernel would honour a PT_INTERP of its own and load
    that from the host: refused, as is anything but an x86-64 ELF (ELIBBAD,
    as Linux answers for a bad interpreter)."""
    if not stat.S_ISREG(iloc.st.st_mode):
        raise SyscallError(errno.ELIBBAD)
    fd, head = read_head(iloc)
    try:
        if not head.startswith(b"\x7fELF"):
            raise SyscallError(errno.ELIBBAD)
        try:
            own = elf_interp(fd, iloc.spath, head)
        except SyscallError:
            raise SyscallError(errno.ELIBBAD)
        if own is not None:
            log.warning("%s: an ELF interpreter with an interpreter of its own (%s) is refused (ELIBBAD)",
                        iloc.spath, own.decode(errors="replace"))
            raise SyscallError(errno.ELIBBAD)
        return os.fstat(fd)
    finally:
        os.close(fd)


def load(resolve, path, argv0, seen=lambda spath: spath):
    """resolve(path_bytes) -> Resolved; returns the Program to exec.

    The argv is built as the kernel would: a script's interpreter takes the
    place of argv[0] and gets the script path; `None` stands for the guest's
    own argv[1:], passed on as its pointers.  seen(spath): a sandbox path as
    the caller names it (from its root), for the loader to open."""
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
            interp = elf_interp(fd, loc.spath, head)
            if interp is not None:
                # the kernel maps the loader, and checks only the loader
                check_not_written(fd)
            st = os.fstat(fd)
            # the host mount the file is on, as the kernel's bprm_fill_uid asks
            nosuid = bool(st.st_mode & (stat.S_ISUID | stat.S_ISGID)) and bool(os.fstatvfs(fd).f_flag & os.ST_NOSUID)
        finally:
            os.close(fd)
        if interp is None:
            return Program(loc, args, loc.spath, st, image=(loc, st, nosuid))
        iloc = resolve(interp)
        ist = check_interpreter(iloc)
        return Program(iloc, [interp, b"--argv0", args[0], seen(loc.spath).encode()] + args[1:], loc.spath, ist,
                       busy=((st.st_dev, st.st_ino), (ist.st_dev, ist.st_ino)), image=(loc, st, nosuid))
    raise SyscallError(errno.ELOOP)
