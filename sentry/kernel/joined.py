"""Processes that join the running sandbox (`sentry exec`): the spawner
(sandbox/spawner.py) is traced but is no guest -- no virtual pid, no task
-- and each process it forks is adopted here, at the fork event, as a new
process of the sandbox: a virtual pid of its own, no parent inside the
namespace (as a process that entered it with setns), the sandbox's root
credentials until it takes its user by the emulated set*id calls, and the
spawner's fd handover listener (it inherits the spawner's filter)."""
import logging

from sentry._native import lib
from sentry.kernel.credentials import Credentials
from sentry.kernel.task import Process
from sentry.platform import ptrace
from sentry.platform.staging import Slots

log = logging.getLogger("sentry")


class JoinedProcesses:
    """The Kernel's share of `exec`."""

    spawner = None              # host pid of the spawner, while it lives
    spawner_listener = None     # the handover listener of the processes it forks

    def adopt_spawner(self, pid, listener):
        self.spawner = pid
        self.spawner_listener = listener

    def on_spawner_event(self, ev):
        kind, tid = ev.kind, ev.tid
        if kind in (ptrace.FORK, ptrace.VFORK, ptrace.CLONE):
            self._adopt_joined(ev.msg)
            ptrace.resume(tid)
        elif kind == ptrace.SIGNAL:
            ptrace.resume(tid, ev.sig)          # its own SIGCHLD, as sent
        elif kind in (ptrace.EXITED, ptrace.SIGNALED):
            self.spawner = None
        elif kind != ptrace.GONE:
            ptrace.resume(tid)

    def _adopt_joined(self, pid):
        task = self.task(pid)       # its first stop may have come first
        if lib.sn_unpark(pid):
            task.started = True     # and been held in C (native/identity.c)
        proc = Process(pid, self.pids.add(pid), Slots(), pidns=self.pids)
        task.vtid = proc.vpid
        log.debug("task %d is host %d (exec)", proc.vpid, pid)
        task.creds = Credentials()
        proc.core_limit = self.first_core_limit
        proc.nproc_limit = self.first_nproc_limit
        proc.uts = self.uts
        proc.handover = self.spawner_listener
        self.processes[pid] = proc
        task.attach(proc)
        self.publish(task)
        self.audit.event("start", task, ppid=0)
        limit = self.pids_max.current()
        if limit and len(self.tasks) > limit:
            log.warning("exec: over the pids limit (%d): the new process is killed", limit)
            ptrace.kill_task(pid)
        if task.started:
            ptrace.resume(pid)

    def handover_of(self, task):
        """The listener that answers task's fd handovers: its filter's."""
        h = task.process.handover if task.process is not None else None
        return h if h is not None else self.handover_listener
