"""File locks the sandbox keeps for itself.

A guest's lock on a file of its own (a writable mount) is the host kernel's:
other sandboxes and the host see it, as they see the file.  A lock on a file
the sandbox only borrows from the host -- the default root's read-only lower
layer, a host file handed over on stdin, a pipe -- must not reach the host's
inode (a read-only fd on /etc/passwd would block the host's own lockers), so
it lives here instead, per inode, with Linux's semantics between guest
processes (fs/locks.c):

- flock(2): one lock per open file description, shared or exclusive; a
  conversion drops the old lock first (and keeps none if the new one
  conflicts); released when the description's last fd is closed.
- POSIX record locks (F_SETLK): byte ranges owned by a process; an owner's
  ranges never conflict with each other, they merge and split; F_GETLK
  reports the first conflicting lock in the kernel's order (owners in order
  of arrival, each owner's ranges by start).
- OFD locks (F_OFD_SETLK): the same ranges, owned by an open file description
  (l_pid -1), in the same space as POSIX ones.

The table cannot see close(2) (it runs in BPF): an owner's locks are dropped
when it is found gone -- a process that exited or holds no fd on the file any
more, a description no guest fd refers to -- which `prune` asks of the caller
whenever a lock stands in another's way, so no lock of a gone owner ever
blocks anyone.  (Linux also drops a process's record locks when it closes
*any* of its fds on the file; here only closing the last one does.)
"""

RD, WR, UN = 0, 1, 2            # F_RDLCK, F_WRLCK, F_UNLCK
OFFSET_MAX = (1 << 63) - 1


class Owner:
    """A process (tgid: record locks) or an open file description (dup: the
    Sentry's copy of it, which names it for kcmp; flock and OFD locks)."""
    __slots__ = ("tgid", "dup")

    def __init__(self, tgid=None, dup=None):
        self.tgid, self.dup = tgid, dup

    def __repr__(self):
        return f"Owner(tgid={self.tgid})" if self.tgid is not None else f"Owner(ofd, dup={self.dup})"


class Range:
    __slots__ = ("owner", "type", "start", "end")     # end inclusive

    def __init__(self, owner, type_, start, end):
        self.owner, self.type, self.start, self.end = owner, type_, start, end


class Inode:
    def __init__(self):
        self.flocks = []        # [owner, RD or WR], in order of arrival
        self.ranges = []        # Range, in the kernel's order

    def empty(self):
        return not self.flocks and not self.ranges

    def owners(self):
        return {o for o, _ in self.flocks} | {r.owner for r in self.ranges}

    # ---- flock ----------------------------------------------------------

    def flock(self, owner, type_):
        """Apply flock(2); False when another description's lock conflicts
        (the owner's old lock is gone then, as on Linux)."""
        for i, (o, t) in enumerate(self.flocks):
            if o is owner:
                if t == type_:
                    return True
                del self.flocks[i]
                break
        if type_ == UN:
            return True
        if any(o is not owner and (type_ == WR or t == WR) for o, t in self.flocks):
            return False
        self.flocks.append([owner, type_])
        return True

    # ---- record locks ------------------------------------------------------

    def conflict(self, owner, type_, start, end):
        """The first range of another owner that a lock of type_ over
        [start, end] conflicts with, or None."""
        for r in self.ranges:
            if r.owner is not owner and r.start <= end and start <= r.end and WR in (type_, r.type):
                return r
        return None

    def setlk(self, owner, type_, start, end):
        """Apply a record lock (or unlock: UN); the conflicting range, and
        nothing changed, when one stands in the way."""
        if type_ != UN:
            c = self.conflict(owner, type_, start, end)
            if c is not None:
                return c
        mine, order = [], []
        for r in self.ranges:
            if r.owner not in order:
                order.append(r.owner)
            if r.owner is owner:
                mine.append(r)
        if owner not in order:
            order.append(owner)
        kept = []
        for r in mine:
            if type_ != UN and r.type == type_ and r.start <= end + 1 and start <= r.end + 1:
                start, end = min(start, r.start), max(end, r.end)       # merged into the new one
            elif r.end < start or r.start > end:
                kept.append(r)
            else:                                                       # cut around the new one
                if r.start < start:
                    kept.append(Range(owner, r.type, r.start, start - 1))
                if r.end > end:
                    kept.append(Range(owner, r.type, end + 1, r.end))
        if type_ != UN:
            kept.append(Range(owner, type_, start, end))
        kept.sort(key=lambda r: r.start)
        others = {o: [r for r in self.ranges if r.owner is o] for o in order if o is not owner}
        self.ranges = [r for o in order for r in (kept if o is owner else others[o])]
        return None

    def drop(self, owner):
        self.flocks = [f for f in self.flocks if f[0] is not owner]
        self.ranges = [r for r in self.ranges if r.owner is not owner]


class LockTable:
    """Every inode the sandbox keeps locks on: (st_dev, st_ino) -> Inode."""

    def __init__(self):
        self.inodes = {}
        self.processes = {}        # tgid -> its record-lock Owner

    def inode(self, key):
        node = self.inodes.get(key)
        if node is None:
            node = self.inodes[key] = Inode()
        return node

    def process_owner(self, tgid):
        owner = self.processes.get(tgid)
        if owner is None:
            owner = self.processes[tgid] = Owner(tgid=tgid)
        return owner

    def ofd_owners(self, key):
        node = self.inodes.get(key)
        return [o for o in node.owners() if o.dup is not None] if node else []

    def prune(self, key, alive, release):
        """Drop the locks of every owner of `key` that alive(owner) says is
        gone; release(owner) frees what it holds (its dup)."""
        node = self.inodes.get(key)
        if node is None:
            return
        for owner in list(node.owners()):
            if not alive(owner):
                node.drop(owner)
                self.forget(key, owner, release)
        if node.empty():
            del self.inodes[key]

    def forget(self, key, owner, release):
        """The owner holds nothing on key any more: free it unless it holds
        locks elsewhere (a process) or at all (a description: one inode)."""
        if owner.dup is not None:
            if not any(owner in n.owners() for n in self.inodes.values()):
                release(owner)
        elif not any(owner in n.owners() for n in self.inodes.values()):
            self.processes.pop(owner.tgid, None)

    def settle(self, key, owner, release):
        """After an operation: drop empty entries."""
        node = self.inodes.get(key)
        if node is not None and owner not in node.owners():
            if node.empty():
                del self.inodes[key]
            self.forget(key, owner, release)

    def all_ofd_owners(self):
        return {o for n in self.inodes.values() for o in n.owners() if o.dup is not None}
