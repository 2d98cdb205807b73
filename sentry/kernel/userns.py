"""User namespaces a guest makes (`unshare -r`, `unshare -U`, clone with
CLONE_NEWUSER): a view of the sandbox's ids, and capabilities that reach no
further than what the namespace owns.

The Kernel keeps every task's ids as the sandbox's (kernel/credentials.py:
the kuids of Linux).  A namespace below the sandbox's maps them through its
uid_map and gid_map, written once through /proc/<pid>/{uid,gid}_map (map
lines "inside outside count", `outside` in the parent namespace's ids), and
everything a task reads or passes as an id is in its namespace's terms: an
id the map does not cover reads as the overflow id, and is EINVAL to pass.

Capabilities: the task that makes or enters a namespace holds the full set
in it (capget shows them) but, as on Linux, none over what the namespace
above owns.  The Sentry's checks are all on the sandbox's objects
(Credentials.capable), so they fail for such a task; only what the
namespace itself owns answers to its capabilities (Credentials.capable_own):
set*id and setgroups within the map, namespaces made below it, their names
(sethostname), its own seccomp filters.  Linux would also let it override
the permissions of files whose owner and group the map covers
(capable_wrt_inode_uidgid); the Sentry does not (fail closed).
"""
import errno
import itertools

from sentry.errors import SyscallError

OVERFLOW_ID = 65534
LEVELS_MAX = 32              # the kernel's nesting limit (EUSERS past it)
MAP_LINES_MAX = 340          # UID_GID_MAP_MAX_EXTENTS
ID_LIMIT = 1 << 32
_idents = itertools.count(0xEFFFF000)   # /proc/<pid>/ns/user numbers, as inode numbers look


class UserNamespace:
    def __init__(self, parent, owner_uid, owner_gid):
        self.parent = parent                 # None: the sandbox's
        self.level = (parent.level if parent else 0) + 1
        self.owner_uid, self.owner_gid = owner_uid, owner_gid    # the creator's euid, egid (sandbox ids)
        self.maps = {"u": None, "g": None}   # [(inside, outside, count)] once written
        # /proc/<pid>/setgroups: "allow" until "deny"; a new namespace starts
        # as its parent is (create_user_ns copies the flag), so a denial holds below
        self.setgroups = parent.setgroups if parent else True
        self.ident = next(_idents)

    # ---- ids ----------------------------------------------------------------

    def kernel_id(self, kind, i):
        """The sandbox's id for id `i` of this namespace ("u" or "g"), or None
        if the maps on the way up do not cover it."""
        for inside, outside, count in self.maps[kind] or ():
            if inside <= i < inside + count:
                up = outside + i - inside
                return up if self.parent is None else self.parent.kernel_id(kind, up)
        return None

    def view(self, kind, kid):
        """How sandbox id `kid` reads here: the overflow id if unmapped."""
        up = kid if self.parent is None else self.parent.view(kind, kid)
        for inside, outside, count in self.maps[kind] or ():
            if outside <= up < outside + count:
                return inside + up - outside
        return OVERFLOW_ID

    # ---- /proc/<pid>/{uid,gid}_map and setgroups --------------------------------

    def map_text(self, kind):
        return "".join(f"{a:>10} {b:>10} {c:>10}\n" for a, b, c in self.maps[kind] or ())

    def write_map(self, kind, text, writer, privileged):
        """A write of `text` to this namespace's uid_map ("u") or gid_map
        ("g") by credentials `writer`, with `privileged` whether it holds
        CAP_SETUID (CAP_SETGID) over the parent namespace (the kernel's
        new_idmap_permitted).  Errors as map_write gives them."""
        if self.maps[kind] is not None:
            raise SyscallError(errno.EPERM)           # written once
        lines = []
        for line in text.splitlines():
            fields = line.split()
            if len(fields) != 3 or not all(f.isdigit() for f in fields):
                raise SyscallError(errno.EINVAL)
            inside, outside, count = (int(f) for f in fields)
            if count == 0 or inside + count > ID_LIMIT - 1 or outside + count > ID_LIMIT - 1:
                raise SyscallError(errno.EINVAL)
            lines.append((inside, outside, count))
        if not lines or len(lines) > MAP_LINES_MAX:
            raise SyscallError(errno.EINVAL)
        for i, (a, b, c) in enumerate(lines):       # no two ranges overlap, either side
            for a2, b2, c2 in lines[i + 1:]:
                if a < a2 + c2 and a2 < a + c or b < b2 + c2 and b2 < b + c:
                    raise SyscallError(errno.EINVAL)
        # without the capability: one id, the writer's own (and for gids only
        # once setgroups is denied), by the namespace's owner
        mine = writer.euid if kind == "u" else writer.egid
        own_only = (len(lines) == 1 and lines[0][2] == 1 and writer.euid == self.owner_uid
                    and self._parent_kernel_id(kind, lines[0][1]) == mine
                    and (kind == "u" or not self.setgroups))
        if not (privileged or own_only):
            raise SyscallError(errno.EPERM)
        # every outside id must be one the parent namespace maps
        for _, outside, count in lines:
            for j in (outside, outside + count - 1):
                if self.parent is not None and self.parent.kernel_id(kind, j) is None:
                    raise SyscallError(errno.EPERM)
        self.maps[kind] = lines

    def _parent_kernel_id(self, kind, i):
        return i if self.parent is None else self.parent.kernel_id(kind, i)

    def write_setgroups(self, text):
        word = text.strip()
        if word not in ("allow", "deny"):
            raise SyscallError(errno.EINVAL)
        if word == "allow" and not self.setgroups:
            raise SyscallError(errno.EPERM)           # deny is for good
        if self.maps["g"] is not None and (word == "deny") == self.setgroups:
            raise SyscallError(errno.EPERM)           # too late once gid_map is written
        self.setgroups = word == "allow"

    def below(self, other):
        """Whether this namespace is `other` or one below it (None: the sandbox's)."""
        ns = self
        while ns is not None:
            if ns is other:
                return True
            ns = ns.parent
        return other is None


def new_child(creds, chrooted):
    """A user namespace below `creds`' own, as create_user_ns makes it for
    unshare(CLONE_NEWUSER) and clone: EUSERS past the nesting limit, EPERM
    for a chrooted caller or one whose ids its own namespace does not map.
    No capability is needed."""
    parent = creds.userns
    if (parent.level if parent else 0) + 1 > LEVELS_MAX:
        raise SyscallError(errno.EUSERS)
    if chrooted:
        raise SyscallError(errno.EPERM)
    if parent is not None and (parent.kernel_id("u", parent.view("u", creds.euid)) != creds.euid
                               or parent.kernel_id("g", parent.view("g", creds.egid)) != creds.egid):
        raise SyscallError(errno.EPERM)
    return UserNamespace(parent, creds.euid, creds.egid)


def view(creds, kind, kid):
    """Sandbox id `kid` as credentials `creds` see it."""
    return kid if creds.userns is None else creds.userns.view(kind, kid)


def kernel_id(creds, kind, i):
    """Id `i` as credentials `creds` pass it, in the sandbox's terms: (uid_t)-1
    stays -1 (keep); EINVAL for an id their namespace does not map."""
    if creds.userns is None or i == 0xFFFFFFFF:
        return i
    k = creds.userns.kernel_id(kind, i)
    if k is None:
        raise SyscallError(errno.EINVAL)
    return k
