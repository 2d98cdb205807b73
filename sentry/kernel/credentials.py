"""Emulated credentials: what a task is, as seen inside the sandbox.

The guest runs on the host as the Sentry's own uid with no capabilities; the
identity it sees is this one, with the rules Linux applies to a process in a
user namespace that maps every id (credentials(7), capabilities(7) "Effect of
user ID changes on capabilities").  Host permission checks are not changed by
it: a guest that becomes uid 1000 still reaches files as the Sentry's uid.
"""
import errno
import stat

from syscalls.errors import SyscallError

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 6, 7, 8
CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_MAC_OVERRIDE = 9, 27, 32


def _last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


ALL_CAPS = (1 << (_last_cap() + 1)) - 1
# The capabilities an fsuid change of root gains or loses (capabilities(7)).
FS_CAPS = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
                               CAP_FSETID, CAP_LINUX_IMMUTABLE, CAP_MAC_OVERRIDE, CAP_MKNOD))
NGROUPS_MAX = 65536
ID_MAX = 0xFFFFFFFE      # (uid_t)-1 means "unchanged" in the set*id calls
UNCHANGED = 0xFFFFFFFF


def _valid(i):
    if i > ID_MAX:
        raise SyscallError(errno.EINVAL)
    return i


class Credentials:
    __slots__ = ("ruid", "euid", "suid", "fsuid", "rgid", "egid", "sgid", "fsgid",
                 "groups", "cap_permitted", "cap_effective", "cap_inheritable")

    def __init__(self, uid=0, gid=0, groups=()):
        self.ruid = self.euid = self.suid = self.fsuid = uid
        self.rgid = self.egid = self.sgid = self.fsgid = gid
        self.groups = tuple(groups)
        caps = ALL_CAPS if uid == 0 else 0
        self.cap_permitted = self.cap_effective = caps
        self.cap_inheritable = 0

    def copy(self):
        c = Credentials.__new__(Credentials)
        for name in Credentials.__slots__:
            setattr(c, name, getattr(self, name))
        return c

    def capable(self, cap):
        return bool(self.cap_effective >> cap & 1)

    # ---- uids: each call checks first, then changes all at once -------------

    def setuid(self, uid):
        _valid(uid)
        old = self._uids()
        if self.capable(CAP_SETUID):
            self.ruid = self.euid = self.suid = self.fsuid = uid
        elif uid in (self.ruid, self.suid):
            self.euid = self.fsuid = uid
        else:
            raise SyscallError(errno.EPERM)
        self._uids_changed(old)

    def setreuid(self, ruid, euid):
        old = self._uids()
        r = self.ruid if ruid == UNCHANGED else _valid(ruid)
        e = self.euid if euid == UNCHANGED else _valid(euid)
        if not self.capable(CAP_SETUID):
            if ruid != UNCHANGED and r not in (self.ruid, self.euid):
                raise SyscallError(errno.EPERM)
            if euid != UNCHANGED and e not in (self.ruid, self.euid, self.suid):
                raise SyscallError(errno.EPERM)
        if ruid != UNCHANGED or (euid != UNCHANGED and e != self.ruid):
            self.suid = e
        self.ruid, self.euid, self.fsuid = r, e, e
        self._uids_changed(old)

    def setresuid(self, ruid, euid, suid):
        old = self._uids()
        new = [getattr(self, n) if v == UNCHANGED else _valid(v)
               for n, v in (("ruid", ruid), ("euid", euid), ("suid", suid))]
        if not self.capable(CAP_SETUID):
            mine = (self.ruid, self.euid, self.suid)
            if any(v != UNCHANGED and n not in mine for v, n in zip((ruid, euid, suid), new)):
                raise SyscallError(errno.EPERM)
        self.ruid, self.euid, self.suid = new
        self.fsuid = self.euid
        self._uids_changed(old)

    def setfsuid(self, fsuid):
        """Returns the previous fsuid, whether or not it changed (setfsuid(2))."""
        prev = self.fsuid
        if fsuid <= ID_MAX and (self.capable(CAP_SETUID) or
                                fsuid in (self.ruid, self.euid, self.suid, self.fsuid)):
            old = self._uids()
            self.fsuid = fsuid
            self._uids_changed(old)
        return prev

    def _uids(self):
        return (self.ruid, self.euid, self.suid, self.fsuid)

    def _uids_changed(self, old):
        ruid, euid, suid, fsuid = old
        if 0 in (ruid, euid, suid) and 0 not in (self.ruid, self.euid, self.suid):
            self.cap_permitted = self.cap_effective = 0
        if euid == 0 and self.euid != 0:
            self.cap_effective = 0
        elif euid != 0 and self.euid == 0:
            self.cap_effective = self.cap_permitted
        if fsuid == 0 and self.fsuid != 0:
            self.cap_effective &= ~FS_CAPS
        elif fsuid != 0 and self.fsuid == 0:
            self.cap_effective |= self.cap_permitted & FS_CAPS

    # ---- gids: no capability effects ---------------------------------------

    def setgid(self, gid):
        _valid(gid)
        if self.capable(CAP_SETGID):
            self.rgid = self.egid = self.sgid = self.fsgid = gid
        elif gid in (self.rgid, self.sgid):
            self.egid = self.fsgid = gid
        else:
            raise SyscallError(errno.EPERM)

    def setregid(self, rgid, egid):
        r = self.rgid if rgid == UNCHANGED else _valid(rgid)
        e = self.egid if egid == UNCHANGED else _valid(egid)
        if not self.capable(CAP_SETGID):
            if rgid != UNCHANGED and r not in (self.rgid, self.egid):
                raise SyscallError(errno.EPERM)
            if egid != UNCHANGED and e not in (self.rgid, self.egid, self.sgid):
                raise SyscallError(errno.EPERM)
        if rgid != UNCHANGED or (egid != UNCHANGED and e != self.rgid):
            self.sgid = e
        self.rgid, self.egid, self.fsgid = r, e, e

    def setresgid(self, rgid, egid, sgid):
        new = [getattr(self, n) if v == UNCHANGED else _valid(v)
               for n, v in (("rgid", rgid), ("egid", egid), ("sgid", sgid))]
        if not self.capable(CAP_SETGID):
            mine = (self.rgid, self.egid, self.sgid)
            if any(v != UNCHANGED and n not in mine for v, n in zip((rgid, egid, sgid), new)):
                raise SyscallError(errno.EPERM)
        self.rgid, self.egid, self.sgid = new
        self.fsgid = self.egid

    def setfsgid(self, fsgid):
        prev = self.fsgid
        if fsgid <= ID_MAX and (self.capable(CAP_SETGID) or
                                fsgid in (self.rgid, self.egid, self.sgid, self.fsgid)):
            self.fsgid = fsgid
        return prev

    def setgroups(self, groups):
        if len(groups) > NGROUPS_MAX:
            raise SyscallError(errno.EINVAL)
        if not self.capable(CAP_SETGID):
            raise SyscallError(errno.EPERM)
        for g in groups:
            _valid(g)
        self.groups = tuple(sorted(set(groups)))

    # ---- file permissions: what the host does not check for the guest --------

    @property
    def checks_files(self):
        """Whether the Sentry must check file permissions itself: the host
        checks as sentry's own uid, which is all a root guest needs (it could
        override any mode anyway); a guest without the override capabilities
        (it dropped root) must be held to its own ids."""
        return not all(self.capable(c) for c in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER))

    def permits(self, st, want, real=False):
        """Whether mode bits `want` (4 r, 2 w, 1 x) of a file are granted to
        these credentials (the real ids with real=True, as access(2) uses)."""
        uid, gid = (self.ruid, self.rgid) if real else (self.fsuid, self.fsgid)
        override = self.capable(CAP_DAC_OVERRIDE) and (not real or self.ruid == 0)
        is_dir = stat.S_ISDIR(st.st_mode)
        if override and (is_dir or not want & 1 or st.st_mode & 0o111):
            return True
        if self.capable(CAP_DAC_READ_SEARCH) and not want & 2 and (is_dir or not want & 1) \
                and (not real or self.ruid == 0):
            return True
        if st.st_uid == uid:
            bits = st.st_mode >> 6
        elif st.st_gid == gid or st.st_gid in self.groups:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        return bits & want == want

    def check(self, st, want, real=False):
        if not self.permits(st, want, real):
            raise SyscallError(errno.EACCES)

    def check_sticky(self, dir_st, st):
        """Removing or renaming `st` out of a sticky directory: its owner,
        the directory's, or CAP_FOWNER (EPERM)."""
        if dir_st.st_mode & stat.S_ISVTX and self.fsuid not in (st.st_uid, dir_st.st_uid) \
                and not self.capable(CAP_FOWNER):
            raise SyscallError(errno.EPERM)

    # ---- file attributes the Sentry changes for the guest ---------------------

    def check_chown(self, st, uid, gid):
        """chown(2): EPERM unless CAP_CHOWN, or the owner keeps the owner and
        picks one of its own groups (uid, gid: UNCHANGED for "keep")."""
        if self.capable(CAP_CHOWN):
            return
        if st.st_uid != self.fsuid or (uid != UNCHANGED and uid != st.st_uid):
            raise SyscallError(errno.EPERM)
        if gid != UNCHANGED and gid != st.st_gid and gid not in (self.fsgid, *self.groups):
            raise SyscallError(errno.EPERM)

    def check_chmod(self, st):
        """chmod(2): the owner, or CAP_FOWNER."""
        if st.st_uid != self.fsuid and not self.capable(CAP_FOWNER):
            raise SyscallError(errno.EPERM)

    # ---- capabilities --------------------------------------------------------

    def capset(self, effective, permitted, inheritable):
        # capset(2): no new permitted capability; inheritable only from the
        # permitted set (or anything with CAP_SETPCAP, bounded by the bounding
        # set, which is full inside); effective within the new permitted.
        if permitted & ~self.cap_permitted:
            raise SyscallError(errno.EPERM)
        if inheritable & ~(self.cap_inheritable | self.cap_permitted) and not self.capable(CAP_SETPCAP):
            raise SyscallError(errno.EPERM)
        if effective & ~permitted:
            raise SyscallError(errno.EPERM)
        self.cap_effective, self.cap_permitted, self.cap_inheritable = (
            effective & ALL_CAPS, permitted & ALL_CAPS, inheritable & ALL_CAPS)

    def exec(self):
        """execve(2): the saved ids take the effective ones; root (real or
        effective) gets every capability, others none (no file capabilities:
        no_new_privs is set)."""
        self.suid, self.fsuid = self.euid, self.euid
        self.sgid, self.fsgid = self.egid, self.egid
        if self.euid == 0 or self.ruid == 0:
            self.cap_permitted = ALL_CAPS | self.cap_inheritable
            self.cap_effective = self.cap_permitted if self.euid == 0 else 0
        else:
            self.cap_permitted = self.cap_effective = 0
