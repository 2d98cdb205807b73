"""How host user and group ids look from inside the sandbox.

Run as root, sentry leaves the guest on host ids: it sees them as they are.
Run unprivileged, the guest's first process enters a user namespace of its
own that maps the guest's uid and gid (0 unless --uid/--gid) to the Sentry's,
as `unshare -r` does, one id each, which is all an unprivileged process may
map (sentry/platform/privileges.py).  The kernel itself then shows the
guest's files as its own in every stat, fstat included, at no cost; any
other host id shows as the overflow id, as in any user namespace.  The
Sentry's own checks (file permissions, chown) see host ids through the same
map: `current`, set once at start.
"""
import errno

from sentry.errors import SyscallError

OVERFLOW_ID = 65534
UNCHANGED = 0xFFFFFFFF        # (uid_t)-1: chown's "keep"


class IdMap:
    def __init__(self, uid=None, gid=None):
        """uid, gid: (guest id, host id) of a one-id user namespace; None
        where the guest sees host ids as they are."""
        self.uid, self.gid = uid, gid

    @staticmethod
    def _view(pair, host):
        if pair is None:
            return host
        return pair[0] if host == pair[1] else OVERFLOW_ID

    @staticmethod
    def _host(pair, guest):
        if guest == UNCHANGED:
            return -1
        if pair is None:
            return guest
        if guest != pair[0]:
            raise SyscallError(errno.EINVAL)       # an id the namespace does not map
        return pair[1]

    def uid_view(self, host):
        return self._view(self.uid, host)

    def gid_view(self, host):
        return self._view(self.gid, host)

    def maps(self, host_uid, host_gid):
        """Whether both host ids have a guest id (else they show as the
        overflow id, and a set-id program's bits count for nothing)."""
        return all(pair is None or host == pair[1] for pair, host in ((self.uid, host_uid), (self.gid, host_gid)))

    def host_ids(self, uid, gid):
        """(uid, gid) for os.chown of a guest's chown arguments (-1: keep)."""
        return self._host(self.uid, uid), self._host(self.gid, gid)


current = IdMap()


def set_current(ids):
    """At start, before the first guest: the Sentry's checks and the native
    fast path's stat answers (native/fastpath.c) use `ids` from then on."""
    global current
    current = ids
    if ids.uid is not None:
        from sentry._native import lib
        lib.sn_set_idmap(ids.uid[0], ids.uid[1], ids.gid[0], ids.gid[1])
