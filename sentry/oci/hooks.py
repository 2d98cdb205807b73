"""config.json's hooks: programs run at points of the container's life with
its state (the OCI state JSON) on stdin, in the order the runtime spec
lists (runtime.md, "Lifecycle").

Where each kind runs in sentry, and why:

  prestart, createRuntime   `create`, in the container process (the Sentry)
                            once the sandbox is set up and its first process
                            waits: the runtime namespace, as the spec says
  createContainer           right after them, a host program (the spec: its
                            path resolves in the runtime namespace) put in
                            the sandbox's network and IPC namespaces -- the
                            kernel namespaces a sandbox has; its pids, mounts
                            and hostname are the Sentry's emulation, which no
                            host program can enter
  startContainer            `start`, inside the sandbox: a guest process the
                            first process forks after it has loaded its
                            filter and before it execs the entrypoint, so its
                            path resolves in the container and it runs as the
                            container's user, pid, mounts and all
  poststart                 `start`, after the entrypoint's execve, in the
                            runtime namespace
  poststop                  `delete` (and a failed create or start), once the
                            container is gone, in the runtime namespace

A failing prestart, createRuntime, createContainer or startContainer hook
(a non-zero status, a signal, an exec that fails, or its timeout passed:
it is killed) fails the operation: the container is destroyed and the
poststop hooks run.  A failing poststart or poststop hook is a warning.
The error is runc's: "error running createRuntime hook #0: exit status 3,
stdout: ..., stderr: ...".
"""
import errno
import json
import os
import select
import signal
import time

from sentry.oci import log as ocilog

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# the spec keeps each stream whole; a hook that writes megabytes is cut here
OUTPUT_LIMIT = 1 << 20


class HookError(Exception):
    """A hook failed: the one line the operation fails with (runc's words)."""


class Hook:
    def __init__(self, path, args, env, timeout):
        self.path = path
        self.args = args            # argv; the path alone when the spec gives none
        self.env = env              # None: the environment of whoever runs it
        self.timeout = timeout      # seconds, or None

    def to_json(self):
        return {"path": self.path, "args": self.args, "env": self.env, "timeout": self.timeout}

    @classmethod
    def from_json(cls, d):
        return cls(d["path"], d["args"], d["env"], d["timeout"])


def parse(spec):
    """config.json's hooks, checked: {kind: [Hook]}; ValueError says what is
    wrong (create refuses the bundle before anything starts)."""
    hooks = spec.get("hooks")
    if hooks is None:
        return {}
    if not isinstance(hooks, dict):
        raise ValueError("hooks: an object")
    out = {}
    for kind in KINDS:
        items = hooks.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValueError(f"hooks.{kind}: an array")
        parsed = []
        for i, h in enumerate(items):
            where = f"hooks.{kind}[{i}]"
            if not isinstance(h, dict):
                raise ValueError(f"{where}: an object")
            path = h.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"{where}: path must be an absolute path")
            args, env = h.get("args"), h.get("env")
            for name, v in (("args", args), ("env", env)):
                if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                    raise ValueError(f"{where}: {name} must be an array of strings")
            timeout = h.get("timeout")
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
                raise ValueError(f"{where}: timeout must be a number of seconds greater than zero")
            parsed.append(Hook(path, list(args) if args else [path], env, timeout))
        if parsed:
            out[kind] = parsed
    return out


def to_json(hooks):
    """For state.json: the hooks as create read them (config.json may change later)."""
    return {kind: [h.to_json() for h in hs] for kind, hs in hooks.items()}


def from_json(data):
    return {kind: [Hook.from_json(h) for h in hs] for kind, hs in (data or {}).items()}


def run(kind, hooks, state, *, cwd=None, umask=None, default_env=None, prepare=None):
    """Run hooks[kind] one after another; the first to fail raises HookError.
    prepare(): called in each hook's process before its execve."""
    for i, hook in enumerate(hooks.get(kind) or ()):
        problem = _run_one(hook, state, cwd, umask, default_env, prepare)
        if problem is not None:
            raise HookError(f"error running {kind} hook #{i}: {problem}")


def run_warn(kind, hooks, state, **kw):
    """poststart and poststop: a failure is a warning, and the next hook runs."""
    for i, hook in enumerate(hooks.get(kind) or ()):
        try:
            run(kind, {kind: [hook]}, state, **kw)
        except HookError as e:
            ocilog.warning(str(e).replace("hook #0", f"hook #{i}", 1))


def run_in_guest(hooks, state, env):
    """startContainer, from the sandbox's first process after it loaded its
    filter: each hook is a guest process (its execve resolved in the
    sandbox).  Returns the error line, or None."""
    try:
        run("startContainer", hooks, state, default_env=env)
    except HookError as e:
        return str(e)
    return None


def _run_one(hook, state, cwd, umask, default_env, prepare):
    """None, or what went wrong, as runc (Go's exec) words it."""
    env = hook.env if hook.env is not None else default_env
    if env is None:
        env = dict(os.environ)
    elif isinstance(env, list):
        env = dict(kv.partition("=")[::2] for kv in env)
    data = json.dumps(state).encode()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    exc_r, exc_w = os.pipe()        # the child's failed execve: its errno
    old_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)    # a hook that never reads stdin
    try:
        pid = os.fork()
        if pid == 0:
            _child(hook, env, cwd, umask, prepare, in_r, out_w, err_w, exc_w)
        for fd in (in_r, out_w, err_w, exc_w):
            os.close(fd)
        in_r = out_w = err_w = exc_w = None
        stdin, in_w = _Stdin(in_w, data), None
        try:
            return _supervise(pid, hook, stdin, out_r, err_r, exc_r)
        finally:
            stdin.close()
    finally:
        signal.signal(signal.SIGPIPE, old_pipe)
        for fd in (in_r, in_w, out_w, err_w, exc_w, out_r, err_r, exc_r):
            if fd is not None:
                os.close(fd)


class _Stdin:
    """The hook's stdin: the state, written as it reads, then closed."""

    def __init__(self, fd, data):
        self.fd, self.pending = fd, data
        os.set_blocking(fd, False)

    def write(self):
        try:
            self.pending = self.pending[os.write(self.fd, self.pending):]
        except BlockingIOError:
            pass
        except OSError:             # it closed its stdin: the rest is not read
            self.pending = b""
        if not self.pending:
            self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _child(hook, env, cwd, umask, prepare, in_r, out_w, err_w, exc_w):
    """The forked hook process: never returns."""
    try:
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if prepare is not None:
            prepare()
        # nothing of the Sentry's but stdio and the exec report
        os.closerange(3, exc_w)
        os.closerange(exc_w + 1, 1 << 16)
        from sentry import startsignals
        startsignals.restore()
        if cwd is not None:
            os.chdir(cwd)
        if umask is not None:
            os.umask(umask)
        os.execve(hook.path, hook.args, env)
    except OSError as e:
        try:
            os.write(exc_w, str(e.errno or errno.EIO).encode())
        except OSError:
            pass
    except BaseException:
        pass
    os._exit(127)


def _supervise(pid, hook, stdin, out_r, err_r, exc_r):
    deadline = None if hook.timeout is None else time.monotonic() + hook.timeout
    out, err = bytearray(), bytearray()
    streams = {out_r: out, err_r: err}
    status = None
    drain_until = None
    while True:
        if status is None:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                status = st
                drain_until = time.monotonic() + 1.0
        if status is not None and (not streams or time.monotonic() > drain_until):
            break           # its output, unless something it started holds the pipes
        if deadline is not None and status is None and time.monotonic() > deadline:
            _kill(pid)
            return f"hook ran past specified timeout of {hook.timeout:.1f}s"
        wait = 0.05
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        writers = [stdin.fd] if stdin.fd is not None else []
        try:
            readable, writable, _ = select.select(list(streams), writers, [], wait)
        except InterruptedError:
            continue
        if writable:
            stdin.write()
        for fd in readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                del streams[fd]
            elif len(streams[fd]) < OUTPUT_LIMIT:
                streams[fd] += chunk
    exec_errno = os.read(exc_r, 32)
    if exec_errno:
        e = int(exec_errno)
        text = os.strerror(e)
        return f"fork/exec {hook.path}: {text[:1].lower()}{text[1:]}"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    if os.WIFSIGNALED(status):
        name = signal.strsignal(os.WTERMSIG(status)) or f"signal {os.WTERMSIG(status)}"
        how = f"signal: {name[:1].lower()}{name[1:]}"
    else:
        how = f"exit status {os.WEXITSTATUS(status)}"
    return f"{how}, stdout: {out.decode(errors='replace')}, stderr: {err.decode(errors='replace')}"


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return
