"""Pid translation: the guest names sandbox processes by virtual pid, the
host by its own; the Kernel's questions in both directions.  The numbering
itself is the PID namespaces' (pidns.py).  Each question is answered in the
namespace the Kernel views from (`viewer`): the sandbox's, but while a
task's call, exit stop or signal is handled, that task's own, as Linux
answers in the caller's active namespace.  /proc is always the sandbox's
(its mount's namespace), and so are the numbers the Kernel keeps on its
tasks and processes (Task.vtid, Process.vpid).  A zombie's pid still names it
until it is reaped; its start time tells it from a process that reused it.
"""
import contextlib
import errno
import os

from sentry.errors import SyscallError


class PidTranslation:
    """The Kernel's pid questions."""

    def visible_pids(self):
        """The sandbox's processes as /proc lists them: zombies too, until
        they are reaped (ps shows them <defunct>)."""
        if self.viewer is not self.pids:        # a PID namespace below (fsimpl/proc.py ProcView)
            hosts = list(self.processes) + [h for h in list(self.zombies) if self.in_sandbox_host(h)]
            return [v for v in map(self.viewer.virtual, hosts) if v]
        zombies = [z[1].vpid for host, z in list(self.zombies.items()) if self.in_sandbox_host(host)]
        return [p.vpid for p in self.processes.values()] + zombies

    @contextlib.contextmanager
    def viewed_from(self, ns):
        """Answer pid questions in PID namespace ns meanwhile."""
        saved, self.viewer = self.viewer, ns
        try:
            yield
        finally:
            self.viewer = saved

    def pidns_of(self, task):
        """The namespace a task sees pids in: its process's."""
        proc = task.process
        return proc.pidns if proc is not None and proc.pidns is not None else self.pids

    def vpid_of(self, proc):
        """A process's pid as the viewer names it (0: outside its namespace)."""
        return proc.vpid if self.viewer is self.pids else self.viewer.virtual(proc.tgid)

    def vtid_of(self, task):
        return task.vtid if self.viewer is self.pids else self.viewer.virtual(task.tid)

    def host_pid(self, vpid):
        return self.viewer.host(vpid)

    def process_of(self, vpid):
        return self.processes.get(self.viewer.host(vpid))

    def zombie_of(self, vpid):
        """The exited, unreaped process a pid names, or None."""
        host = self.viewer.host(vpid)
        z = self.zombies.get(host) if host is not None else None
        return z[1] if z is not None and self.in_sandbox_host(host) else None

    def task_of(self, vtid):
        return self.tasks.get(self.viewer.host(vtid))

    def vpid(self, host):
        return self.viewer.virtual(host)

    def host_id(self, vid, group=False, task=False):
        """The host id for a guest's pid (with task: any tid; with group: a
        process group with a sandbox process in it).  ESRCH for anything
        else, as for a pid that does not exist."""
        host = self.viewer.host(vid) if vid > 0 else None
        if host is None:
            raise SyscallError(errno.ESRCH)
        if group:
            for tgid in self.processes:
                try:
                    if os.getpgid(tgid) == host:
                        return host
                except ProcessLookupError:
                    pass
            raise SyscallError(errno.ESRCH)
        if task and host in self.tasks:
            return host
        if not self.in_sandbox_host(host):
            raise SyscallError(errno.ESRCH)
        return host

    def in_sandbox_host(self, host):
        """Whether a host pid is a sandbox process, live or zombie."""
        if host in self.processes:
            return True
        z = self.zombies.get(host)
        if z is not None:
            if start_time(host) == z[0]:
                return True
            self.reaped(host)            # reaped: the pid is free or reused
        return False

    def is_sandbox_task(self, vtid):
        return self.task_of(vtid) is not None


def stat_field(pid, i):
    """Field i+3 of /proc/<pid>/stat (i=1: ppid, 19: start time); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(b")", 1)[1].split()[i])


def start_time(pid):
    """With the pid, the start time names one process."""
    return stat_field(pid, 19)
