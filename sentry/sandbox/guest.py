"""The sandbox's processes from fork to their first execve -- the first one,
and each one `exec` adds (exec_process): it joins the
sandbox's namespaces, takes the reserved fds, drops every capability, sends
the Sentry what only it can make, and loads the guest's filters."""
import errno
import fcntl
import os
import resource
import signal
import socket

from sentry.platform import handover, privileges
from sentry.vfs import mountns as _mountns
from sentry import startsignals
from sentry.vfs.mount import HIDDEN_FD_BASE, MAX_MOUNTS, O_PATH


def send_to_sentry(sock, userns):
    """In the guest's first process (or the exec spawner), its last step
    before the main filter: what only it can make goes to the Sentry, and it
    keeps no copy -- the listener of the fd handover filter
    (platform/handover.py), and, when it has one, its user namespace (for
    the fd holder, platform/fdholder.py, and the processes `exec` adds).
    The socket stays open: the caller closes it."""
    try:
        fds = [handover.install_filter()]
        if userns:
            fds.append(os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC))
        socket.send_fds(sock, [b"s"], fds)
    except OSError as e:
        os.write(2, f"sentry: cannot set up the fd handover: {e.strerror}\n".encode())
        os._exit(125)
    for fd in fds:
        os.close(fd)


def receive_from_guest(sock, most):
    """The Sentry's side of send_to_sentry: the fds sent, [] if the process
    gave up first.  The socket stays open: the caller closes it."""
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, most)
    except OSError:
        return []
    return fds


def first_process(cfg, mounts, filt, ready_r, setup_w, host_cwd, userns, helper):
    """Runs in the forked child: becomes the sandbox's first process."""
    try:
        if os.read(ready_r, 1) != b"x":         # the Sentry could not trace us
            os._exit(125)
        _join_namespaces(helper)
        if userns:
            try:
                privileges.enter_user_namespace(cfg.uid, cfg.gid)
            except OSError as e:
                os.write(2, f"sentry: cannot enter a user namespace: {e.strerror}\n".encode())
                os._exit(125)
        _take_reserved_fds(mounts, keep=(setup_w.fileno(), *cfg.pass_fds))
        # As the init of a PID namespace, it inherits the sandbox's orphans.
        privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
        _take_limits(cfg)
        # The guest's cwd is a real one, kept by the kernel (chdir is
        # rewritten, never emulated), read back through /proc/<tid>/cwd.
        os.chdir(host_cwd)
        # The dispositions and mask sentry itself was started with, not the
        # interpreter's or the Sentry's (sentry/startsignals.py).
        startsignals.restore()
        privileges.drop_all()
        send_to_sentry(setup_w, userns)
        setup_w.close()
        # Set up all but the filter before the gate, so that the Sentry
        # receives our fds and confines itself while `create` returns, and
        # `start` waits for no more than the filter and the execve.  The
        # gate is opened before the filter (which would trap the open).
        gate = _wait_at_gate(cfg.start_gate)
        filt.load()
        # From here every call is trapped: PATH is searched inside the sandbox.
        if cfg.before_exec is not None:
            problem = cfg.before_exec()
            if problem:
                _stopped_at_gate(gate, problem)
        problem = _load_guest_seccomp(cfg)
        if problem:
            _stopped_at_gate(gate, problem)
        os.execvpe(cfg.argv[0], cfg.argv, cfg.env)
    except OSError as e:
        _exec_failed(cfg.argv[0], e)
    except BaseException:
        os._exit(125)


def _wait_at_gate(path):
    """Block until the runtime's `start` opens the gate (a fifo) to read,
    then say so ("0"); the fd stays open, close-on-exec, so `start` sees
    its end at the entrypoint's execve -- or reads what stopped it first.
    None without a gate."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
    except OSError as e:
        os.write(2, f"sentry: {path}: {e.strerror}\n".encode())
        os._exit(125)
    return fd


def _load_guest_seccomp(cfg):
    """The guest's own filter, last thing before its execve (as runc loads
    a profile with noNewPrivileges): what the Sentry's handlers did for
    this process until now ran without it.  An error line, or None."""
    if cfg.guest_seccomp is None:
        return None
    try:
        cfg.guest_seccomp.load()
    except OSError as e:
        return f"cannot load the seccomp profile: {e.strerror}"
    return None


def _stopped_at_gate(gate, problem):
    """What stopped the process before its execve goes to `start` (or to
    stderr without a gate); the process ends there."""
    line = (problem.replace("\n", " ") + "\n").encode()
    try:
        os.write(gate if gate is not None else 2, line)
    except OSError:
        pass
    os._exit(1)


def exec_process(cfg, mounts, filt, helper, root_cwd, request, fds, userns):
    """Runs in a child the spawner forked (sandbox/spawner.py), already
    traced by the Sentry: becomes a new process of the running sandbox, set
    up as the first one was (its network, the reserved fds, the limits, no
    capabilities, the guest's filter) -- the fd handover filter it inherits
    from the spawner.  Its identity and cwd are taken after the filter, by
    calls the Sentry emulates and resolves in the sandbox as any guest's.
    userns: an unprivileged sentry's guest user namespace, the one the first
    process made (a child of the helper's): joined too, so that its ids and
    its reach (the fd holder's fds) are the first process's."""
    args = request["args"]
    try:
        _join_namespaces(helper, userns)
        # a session of its own: no pgid or sid of a host process to translate
        if request.get("terminal"):
            from sentry.oci import console
            console.become_terminal_session(fds[0])
        else:
            os.setsid()
            for i, fd in enumerate(fds[:3]):
                os.dup2(fd, i)
        # exec --preserve-fds: the rest go to 3, 4, ... (first out of the way
        # of those numbers, which the received ones may hold)
        extra = fds[1 if request.get("terminal") else 3:]
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + len(extra)) for fd in extra]
        for i, fd in enumerate(moved):
            os.dup2(fd, 3 + i)
        _take_reserved_fds(mounts, keep=range(3, 3 + len(extra)))
        _take_limits(cfg)
        os.chdir(root_cwd)
        startsignals.restore()
        privileges.drop_all()
        filt.load()
        # Trapped from here: emulated on the task's credentials (it starts
        # as the sandbox's root, as runc's exec does before taking the user)
        os.setgroups(request.get("groups") or [])
        os.setgid(request.get("gid", 0))
        os.setuid(request.get("uid", 0))
        if request.get("umask") is not None:
            os.umask(request["umask"])
        cwd = request.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as e:
            # runc's words and, through podman's reading of them, its code
            code = 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
            os.write(2, f"sentry: chdir to cwd ({cwd!r}) failed: {e.strerror}\n".encode())
            os._exit(code)
        problem = _load_guest_seccomp(cfg)
        if problem:
            os.write(2, f"sentry: {problem}\n".encode())
            os._exit(126)
        os.execvpe(args[0], args, _env_dict(request.get("env") or []))
    except OSError as e:
        _exec_failed(args[0], e)
    except BaseException:
        os._exit(125)


def _env_dict(env):
    d = {}
    for kv in env:
        k, sep, v = kv.partition("=")
        if sep:
            d[k] = v
    return d


def _exec_failed(arg0, e):
    code = 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
    msg = f"sentry: {arg0}: {'command not found' if code == 127 else e.strerror}\n"
    os.write(2, msg.encode())
    os._exit(code)


def _join_namespaces(helper, guest_userns=None):
    """The namespace helper's IPC namespace, and its network namespace
    unless --network=host (then helper.netns_fd is None); then the guest's
    user namespace, when it exists already (exec_process)."""
    if helper is not None:
        try:
            _mountns.join_namespaces(helper.userns_fd, helper.ipcns_fd, helper.netns_fd)
            if guest_userns is not None:
                # entered last: from the helper's, whose capabilities it
                # leaves behind (those over the sandbox's network and IPC)
                _mountns.join_namespaces(userns_fd=guest_userns)
                os.close(guest_userns)
        except OSError as e:
            # never the host's network or IPC objects instead
            os.write(2, f"sentry: cannot enter the sandbox's namespaces: {e.strerror}\n".encode())
            os._exit(125)


def _take_reserved_fds(mounts, keep=()):
    """The whole reserved range is taken: a slot no mount uses would
    otherwise be the kernel's to hand out, as an fd every call on which the
    Sentry answers EBADF (a guest opening 1000 files could not close them).
    The filler is inert: an O_PATH fd on /dev/null.  Every other fd above
    stderr but those in `keep` (below the range) is closed."""
    filler = os.open(os.devnull, O_PATH | os.O_CLOEXEC)
    hidden = {gfd: sfd for sfd, gfd in mounts.hidden_fds()}
    for gfd in range(HIDDEN_FD_BASE, HIDDEN_FD_BASE + MAX_MOUNTS):
        os.dup2(hidden.get(gfd, filler), gfd, inheritable=True)
    low = 3
    for fd in sorted(k for k in keep if k is not None):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, HIDDEN_FD_BASE)
    os.closerange(HIDDEN_FD_BASE + MAX_MOUNTS, 1 << 20)


def _take_limits(cfg):
    privileges.prctl(privileges.PR_SET_PDEATHSIG, signal.SIGKILL)
    cfg.limits.bind()
    # The kernel writes core files itself, in the process's cwd and not
    # through any syscall the Sentry sees: no core files.  1, not 0: a
    # core_pattern that pipes to a handler (systemd-coredump, apport)
    # ignores 0 and would hand the guest's memory to the host; the kernel
    # skips both kinds of dump for 1 (fs/coredump.c).
    resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
    for res, soft, hard in cfg.rlimits:
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            os.write(2, f"sentry: setrlimit {res} {soft}:{hard}: {getattr(e, 'strerror', None) or e}\n".encode())
            os._exit(125)
