"""A process's vDSO clock_gettime sent to the real syscall.

The vDSO reads the host's clocks from a shared page the Sentry cannot
shift, so a process in a time namespace with offsets (syscalls/timens.py)
gets its __vdso_clock_gettime overwritten with `mov eax, SYS_clock_gettime;
syscall; ret`: the call then traps to the Sentry (a filter of the process's
own), which answers with its namespace's clocks.  The mapping is private:
the write (through /proc/<pid>/mem, as a debugger's breakpoint) copies the
page for that process alone.  gettimeofday and time, which read
CLOCK_REALTIME, keep the vDSO's fast path.

Where the function is comes from the Sentry's own vDSO, the same kernel's
image, found once through its dynamic symbols (pyelftools).
"""
import functools
import io
import os

SYS_CLOCK_GETTIME = 228
# mov eax, 228; syscall; ret
STUB = bytes([0xB8, SYS_CLOCK_GETTIME, 0, 0, 0, 0x0F, 0x05, 0xC3])
SYMBOL = "__vdso_clock_gettime"


def _vdso_range(pid):
    """(start, end) of process `pid`'s [vdso] mapping, or None."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.rstrip().endswith("[vdso]"):
                start, end = line.split(None, 1)[0].split("-")
                return int(start, 16), int(end, 16)
    return None


@functools.cache
def clock_gettime_offset():
    """Where __vdso_clock_gettime sits from the vDSO's start, or None
    (a kernel booted without a vDSO, or one without that symbol)."""
    from elftools.elf.elffile import ELFFile      # imported on first use (~20 ms)
    found = _vdso_range("self")
    if found is None:
        return None
    start, end = found
    with open("/proc/self/mem", "rb") as mem:
        mem.seek(start)
        image = mem.read(end - start)
    elf = ELFFile(io.BytesIO(image))
    base = min(seg["p_vaddr"] for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD")
    dynsym = elf.get_section_by_name(".dynsym")
    if dynsym is None:
        return None
    for sym in dynsym.get_symbol_by_name(SYMBOL) or ():
        return sym["st_value"] - base
    return None


def redirect_clock_gettime(pid):
    """Overwrite process `pid`'s vDSO clock_gettime with the syscall.
    Returns whether its clock_gettime is the syscall now (True too where
    the kernel maps no vDSO; False if the process is gone, or its vDSO has
    no such symbol)."""
    try:
        found = _vdso_range(pid)
        if found is None:
            return True
        offset = clock_gettime_offset()
        if offset is None:
            return False
        fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            return os.pwrite(fd, STUB, found[0] + offset) == len(STUB)
        finally:
            os.close(fd)
    except OSError:
        return False            # gone meanwhile
