"""The staging area: Sentry-owned memory inside each guest address space.

What the host kernel reads on the guest's behalf after the Sentry's check (a
rewritten path, an `open_how`, a sockaddr) must not be writable by the guest,
or a racing thread swaps it between check and use.  The staging area is a
read-only anonymous mapping at one fixed address in every guest address space;
the Sentry writes it through /proc/<tid>/mem, and the memory calls that could
unmap, remap or re-protect it are trapped and checked in native/tracer.c.

Each thread owns one slot while it lives: a thread is in at most one syscall at
a time, so its slot can never be overwritten while the kernel still reads it.
"""
import errno

from sentry._native import lib
from sentry.errors import SyscallError

BASE = 0x3FF000000000
SLOT_SIZE = 2 * 4096          # a path (PATH_MAX) and a second path or struct
SLOTS = 4096
SIZE = SLOT_SIZE * SLOTS

PROT_READ = 0x1
MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MAP_FIXED_NOREPLACE = 0x02, 0x20, 0x4000, 0x100000
MAP_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE


class Slots:
    """Slot ownership for one address space (threads and vfork children share it)."""

    def __init__(self):
        self._mapped = False
        self.owner = {}       # tid -> slot index
        self.free = []        # released slots, reused first
        self.next = 0         # slots never used start here

    @property
    def mapped(self):
        """Whether the area is mapped in this address space: by Python
        (Kernel.map_staging), or by C for a new image's first thread
        (first_thread), which C tells."""
        if not self._mapped and self.owner:
            self._mapped = any(lib.sn_slot_ready(tid) for tid in self.owner)
        return self._mapped

    @mapped.setter
    def mapped(self, value):
        self._mapped = value

    def first_thread(self, tid):
        """A new image's one thread gets its slot now, with no area mapped
        yet: C maps it at the first call that needs it (native/tracer.c
        map_staging), and Python's own first staging call does if that
        comes first (Kernel.map_staging, which calls mark_mapped)."""
        slot = self.slot_of(tid, publish=False)
        lib.sn_set_slot_unmapped(tid, slot)

    def mark_mapped(self, tid):
        """Python mapped the area: tid's slot is usable by C as well."""
        self._mapped = True
        lib.sn_set_slot(tid, self.slot_of(tid))

    def slot_of(self, tid, publish=True):
        slot = self.owner.get(tid)
        if slot is None:
            if self.free:
                slot = self.free.pop()
            elif self.next < SLOTS:
                slot, self.next = self.next, self.next + 1
            else:
                raise SyscallError(errno.EAGAIN, "staging slots exhausted")
            self.owner[tid] = slot
            if publish:
                lib.sn_set_slot(tid, BASE + slot * SLOT_SIZE)    # the C fast path stages too
        return BASE + slot * SLOT_SIZE

    def release(self, tid):
        slot = self.owner.pop(tid, None)
        if slot is not None:
            self.free.append(slot)
            lib.sn_set_slot(tid, 0)


def is_mapped(tid):
    """Whether the staging area is mapped, and is ours: private, anonymous,
    read-only, exactly our size.  A guest mapping at that address (a hint
    the kernel honoured, a memfd with a writable alias) does not count."""
    want = f"{BASE:x}-{BASE + SIZE:x} r--p 00000000 00:00 0"
    with open(f"/proc/{tid}/maps") as f:
        for line in f:
            if line.startswith(f"{BASE:x}-"):
                return line.split() == want.split()
    return False


def stage(tid, slot_addr, *chunks):
    """Write chunks back to back into a slot; returns the address of each."""
    addrs, blob = [], b""
    for chunk in chunks:
        addrs.append(slot_addr + len(blob))
        blob += chunk
        blob += b"\0" * (-len(blob) % 8)
    if len(blob) > SLOT_SIZE:
        raise SyscallError(errno.ENAMETOOLONG)
    err = lib.sn_stage(tid, slot_addr, blob, len(blob))
    if err:
        raise SyscallError(-err)
    return addrs
