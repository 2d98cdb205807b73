"""--audit FILE: an audit trail, one JSON object per line.

The kernel and the handlers call `kernel.audit.event(kind, task, **fields)`
for what a platform team wants on record: every call the policy denies, every
privileged action the Sentry emulates or refuses, and each process's start,
exec and exit.  Without --audit, `kernel.audit` is OFF, whose `event` does
nothing.  Each line is written whole with one write(2) to a file opened
O_APPEND, so lines never interleave and a killed Sentry loses none.

Every line has "time" (UTC, RFC 3339, microseconds), "kind", and for the
task concerned "pid" and "tid" (virtual), "uid" (its effective uid as the
sandbox sees it) and "program" (its process's exe, a sandbox path, once it
has exec'd); then the kind's own fields, among them "syscall" (a name),
"errno" (a symbolic name, "EPERM") and "path" (a sandbox path).  The kinds
and their fields are listed in README.md ("Audit trail").
"""
import errno as _errno
import os
import time

# Denied calls that are refused privileged actions, by kind.
REFUSED = {name: "mount-refused" for name in
           "fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr".split()}
REFUSED["ptrace"] = "ptrace-refused"


def _now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (t % 1 * 1e6)


class Off:
    """No audit trail: every event is dropped at the cost of a call."""

    enabled = False

    def event(self, kind, task, **fields):
        pass

    def denied(self, task, entry, err):
        pass

    def close(self):
        pass


OFF = Off()


class Audit(Off):
    enabled = True

    def __init__(self, path):
        # the Sentry's own file: never inherited by a guest
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # json (and its C part) only with --audit, and now, before the Sentry confines itself
        import json
        self._dumps = json.dumps

    def event(self, kind, task, call=None, **fields):
        """Record one event of task (a kernel Task, or None).  call: the
        trapped call it is about (its name goes in "syscall"); errno: a
        number; status: a wait status (becomes "code" or "signal")."""
        rec = {"time": _now(), "kind": kind}
        if task is not None:
            proc = task.process
            if proc is not None:
                rec["pid"] = proc.vpid
            rec["tid"] = task.vtid
            if task.creds is not None:
                rec["uid"] = task.creds.euid
            if proc is not None and proc.exe:
                rec["program"] = proc.exe
        if call is not None:
            rec["syscall"] = call.kernel.table.entry(call.nr).name
        status = fields.pop("status", None)
        if status is not None:
            if os.WIFSIGNALED(status):
                rec["signal"] = os.WTERMSIG(status)
            else:
                rec["code"] = os.WEXITSTATUS(status)
        err = fields.pop("errno", None)
        for k, v in fields.items():
            if v is not None:
                rec[k] = v
        if err:
            rec["errno"] = _errno.errorcode.get(err, str(err))
        line = self._dumps(rec, separators=(",", ":")) + "\n"
        try:
            os.write(self.fd, line.encode("utf-8", "surrogateescape"))
        except OSError:
            pass                     # a full disk must not stop the sandbox

    def denied(self, task, entry, err):
        """A trapped call answered with err: on record when the policy
        denies it (syscalls/table.py outcome "deny")."""
        if entry.outcome == "deny":
            self.event(REFUSED.get(entry.name, "deny"), task, syscall=entry.name, errno=err)

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
