"""What the host kernel mapped for an exec, checked before the image runs.

The Sentry reads a program's headers through its own fd, then has the kernel
exec the file (the program, or for a dynamic ELF the sandbox's own ld.so);
the kernel reads the file again, by path.  Between the two reads a racing
guest can rewrite the headers: a PT_INTERP would make the kernel load that
interpreter from the *host's* file system, a `#!` line or another binary
format would make it run a host program.  So at PTRACE_EVENT_EXEC, when the
image is loaded and has not run one instruction, the Sentry checks what is
actually mapped:

- the auxiliary vector's AT_BASE is 0 (the kernel mapped no interpreter:
  the Sentry never asks for one), and
- every file mapping is the file the Sentry read, by (st_dev, st_ino), as
  `/proc/<tid>/exe` must be too (or by the inode maps shows for that file,
  where a file system shows another one: check_maps).

An interpreter the kernel maps as ET_EXEC leaves AT_BASE at 0, so the
mappings are the check that matters; AT_BASE is the cheap early answer.
One read of /proc/<tid>/auxv and one of /proc/<tid>/maps per exec.
"""
import mmap
import os
import re
import struct

from sentry._native import ffi, lib

AT_NULL, AT_BASE = 0, 7


def verify(tid, dev, ino):
    """None when the new image of `tid` maps the file (dev, ino) and no other
    file, with no interpreter; else why not, in words.  The common answer
    comes from C (native/image.c, in one pass); what it does not accept is
    decided here.  The task is stopped: its mappings cannot change between
    the two."""
    if lib.sn_image_ok(tid, dev, ino):
        return None
    proc = os.open(f"/proc/{tid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            st = os.stat("exe", dir_fd=proc)
        except OSError as e:
            return f"its executable cannot be checked ({e.strerror})"
        if (st.st_dev, st.st_ino) != (dev, ino):
            return "the new image is not the checked file"
        base = at_base(_read("auxv", proc))
        if base is None:
            return "it has no auxiliary vector"
        if base:
            return f"the kernel mapped an interpreter (AT_BASE {base:#x})"
        return check_maps(_read("maps", proc), dev, ino, lambda: _as_mapped(tid))
    finally:
        os.close(proc)


def _read(name, proc=None):
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def at_base(auxv):
    """AT_BASE of an auxiliary vector (bytes of /proc/<tid>/auxv); None when
    the vector is cut short (no AT_NULL) or holds no AT_BASE."""
    base = None
    for i in range(0, len(auxv) - 15, 16):
        key, value = struct.unpack_from("<QQ", auxv, i)
        if key == AT_NULL:
            return base
        if key == AT_BASE:
            base = value
    return None


# device and inode columns of a /proc/<tid>/maps line
_FIELDS = re.compile(rb"^[0-9a-f]+-[0-9a-f]+ [-rwxps]{4} [0-9a-f]+ ([0-9a-f]+:[0-9a-f]+) ([0-9]+)", re.M)
_NO_FILE = (b"00:00", b"0")


def check_maps(maps, dev, ino, as_mapped=None):
    """None when every file mapping of `maps` (bytes of /proc/<tid>/maps)
    is the file (dev, ino), mapped at least once (an ELF always is); else
    why not.  Mappings of no file (device 00:00, inode 0: anonymous memory,
    [stack], [vdso]…) are fine.

    maps names a file by the inode it maps, which is not always the one stat
    shows: a btrfs subvolume's st_dev is its own, not its superblock's, and
    before Linux 6.8 an overlayfs file is mapped as its lower or upper file.
    So a mapping that is not (dev, ino) is still the file if it is what
    `as_mapped()` says the checked file looks like in maps."""
    fields = _FIELDS.findall(maps)
    if len(fields) != len(maps.splitlines()):
        return "its maps cannot be read"
    expected = (b"%02x:%02x" % (os.major(dev), os.minor(dev)), b"%d" % ino)
    alias = None
    seen = False
    for pair in set(fields):
        if pair == _NO_FILE:
            continue
        if pair == expected:
            seen = True
            continue
        if alias is None and as_mapped is not None:
            alias = as_mapped() or False
        if pair == alias:
            seen = True
            continue
        line = next(line for line in maps.splitlines() if _FIELDS.match(line).groups() == pair)
        name = line.split(None, 5)[5].strip() if len(line.split(None, 5)) > 5 else b""
        return (f"another file is mapped: {name.decode(errors='replace')} "
                f"({pair[0].decode()} inode {pair[1].decode()})")
    return None if seen else "the checked file is not mapped"


def _as_mapped(tid):
    """(device, inode) columns that maps shows for the task's executable
    (already checked to be the expected file): the Sentry maps that file
    itself and reads its own maps.  None when it cannot be told."""
    try:
        fd = os.open(f"/proc/{tid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with mmap.mmap(fd, min(mmap.PAGESIZE, os.fstat(fd).st_size), access=mmap.ACCESS_COPY) as m:
            view = ffi.from_buffer(m)
            try:
                prefix = b"%x-" % int(ffi.cast("uintptr_t", view))
                for line in _read("/proc/self/maps").splitlines():
                    if line.startswith(prefix):
                        match = _FIELDS.match(line)
                        return match.groups() if match else None
            finally:
                ffi.release(view)       # before the mapping closes
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return None
