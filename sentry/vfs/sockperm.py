"""Unix socket files of a guest that is not root: reachable by their owner.

In root mode the guest's host process is sentry's uid with no capability,
while a file a guest of uid 1000 makes belongs to host uid 1000.  The kernel
checks a `connect` (or `sendto`) by path with write permission on the
socket file for the connecting task -- the guest's host process, the
"others" class of a 0600 socket of uid 1000 -- and so refused ssh-agent's,
gpg-agent's or any private daemon's clients of the same user.  Connecting
must stay the guest's own call (the server reads its credentials), so the
host's check must pass for it: such a socket gets a POSIX ACL entry giving
sentry's uid write (whom it grants nothing new: root, or the Sentry itself),
while owner, group and others keep the guest's bits.  An ACL shows its mask
as the group bits of the mode, so the one resolver (vfs/resolve.py) shows
the guest's mode, read back from the ACL's own entries; the Sentry checks
the guest's permission on its emulated ids before (syscalls/socket.py).
"""
import os
import stat
import struct

from sentry.vfs.views import stat_as

ACL = "system.posix_acl_access"
ACL_VERSION = 2
USER_OBJ, USER, GROUP_OBJ, MASK, OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
ACL_W = 2


def acl_for(mode, uid):
    """The ACL of a socket of guest mode `mode` that also lets host uid
    `uid` (sentry's) write to it."""
    entries = [(USER_OBJ, mode >> 6 & 7, 0xFFFFFFFF), (USER, ACL_W, uid),
               (GROUP_OBJ, mode >> 3 & 7, 0xFFFFFFFF), (MASK, (mode >> 3 & 7) | ACL_W, 0xFFFFFFFF),
               (OTHER, mode & 7, 0xFFFFFFFF)]
    return struct.pack("<I", ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)


def grant(path, mode):
    """Give the socket at path (a /proc/self/fd path of it, or its name)
    its guest mode and the entry for sentry's uid.  False where the file
    system keeps no ACL (the connect then stays refused, as before)."""
    try:
        os.setxattr(path, ACL, acl_for(mode & 0o777, os.geteuid()))
        return True
    except OSError:
        return False


def view(fd, st):
    """st of a socket file (fd on it) as the guest sees it: its mode from
    the ACL's owner, group and other entries when it has sentry's entry."""
    if not stat.S_ISSOCK(st.st_mode):
        return st
    try:
        raw = os.getxattr(f"/proc/self/fd/{fd}", ACL)
    except OSError:
        return st
    perms = {}
    granted = False
    for i in range(4, len(raw) - 7, 8):
        tag, perm, uid = struct.unpack_from("<HHI", raw, i)
        perms[tag] = perm
        granted |= tag == USER and uid == os.geteuid()
    if not granted or not {USER_OBJ, GROUP_OBJ, OTHER} <= set(perms):
        return st
    return stat_as(st, (st.st_mode & ~0o777) | perms[USER_OBJ] << 6 | perms[GROUP_OBJ] << 3 | perms[OTHER])
