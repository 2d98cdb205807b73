"""Emulated credentials: what a task is, as seen inside the sandbox.

The guest runs on the host as the Sentry's own uid with no capabilities; the
identity it sees is this one, with the rules Linux applies to a process in a
user namespace that maps every id (credentials(7), capabilities(7) "Effect of
user ID changes on capabilities").  Host permission checks are not changed by
it: a guest that becomes uid 1000 still reaches files as the Sentry's uid.
Files' owners are compared as the guest sees them (sentry/kernel/idmap.py).
"""
import errno
import os
import stat

from sentry.kernel import idmap, userns
from sentry.kernel.idmap import UNCHANGED
from sentry.errors import SyscallError

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 6, 7, 8
CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_MAC_OVERRIDE = 9, 27, 32
CAP_SYS_CHROOT, CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_SYS_NICE, CAP_SYS_RESOURCE = 18, 19, 21, 23, 24
CAP_SYS_TIME = 25


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

# securebits (linux/securebits.h): each bit has a lock bit just above it
SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS, SECBIT_NO_CAP_AMBIENT_RAISE = 1, 4, 16, 64
SECBIT_EXEC_RESTRICT_FILE, SECBIT_EXEC_DENY_INTERACTIVE = 256, 1024


def _host_release():
    import os
    try:
        return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        return (0, 0)


# the bits the host kernel knows (the exec ones came with Linux 6.14): others are EPERM
SECURE_ALL_BITS = (SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE
                   | (SECBIT_EXEC_RESTRICT_FILE | SECBIT_EXEC_DENY_INTERACTIVE
                      if _host_release() >= (6, 14) else 0))
SECURE_ALL_LOCKS = SECURE_ALL_BITS << 1
_SENTRY_IDS = (os.geteuid(), os.getegid())
ID_MAX = 0xFFFFFFFE      # (uid_t)-1 means "unchanged" in the set*id calls and chown


def _valid(i):
    if i > ID_MAX:
        raise SyscallError(errno.EINVAL)
    return i


class Credentials:
    __slots__ = ("ruid", "euid", "suid", "fsuid", "rgid", "egid", "sgid", "fsgid",
                 "groups", "cap_permitted", "cap_effective", "cap_inheritable",
                 "cap_bounding", "cap_ambient", "securebits", "no_new_privs", "seccomp_filters", "userns")

    def __init__(self, uid=0, gid=0, groups=(), no_new_privs=False):
        self.ruid = self.euid = self.suid = self.fsuid = uid
        self.rgid = self.egid = self.sgid = self.fsgid = gid
        self.groups = tuple(groups)
        caps = ALL_CAPS if uid == 0 else 0
        self.cap_permitted = self.cap_effective = caps
        self.cap_inheritable = self.cap_ambient = 0
        # as in a new user namespace: the full bounding set, no securebits
        # (the host's real ones are empty and locked: sentry/platform/privileges.py)
        self.cap_bounding = ALL_CAPS
        self.securebits = 0
        # the guest's view of two task flags the host's copies cannot show:
        # the host's no_new_privs is always set (an unprivileged filter needs
        # it) and its seccomp filters start with the Sentry's.  Kept here, as
        # both are inherited by fork and kept by exec, as credentials are.
        self.no_new_privs = no_new_privs
        self.seccomp_filters = 0          # the guest's own, stacked under the Sentry's
        self.userns = None                # a user namespace below the sandbox's (kernel/userns.py)

    def copy(self):
        c = Credentials.__new__(Credentials)
        for name in Credentials.__slots__:
            setattr(c, name, getattr(self, name))
        return c

    def capable(self, cap):
        """Over the sandbox's objects: files, processes, its namespaces."""
        return self.userns is None and self.capable_own(cap)

    def capable_own(self, cap):
        """In the task's own user namespace: over what that namespace owns
        (kernel/userns.py); the same as capable() in the sandbox's."""
        return bool(self.cap_effective >> cap & 1)

    def ns_capable(self, ns, cap):
        """The kernel's cap_capable: over what user namespace `ns` owns
        (None: the sandbox's): the capability in the task's own namespace
        if that is `ns` or above it, or all of them as the owner of the
        namespace just below the task's on the way to `ns`."""
        mine = self.userns
        while True:
            if ns is mine:
                return self.capable_own(cap)
            if ns is None or (mine is not None and ns.level <= mine.level):
                return False
            if ns.parent is mine and ns.owner_uid == self.euid:
                return True
            ns = ns.parent

    def enter_userns(self, ns):
        """unshare(CLONE_NEWUSER), or a clone's child with it: the kernel's
        set_cred_user_ns gives the full set there, no ambient or inheritable
        capabilities, no securebits."""
        self.userns = ns
        self.cap_permitted = self.cap_effective = self.cap_bounding = ALL_CAPS
        self.cap_inheritable = self.cap_ambient = 0
        self.securebits = 0

    def view(self, kind, kid):
        """Sandbox id `kid` ("u" or "g") as these credentials' user namespace
        shows it (kernel/userns.py)."""
        return userns.view(self, kind, kid)

    @property
    def root_uid(self):
        """The id that is root in the task's user namespace (what maps to
        its 0), or -1 where none does."""
        if self.userns is None:
            return 0
        k = self.userns.kernel_id("u", 0)
        return -1 if k is None else k

    def secure(self, bit):
        return bool(self.securebits & bit)

    # ---- the set*id family: one set of rules for uids and gids ---------------
    # kind "u" or "g" names the fields (ruid, euid, suid, fsuid / rgid…); each
    # call checks first, then changes all at once.  Only uid changes move
    # capabilities (_uids_changed).

    def _ids(self, kind):
        return tuple(getattr(self, f"{n}{kind}id") for n in "res")

    def _may_set(self, kind):
        # in its own namespace: the ids it can name are those its map covers
        return self.capable_own(CAP_SETUID if kind == "u" else CAP_SETGID)

    def _set(self, kind, **values):
        for n, v in values.items():
            setattr(self, f"{n}{kind}id", v)

    def _setid(self, kind, i):
        _valid(i)
        if self._may_set(kind):
            self._set(kind, r=i, e=i, s=i, fs=i)
        elif i in (getattr(self, f"r{kind}id"), getattr(self, f"s{kind}id")):
            self._set(kind, e=i, fs=i)
        else:
            raise SyscallError(errno.EPERM)

    def _setreid(self, kind, ri, ei):
        real, eff, _ = self._ids(kind)
        r = real if ri == UNCHANGED else _valid(ri)
        e = eff if ei == UNCHANGED else _valid(ei)
        if not self._may_set(kind):
            if ri != UNCHANGED and r not in (real, eff):
                raise SyscallError(errno.EPERM)
            if ei != UNCHANGED and e not in self._ids(kind):
                raise SyscallError(errno.EPERM)
        if ri != UNCHANGED or (ei != UNCHANGED and e != real):
            self._set(kind, s=e)
        self._set(kind, r=r, e=e, fs=e)

    def _setresid(self, kind, ri, ei, si):
        mine = self._ids(kind)
        given = (ri, ei, si)
        new = [old if v == UNCHANGED else _valid(v) for old, v in zip(mine, given)]
        if not self._may_set(kind):
            if any(v != UNCHANGED and n not in mine for v, n in zip(given, new)):
                raise SyscallError(errno.EPERM)
        self._set(kind, r=new[0], e=new[1], s=new[2], fs=new[1])

    def _setfsid(self, kind, fs):
        """Returns the previous fs id, whether or not it changed (setfsuid(2))."""
        prev = getattr(self, f"fs{kind}id")
        if fs <= ID_MAX and (self._may_set(kind) or fs in self._ids(kind) + (prev,)):
            self._set(kind, fs=fs)
        return prev

    def _uid_call(self, change, *args, fs=False):
        old = (self.ruid, self.euid, self.suid, self.fsuid)
        result = change("u", *args)
        if not self.secure(SECBIT_NO_SETUID_FIXUP):
            if fs:
                self._fsuid_changed(old[3])
            else:
                self._uids_changed(old)
        return result

    def setuid(self, uid):
        self._uid_call(self._setid, uid)

    def setreuid(self, ruid, euid):
        self._uid_call(self._setreid, ruid, euid)

    def setresuid(self, ruid, euid, suid):
        self._uid_call(self._setresid, ruid, euid, suid)

    def setfsuid(self, fsuid):
        return self._uid_call(self._setfsid, fsuid, fs=True)

    def setgid(self, gid):
        self._setid("g", gid)

    def setregid(self, rgid, egid):
        self._setreid("g", rgid, egid)

    def setresgid(self, rgid, egid, sgid):
        self._setresid("g", rgid, egid, sgid)

    def setfsgid(self, fsgid):
        return self._setfsid("g", fsgid)

    def _uids_changed(self, old):
        """The kernel's cap_emulate_setxuid: leaving root drops the
        permitted and effective sets (but with SECBIT_KEEP_CAPS the permitted
        one) and always the ambient set; the effective set follows the euid."""
        ruid, euid, suid, _ = old
        root = self.root_uid
        if root in (ruid, euid, suid) and root not in (self.ruid, self.euid, self.suid):
            if not self.secure(SECBIT_KEEP_CAPS):
                self.cap_permitted = self.cap_effective = 0
            self.cap_ambient = 0
        if euid == root and self.euid != root:
            self.cap_effective = 0
        elif euid != root and self.euid == root:
            self.cap_effective = self.cap_permitted

    def _fsuid_changed(self, fsuid):
        root = self.root_uid
        if fsuid == root and self.fsuid != root:
            self.cap_effective &= ~FS_CAPS
        elif fsuid != root and self.fsuid == root:
            self.cap_effective |= self.cap_permitted & FS_CAPS

    def setgroups(self, groups):
        if len(groups) > NGROUPS_MAX:
            raise SyscallError(errno.EINVAL)
        if not self.capable_own(CAP_SETGID) or (self.userns is not None and not self.userns.setgroups):
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

    def permits(self, st, want, real=False, owner=None):
        """Whether mode bits `want` (4 r, 2 w, 1 x) of a file are granted to
        these credentials (the real ids with real=True, as access(2) uses),
        the file's owner and group being `owner` (guest ids) if given."""
        uid, gid = (self.ruid, self.rgid) if real else (self.fsuid, self.fsgid)
        override = self.capable(CAP_DAC_OVERRIDE) and (not real or self.ruid == 0)
        is_dir = stat.S_ISDIR(st.st_mode)
        if override and (is_dir or not want & 1 or st.st_mode & 0o111):
            return True
        if self.capable(CAP_DAC_READ_SEARCH) and not want & 2 and (is_dir or not want & 1) \
                and (not real or self.ruid == 0):
            return True
        ids = idmap.current
        owner, group = owner or (ids.uid_view(st.st_uid), ids.gid_view(st.st_gid))
        if owner == uid:
            bits = st.st_mode >> 6
        elif group == gid or group in self.groups:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        return bits & want == want

    def check(self, st, want, real=False, owner=None):
        if not self.permits(st, want, real, owner):
            raise SyscallError(errno.EACCES)

    def check_sticky(self, dir_st, st):
        """Removing or renaming `st` out of a sticky directory: its owner,
        the directory's, or CAP_FOWNER (EPERM)."""
        owners = (idmap.current.uid_view(st.st_uid), idmap.current.uid_view(dir_st.st_uid))
        if dir_st.st_mode & stat.S_ISVTX and self.fsuid not in owners and not self.capable(CAP_FOWNER):
            raise SyscallError(errno.EPERM)

    # ---- file attributes the Sentry changes for the guest ---------------------

    def chown_ids(self, st, uid, gid):
        """chown(2) of a file whose host stat is st to the guest's uid, gid
        (UNCHANGED for "keep"): EINVAL for an id the sandbox does not map,
        EPERM unless CAP_CHOWN, or the owner keeps the owner and picks one of
        its own groups.  The host ids to give os.chown (-1: keep).  uid
        and gid are in the task's user namespace's terms (EINVAL for one it
        does not map, after the lookup, as chown_common checks)."""
        uid, gid = userns.kernel_id(self, "u", uid), userns.kernel_id(self, "g", gid)
        host = idmap.current.host_ids(uid, gid)
        if self.capable(CAP_CHOWN):
            return host
        owner, group = idmap.current.uid_view(st.st_uid), idmap.current.gid_view(st.st_gid)
        if owner != self.fsuid or (uid != UNCHANGED and uid != owner):
            raise SyscallError(errno.EPERM)
        if gid != UNCHANGED and gid != group and gid not in (self.fsgid, *self.groups):
            raise SyscallError(errno.EPERM)
        return host

    def creator_host_ids(self):
        """The host (uid, gid) that objects these credentials create must
        be given (fsuid and fsgid, mapped), or None when those are the
        Sentry's own, which the host gives them anyway, or ids the sandbox
        does not map (they keep the Sentry's: syscalls/owner.py)."""
        try:
            ids = idmap.current.host_ids(self.fsuid, self.fsgid)
        except SyscallError:
            return None
        return None if ids == _SENTRY_IDS else ids

    def may_confine_itself(self):
        """What seccomp(2) and landlock_restrict_self(2) ask of a task that
        adds a filter or a domain: no_new_privs, or CAP_SYS_ADMIN."""
        return self.no_new_privs or self.capable_own(CAP_SYS_ADMIN)

    def may_inspect(self, target):
        """ptrace_may_access(PTRACE_MODE_*_REALCREDS) on emulated ids: the
        caller's real uid and gid are each of the target's three, or it holds
        CAP_SYS_PTRACE (EPERM)."""
        same = (self.ruid == target.ruid == target.euid == target.suid
                and self.rgid == target.rgid == target.egid == target.sgid)
        if not same and not self.capable(CAP_SYS_PTRACE):
            raise SyscallError(errno.EPERM)

    def may_reschedule(self, target):
        """Changing another task's nice value, scheduling policy or CPUs
        (the kernel's check_same_owner and set_one_prio): its real or
        effective uid is the caller's effective one, or CAP_SYS_NICE (EPERM)."""
        if self.euid not in (target.ruid, target.euid) and not self.capable(CAP_SYS_NICE):
            raise SyscallError(errno.EPERM)

    def check_chmod(self, st):
        """chmod(2): the owner, or CAP_FOWNER."""
        if idmap.current.uid_view(st.st_uid) != self.fsuid and not self.capable(CAP_FOWNER):
            raise SyscallError(errno.EPERM)

    def chmod_mode(self, st, mode):
        """The mode chmod(2) gives a file whose host stat is st, once
        check_chmod passed: S_ISGID is dropped unless the caller is in the
        file's group or holds CAP_FSETID (the kernel's setattr_prepare; the
        Sentry, which makes the change, holds it)."""
        mode &= 0o7777
        group = idmap.current.gid_view(st.st_gid)
        if mode & stat.S_ISGID and group != self.fsgid and group not in self.groups \
                and not self.capable(CAP_FSETID):
            mode &= ~stat.S_ISGID
        return mode

    # ---- capabilities --------------------------------------------------------

    def capset(self, effective, permitted, inheritable):
        # capset(2), the kernel's cap_capset: no new permitted capability;
        # inheritable only from the permitted set (anything with
        # CAP_SETPCAP), and never beyond the bounding set; effective within
        # the new permitted; the ambient set shrinks to what stays both
        # permitted and inheritable.
        effective, permitted, inheritable = effective & ALL_CAPS, permitted & ALL_CAPS, inheritable & ALL_CAPS
        if inheritable & ~(self.cap_inheritable | self.cap_permitted) and not self.capable(CAP_SETPCAP):
            raise SyscallError(errno.EPERM)
        if inheritable & ~(self.cap_inheritable | self.cap_bounding):
            raise SyscallError(errno.EPERM)
        if permitted & ~self.cap_permitted:
            raise SyscallError(errno.EPERM)
        if effective & ~permitted:
            raise SyscallError(errno.EPERM)
        self.cap_effective, self.cap_permitted, self.cap_inheritable = effective, permitted, inheritable
        self.cap_ambient &= permitted & inheritable

    # ---- prctl: securebits, keep-caps, the bounding and ambient sets ---------

    def set_securebits(self, bits):
        """PR_SET_SECUREBITS: no change to a locked bit, no unlocking, no
        unknown bit, and CAP_SETPCAP for anything (EPERM)."""
        old = self.securebits
        if ((old & SECURE_ALL_LOCKS) >> 1) & (old ^ bits) or old & SECURE_ALL_LOCKS & ~bits \
                or bits & ~(SECURE_ALL_LOCKS | SECURE_ALL_BITS) or not self.capable(CAP_SETPCAP):
            raise SyscallError(errno.EPERM)
        self.securebits = bits

    def set_keepcaps(self, on):
        """PR_SET_KEEPCAPS: 0 or 1 (EINVAL), unless the bit is locked (EPERM)."""
        if on > 1:
            raise SyscallError(errno.EINVAL)
        if self.secure(SECBIT_KEEP_CAPS << 1):
            raise SyscallError(errno.EPERM)
        self.securebits = self.securebits | SECBIT_KEEP_CAPS if on else self.securebits & ~SECBIT_KEEP_CAPS

    @staticmethod
    def cap_valid(cap):
        return 0 <= cap and ALL_CAPS >> cap & 1

    def bounding_drop(self, cap):
        """PR_CAPBSET_DROP: CAP_SETPCAP first (EPERM), then a known cap (EINVAL)."""
        if not self.capable(CAP_SETPCAP):
            raise SyscallError(errno.EPERM)
        if not self.cap_valid(cap):
            raise SyscallError(errno.EINVAL)
        self.cap_bounding &= ~(1 << cap)

    def ambient_raise(self, cap):
        """PR_CAP_AMBIENT_RAISE: only a cap both permitted and inheritable,
        and not under SECBIT_NO_CAP_AMBIENT_RAISE (EPERM)."""
        if not (self.cap_permitted & self.cap_inheritable) >> cap & 1 or self.secure(SECBIT_NO_CAP_AMBIENT_RAISE):
            raise SyscallError(errno.EPERM)
        self.cap_ambient |= 1 << cap

    def exec(self, setuid=None, setgid=None):
        """execve(2), as the kernel's bprm_fill_uid and
        cap_bprm_creds_from_file compute it for a file with no capabilities:
        a set-user-id file's owner `setuid` (a set-group-id, group-executable
        file's group `setgid`; None if it is neither, or on a nosuid mount)
        becomes the effective id unless no_new_privs is set; the saved ids
        take the effective ones; root (real or effective, unless
        SECBIT_NOROOT) gets its inheritable set and the bounding set as
        permitted, effective only as euid 0; the ambient set is kept and
        added to both, but a set-id exec clears it; SECBIT_KEEP_CAPS is
        cleared.  Returns whether the exec is secure (AT_SECURE): set-id,
        or a user whose real uid is not root gained capabilities."""
        if self.userns is not None:
            setuid = setgid = None        # a set-id file's owner is the sandbox's: not honoured below it
        if not self.no_new_privs:
            if setuid is not None:
                self.euid = setuid
            if setgid is not None:
                self.egid = setgid
        # the kernel's is_setid: effective ids not the real ones (so also
        # for a task whose ids differed already)
        is_setid = self.euid != self.ruid or self.egid != self.rgid
        if is_setid:
            self.cap_ambient = 0
        self.suid, self.fsuid = self.euid, self.euid
        self.sgid, self.fsgid = self.egid, self.egid
        permitted, effective = 0, False
        root = self.root_uid
        if not self.secure(SECBIT_NOROOT) and (self.euid == root or self.ruid == root):
            permitted = self.cap_bounding | self.cap_inheritable
            effective = self.euid == root
        self.cap_permitted = permitted | self.cap_ambient
        self.cap_effective = self.cap_permitted if effective else self.cap_ambient
        self.securebits &= ~SECBIT_KEEP_CAPS
        return is_setid or (self.ruid != root and (effective or bool(permitted & ~self.cap_ambient)))
