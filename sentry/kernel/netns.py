"""Network namespaces: the sandbox's own, and those its guests make.

Each is a kernel network namespace the namespace helper holds
(vfs/mountns.py): the sandbox's, made at set-up, which the guest's first
process enters; and one per guest unshare(CLONE_NEWNET) or clone with it,
which the helper makes empty (lo down, no route), as Linux makes it.  A
process points at one (Process.netns; fork inherits it).  The guest cannot
enter a namespace of its own making -- it holds no capability, by design
-- so a process whose namespace is a guest-made one has its socket(2)
trapped (a filter of its own, loaded before it leaves the sandbox's
namespace) and the helper makes the socket there (syscalls/socket.py).
What the kernel then does on that socket is that namespace's: its loopback,
its abstract names, its routes (none: the outside is ENETUNREACH), its
rtnetlink and interface ioctls.  A socket tells its namespace by its
SO_NETNS_COOKIE, which the Sentry reads on its own copy
(net/hostsock.py namespace_of).
"""
import itertools
import os
import weakref

_idents = itertools.count(0xEFFFF000)     # /proc/<pid>/ns/net numbers, as inode numbers look


class NetNamespace:
    """One network namespace of the sandbox.  fd: the Sentry's hold on a
    guest-made one (None: the sandbox's own, which the helper is in);
    cookie: its SO_NETNS_COOKIE (8 bytes); owner: the user namespace it
    belongs to (None: the sandbox's), whose CAP_NET_ADMIN changes its links;
    interfaces: name -> index, what a guest root may bring up or down;
    port_start: the ports below it need CAP_NET_BIND_SERVICE over it, which
    the Sentry checks (syscalls/socket.py; None: the kernel does)."""

    def __init__(self, fd, cookie, owner, interfaces, port_start=None):
        self.fd, self.cookie, self.owner, self.interfaces = fd, cookie, owner, interfaces
        self.port_start = port_start
        self.ident = next(_idents) if fd is not None else None

    def capable(self, creds, cap):
        """Whether a task of `creds` holds capability `cap` over this
        namespace: over the sandbox's objects for its own, else in the user
        namespace that owns it (as Linux's ns_capable(net->user_ns, cap))."""
        return creds.capable(cap) if self.fd is None else creds.ns_capable(self.owner, cap)

    def __del__(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass


class Namespaces:
    """The Kernel's network namespaces, by cookie.  The cookies of those gone
    are remembered (a socket outlives its namespace's processes, and must
    still be told from a host socket); the namespaces themselves are held
    by the processes in them only."""

    def __init__(self, own):
        self.own = own
        self.cookies = {own.cookie}
        self.made = weakref.WeakValueDictionary()

    def new(self, mountns, owner):
        """A new, empty namespace (lo down), owned by user namespace `owner`."""
        fd, cookie, port_start = mountns.new_netns()
        ns = NetNamespace(fd, cookie, owner, {"lo": 1}, port_start)
        self.cookies.add(cookie)
        self.made[cookie] = ns
        return ns

    def guest_made(self):
        """Whether a guest ever made one (else every socket of the sandbox is
        of its own: nothing to ask)."""
        return len(self.cookies) > 1

    def by_cookie(self, cookie):
        """The namespace of that cookie, if it is the sandbox's or one still
        in use; None otherwise."""
        return self.own if cookie == self.own.cookie else self.made.get(cookie)
