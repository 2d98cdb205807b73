"""The sandbox's PID namespaces: virtual pids for host tids, both ways.

The first task is 1 and every new task (process or thread) takes the next
free number, as in a fresh Linux PID namespace.  A guest may make PID
namespaces of its own below the sandbox's (unshare, clone with
CLONE_NEWPID): a task has a number in its own namespace and in each one
above it, and is seen by the number of the namespace it is looked at from.  A host pid the sandbox does
not own translates to 0, which is what Linux shows for a process outside the
caller's namespace (a signal from the host, the Sentry as a socket peer).

A number stays mapped while the host kernel may still hand it to the guest:
while the task runs, while it is a zombie, and while a process group or
session is named after it.  `retire` keeps the mapping of a reaped pid aside
until the host reuses the number (it cannot while a group still bears it).
"""

PID_MAX = 4194304        # /proc/sys/kernel/pid_max's ceiling: where numbers wrap
RETIRED_MAX = 4096       # reaped numbers kept for their groups, at most
LEVELS_MAX = 32          # the kernel's MAX_PID_NS_LEVEL: nesting deeper is ENOSPC


class PidNamespace:
    made = 0

    def __init__(self, parent=None):
        self.parent = parent
        self.level = parent.level + 1 if parent is not None else 0
        PidNamespace.made += 1
        self.serial = PidNamespace.made     # tells namespaces apart (/proc/<pid>/ns/pid)
        self.init = None                    # host pid of its first process, its init
        self.dead = False                   # its init exited: no process joins any more
        self.init_subreaper = False         # what its init's PR_GET_CHILD_SUBREAPER says
        self._next = 1
        self._to_host = {}      # virtual -> host
        self._to_virtual = {}   # host -> virtual
        self._retired = {}      # host -> virtual: reaped, perhaps still a group's name

    def add(self, host):
        """A new task: its virtual id (the host reused `host`: the old one is gone)."""
        old = self._to_virtual.pop(host, None) or self._retired.pop(host, None)
        if old is not None:
            self._to_host.pop(old, None)
        v = self._allocate()
        self._to_host[v] = host
        self._to_virtual[host] = v
        return v

    def last(self):
        """The last pid given out (/proc/sys/kernel/ns_last_pid)."""
        return self._next - 1 if self._next > 2 else PID_MAX - 1

    def _allocate(self):
        while True:
            v = self._next
            self._next = v + 1 if v + 1 < PID_MAX else 2    # 1 is init's for ever
            if v not in self._to_host:
                return v

    def virtual(self, host):
        """The guest's name for a host pid, pgid or sid; 0 if it has none."""
        v = self._to_virtual.get(host)
        if v is None:
            v = self._retired.get(host, 0)
        return v

    def host(self, virtual):
        """The host pid a guest's pid names, or None."""
        return self._to_host.get(virtual)

    def retire(self, host, groups_in_use):
        """`host` was reaped; its number may still name a group.
        groups_in_use() gives the pgids and sids live processes bear."""
        v = self._to_virtual.pop(host, None)
        if v is None:
            return
        self._retired[host] = v
        if len(self._retired) > RETIRED_MAX:
            in_use = groups_in_use()
            for h in list(self._retired):
                if h not in in_use:
                    self._to_host.pop(self._retired.pop(h), None)

    def forget(self, host):
        """A thread is gone: no group bears a thread's id."""
        v = self._to_virtual.pop(host, None)
        if v is not None:
            self._to_host.pop(v, None)

    def chain(self):
        """This namespace and each one above it, up to the sandbox's."""
        ns = self
        while ns is not None:
            yield ns
            ns = ns.parent

    def below(self, other):
        """Whether this namespace is `other` or one made inside it."""
        return any(ns is other for ns in self.chain())
