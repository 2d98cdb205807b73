"""Identity publishing: what the guest is told of itself.  Each task's
virtual ids and emulated credentials are handed to the C fast path
(native/identity.c), which answers getpid and its kin without Python; the
Kernel republishes at every change (fork, exec, set*id, setpgid, reparenting).
"""
import os

from sentry._native import ffi, lib
from sentry.kernel.credentials import CAP_CHOWN


class IdentityPublishing:
    """The Kernel's view of a process as the guest sees it."""

    def publish(self, task):
        """Hand a task's ids to the C fast path (native/identity.c): the
        sandbox namespace's numbers, which name it there; a task of a PID
        namespace below, or whose process makes its children in one, is
        marked, and C leaves its pid calls and its clone3 to Python."""
        if not self.fast_ids or task.process is None or task.creds is None:
            return
        with self.viewed_from(self.pids):
            self._publish(task)

    def _publish(self, task):
        c = task.creds
        row = ffi.new("sn_ident *", {
            "vtid": task.vtid, "vpid": task.process.vpid, "vppid": self.ppid_of(task.process),
            "vpgrp": self.pgid_of(task.process.tgid),
            "ruid": c.ruid, "euid": c.euid, "suid": c.suid,
            "rgid": c.rgid, "egid": c.egid, "sgid": c.sgid, "checks_files": int(c.checks_files),
            "foreign_creator": int(c.creator_host_ids() is not None),
            "chown_any": int(c.capable(CAP_CHOWN)), "dumps_core": int(task.process.dumps_core()),
            # a root or a mount table of its own: its paths are Python's
            "chrooted": int(task.process.root != "/" or self.mounts_of(task.process) is not self.mounts),
            "nested_pidns": int(self.pidns_of(task) is not self.pids
                                or task.process.pidns_children is not task.process.pidns),
            "id_view": int(c.userns is not None),
            # and no slot of a socket call a signal ended is left to give back (syscalls/slots.py)
            "files_alone": int(task.process.alone() and getattr(task, "sock_slot", None) is None)})
        lib.sn_set_ident(task.tid, row)

    @staticmethod
    def signals_to_python(task):
        """Whether C may serve the task's SIGCHLD deliveries (native/identity.c
        sn_ident_sigchld): not while a call the Sentry injected is on its way
        (Kernel.inject_after: the signal is held back) nor while what was held
        back is delivered again with its own siginfo (SignalDelivery.on_signal)."""
        lib.sn_signals_to_python(task.tid, int(task.injecting or bool(task.redelivered)))

    def refused_children_changed(self):
        """A refused child's SIGCHLD is dropped by Python (Kernel.phantoms):
        every SIGCHLD is Python's while there is one."""
        lib.sn_sigchld_to_python(int(bool(self.phantoms)))

    def publish_process(self, proc):
        for tid in proc.threads:
            t = self.tasks.get(tid)
            if t is not None:
                self.publish(t)

    def ppid_of(self, proc):
        """Its parent's pid as the viewer names it: 0 for none, or one
        outside the viewer's namespace (the parent of a namespace's init)."""
        parent = proc.parent
        return self.vpid_of(parent) if parent is not None and parent.tgid in self.processes else 0

    def pgid_of(self, host_pid):
        """Virtual process group of a host pid (0: a group outside the sandbox)."""
        try:
            return self.viewer.virtual(os.getpgid(host_pid))
        except OSError:
            return 0

    def sid_of(self, host_pid):
        try:
            return self.viewer.virtual(os.getsid(host_pid))
        except OSError:
            return 0

    def resident_bytes(self):
        """Memory the sandbox's processes hold resident (for --memory's view)."""
        total = 0
        for tgid in list(self.processes):
            try:
                with open(f"/proc/{tgid}/statm") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
        return total * os.sysconf("SC_PAGE_SIZE")
