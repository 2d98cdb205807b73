"""A task's end and its reaping.  A process that exits stays a zombie, its
pid still naming it, until a wait call reaps it; then its number may be
reused.  Its children go to whomever the host re-parented them to, and when
the sandbox's first process exits, every other task is killed.
"""
import os

from sentry._native import ffi, lib
from sentry.kernel.pids import start_time, stat_field
from sentry.platform import ptrace

RECENTLY_GONE = 256
ZOMBIE_SWEEP = 64
STALE_ROWS = 1024


class Exit:
    """The Kernel's exit events and reaping."""

    def on_gone(self, tid, status):
        task = self.tasks.pop(tid, None)
        if task is not None:
            self.unpin(task)
            task.leave()
            proc = task.process
            if proc is not None and proc.tgid == tid:
                self.audit.event("exit", task, status=status)
                self.processes.pop(tid, None)
                proc.last_creds = task.creds
                self.recently_gone[tid] = proc
                if len(self.recently_gone) > RECENTLY_GONE:
                    del self.recently_gone[next(iter(self.recently_gone))]
                # until its parent reaps it, the pid still names it (kill(2)
                # of a zombie succeeds); its start time tells it from a reuse
                start = start_time(tid)
                if start is not None:
                    self.zombies[tid] = (start, proc)   # its row stays: wait4 names it
                else:
                    self.reaped(tid)
                self._reparent_children_of(proc)
            else:
                self.pids.forget(tid)
                self._forget_nested(tid)
                lib.sn_set_ident(tid, ffi.NULL)
        else:
            lib.sn_set_ident(tid, ffi.NULL)
        if len(self.zombies) > self.sweep_at:
            # reaps the Sentry did not see (wait4 in C, auto-reaping parents)
            for pid in list(self.zombies):
                self.in_sandbox_host(pid)
            self.sweep_at = max(ZOMBIE_SWEEP, 2 * len(self.zombies))
        if self.init is not None and tid == self.init.tgid and self.init_status is None:
            self.init_status = status
            self.kill_all()
        elif task is not None and task.process is not None and task.process.pidns.init == tid \
                and task.process.pidns is not self.pids:
            self._end_namespace(task.process.pidns)

    def show_core_dump(self, task, child, status_addr):
        """The wait status wait4 wrote at `status_addr` for host pid `child`
        gets WCOREDUMP where Linux would set it (Process.dumps_core): the same
        step as the C fast path's wait4 (native/identity.c)."""
        proc = self.known_process(child)
        if proc is not None and proc.dumps_core():
            lib.sn_mark_core_dump(task.tid, status_addr)

    def reaped(self, host):
        """A wait call reaped `host`: its pid may be reused from now on."""
        self.zombies.pop(host, None)
        if host in self.tasks:              # the number is already someone else's
            return
        self.pids.retire(host, self._groups_in_use)
        self._forget_nested(host, retire=True)
        # Its row in C stays a while: a wait4 that reaped it may not have
        # reached its syscall-exit stop (where the row names it) yet.
        self.stale_rows.append(host)
        if len(self.stale_rows) > STALE_ROWS:
            old = self.stale_rows.popleft()
            if old not in self.tasks:
                lib.sn_set_ident(old, ffi.NULL)

    def _groups_in_use(self):
        ids = set()
        for tgid in list(self.processes):
            try:
                ids.update((os.getpgid(tgid), os.getsid(tgid)))
            except OSError:
                pass
        return ids

    def _reparent_children_of(self, dead):
        """The host re-parented dead's children (to init, the sandbox's
        subreaper, or one the guest set): ask it whom to."""
        if dead.parent is not None:
            dead.parent.children.discard(dead)
        for proc in list(dead.children):
            proc.parent = self.processes.get(stat_field(proc.tgid, 1))
            if proc.parent is not None:
                proc.parent.children.add(proc)
            self.publish_process(proc)
        dead.children.clear()

    def _forget_nested(self, host, retire=False):
        """A task of a PID namespace below the sandbox's is gone (a thread)
        or reaped (retire: its numbers are kept aside as the sandbox's are,
        for a wait call's answer on its way and the groups named after it)."""
        ns = self.nested_pidns.pop(host, None)
        for n in ns.chain() if ns is not None else ():
            if n is not self.pids:
                n.retire(host, self._groups_in_use) if retire else n.forget(host)

    def _end_namespace(self, ns):
        """A PID namespace's init exited: every other task in it, or in one
        below it, is killed, and no new one may join (zap_pid_ns_processes)."""
        ns.dead = True
        for tid, t in list(self.tasks.items()):
            if self.pidns_of(t).below(ns):
                ptrace.kill_task(tid)

    def kill_all(self):
        """When the sandbox's first process exits, the rest of the sandbox dies."""
        for tid in list(self.tasks):
            ptrace.kill_task(tid)
        if self.spawner is not None:      # no process joins any more
            ptrace.kill_task(self.spawner)
