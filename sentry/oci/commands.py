"""The OCI runtime's commands, as runc names them.  Each takes the global
context (--root, sentry's own options) and its own argv, and returns the
exit status; a failure raises OciError (one line, status 1)."""
import functools
import json
import os
import pwd
import select
import signal
import sys
import time

from sentry import __version__
from sentry.oci import OCI_VERSION, cgroup as ocicgroup, freezer, hooks as ocihooks, log as ocilog, resources as ocires
from sentry.oci.args import INT, LIST, VALUE, Option, UsageError, parse
from sentry.oci.state import Container, StateError, all_ids, now_rfc3339, process_start_time

# What only create, exec, spec and features use (the config.json reader, the
# console, libseccomp, the sandbox, the logging module) is imported there:
# start, state, kill and delete, which an engine runs for every container,
# start in less time (each is a new interpreter).


class OciError(Exception):
    """A command's failure: its message is the one line the engine reads."""


class Context:
    def __init__(self, root, sentry_flags=None, debug=False):
        self.root = root
        self.sentry_flags = sentry_flags or {}
        self.debug = debug


def _parse(name, argv, options=(), **kw):
    return parse(f"sentry {name}", argv, options, **kw)


# -- create / start / run -----------------------------------------------------

_CREATE = (Option("--bundle|-b", VALUE), Option("--pid-file", VALUE), Option("--console-socket", VALUE),
           Option("--no-pivot"), Option("--no-new-keyring"), Option("--preserve-fds", INT, 0))
_RUN = _CREATE + (Option("--detach|-d"), Option("--keep"), Option("--no-subreaper"))


# compiled seccomp profiles, in the state root (no container id starts with a dot)
SECCOMP_CACHE = ".seccomp"


def cmd_create(ctx, argv):
    args = _parse("create", argv, _CREATE)
    _create(ctx, args)
    return 0


def _create(ctx, args, foreground=False):
    """Set the sandbox up in a new container process (the Sentry) that waits
    on exec.fifo for `start`; returns that process's pid once it is ready."""
    bundle = os.path.abspath(args.bundle or os.getcwd())
    # create itself joins the container's cgroup while it imports (the
    # container process inherits it); a foreground run stays outside, as
    # runc's does, and the container process joins then
    early = None if foreground else ocicgroup.EarlyJoin(ocicgroup.path_for(_cgroups_path(bundle), args.id))
    try:
        return _create_in(ctx, args, bundle, foreground, early)
    except BaseException:
        if early is not None:
            early.leave()
        raise


def _cgroups_path(bundle):
    """linux.cgroupsPath of the bundle's config.json, read before anything
    else (None where it has none, or the file does not parse: create
    reports that once it reads the spec)."""
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            path = (json.load(f).get("linux") or {}).get("cgroupsPath")
        return path if isinstance(path, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def _create_in(ctx, args, bundle, foreground, early):
    from sentry.oci import console, inherited, spec as ocispec, standin
    from sentry.vfs.mount import HIDDEN_FD_BASE
    from sentry.sandbox import Config, ConfigError, check_config
    c = Container(ctx.root, args.id)
    try:
        spec = ocispec.load(bundle)
        kwargs = ocispec.config_kwargs(spec, bundle, ctx.sentry_flags, cache=os.path.join(ctx.root, SECCOMP_CACHE))
        rlimits = ocispec.rlimits_of(spec["process"])
        attrs = inherited.check(spec)
        kwargs["rlimits"] = [r[:3] for r in rlimits]
        hooks = ocispec.hooks_of(spec)
        limits = ocires.limits_of(spec)
    except (ocispec.SpecError, ocires.ResourceError, inherited.InheritedError) as e:
        raise OciError(str(e))
    process = spec["process"]
    listen = _listen_fds()
    kwargs["pass_fds"] = _preserved_fds(listen + args.preserve_fds, HIDDEN_FD_BASE - 3)
    if listen:
        # socket activation, as runc passes it on: the first fds are the
        # listeners, and the container's pid 1 is the one they are for
        kwargs["env"] = dict(kwargs["env"], LISTEN_FDS=str(listen), LISTEN_PID="1")
    terminal = bool(process.get("terminal"))
    if terminal and not args.console_socket and not foreground:
        raise OciError("cannot allocate tty if sentry will detach without setting console socket")
    if args.console_socket and not terminal:
        raise OciError("cannot use console socket if sentry will not detach or allocate tty")
    owner = ""
    try:
        owner = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        pass
    record = {"id": c.id, "bundle": bundle, "rootfs": kwargs["rootfs"], "created": now_rfc3339(),
              "annotations": spec.get("annotations") or {}, "owner": owner,
              "hooks": ocihooks.to_json(hooks), "resources": limits}
    before_exec = None
    if hooks.get("startContainer"):
        # in the container: pid 1 is its process, as the container sees it
        inside = dict(c.oci_state(record, "created"), pid=1)
        before_exec = functools.partial(ocihooks.run_in_guest, hooks, inside, kwargs["env"])
    if terminal and args.console_socket:
        kwargs["console"] = functools.partial(console.hand_over, args.console_socket, process.get("consoleSize"))
    try:
        cfg = Config(list(process["args"]), start_gate=c.fifo, before_exec=before_exec,
                     pids_limit_file=c.pids_file, **kwargs)
        check_config(cfg)
    except ConfigError as e:
        raise OciError(str(e))
    try:
        # before the container exists, in runc's words (podman: 127 or 126)
        ocispec.check_entrypoint(spec, kwargs["rootfs"])
    except ocispec.SpecError as e:
        raise OciError(f"sentry create failed: unable to start container process: {e}")
    ocispec.make_mount_points(kwargs["rootfs"], kwargs["mounts"])

    c.make()
    _write_pids_limit(c, cfg.pids_limit, create=True)
    pid = None
    cgroup = ocicgroup.path_for((spec.get("linux") or {}).get("cgroupsPath"), c.id)
    try:
        os.mkfifo(c.fifo, 0o600)
        report_r, report_w = os.pipe()
        if early is not None:
            early.wait()
            _apply_limits(cgroup, limits)
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            # the pid file's process is the Sentry's stand-in (standin.py)
            standin.become(lambda: _container_process(cfg, c, report_w, process, rlimits, attrs,
                                                      None if early is not None else cgroup, record),
                           netns=cfg.netns, view=_container_view(cfg))
        os.close(report_w)
        reply = _read_report(report_r)
        os.close(report_r)
        if not reply.startswith("ok "):
            os.waitpid(pid, 0)
            raise OciError(reply or "the container process exited during create")
        st = process_start_time(pid)
        with c.locked():
            c.save(dict(record, pid=pid, pid_start=st[0] if st else None,
                        init_pid=int(reply.split()[1]), spawner_pid=int(reply.split()[2]),
                        sentry_pid=int(reply.split()[3]),
                        cgroup=cgroup, paused=False))
        if args.pid_file:
            _write_pid_file(args.pid_file, pid)
        return pid
    except BaseException:
        c.remove()
        if pid is not None:
            # the container existed: destroyed now (with the cgroup its
            # process made), the poststop hooks follow
            _end_child(pid)
            if early is not None:
                early.leave()           # create is in the cgroup too: out first
            ocicgroup.remove(cgroup)
            _poststop(hooks, c.oci_state(record, "stopped"), bundle)
        raise


def _container_view(cfg):
    """The container's files as the stand-in's mount namespace shows them
    (standin.become): the rootfs, its binds, and its tmpfs places."""
    binds = [(m["src"], m["dst"], bool(m.get("ro"))) for m in cfg.mounts if m["type"] == "bind"]
    tmpfs = [m["dst"] for m in cfg.mounts if m["type"] == "tmpfs"]
    return cfg.rootfs, bool(cfg.readonly_root), binds, tmpfs


def _apply_limits(path, limits):
    """Write the memory and CPU limits to the container's cgroup, which
    create (or a foreground run's container process) has just joined.
    Where sentry could make no cgroup of its own (rootless without a
    delegated one), one warning, as runc gives; where it has one, a value
    the kernel refuses fails create."""
    if not limits or not ocires.wanted(limits):
        return
    try:
        ocires.apply(path, limits)
    except ocires.ResourceError as e:
        if ocires.joined(path):
            raise OciError(f"sentry create failed: unable to apply cgroup configuration: {e}")
        ocilog.warning("linux.resources: the cgroup limits are not applied: no cgroup sentry "
                       "may write here (rootless without a delegated cgroup)")
        ocilog.emit("debug", f"cgroup {path}: {e}")


def _end_child(pid):
    """SIGKILL our child pid (the stand-in: the Sentry dies with it) unless
    it was reaped already -- then its pid may be another process's -- and
    reap it."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _listen_fds():
    """How many fds from 3 on systemd's socket activation gave us: LISTEN_FDS
    when LISTEN_PID names this process (sd_listen_fds' rule, and runc's:
    an inherited pair meant for another process is not ours)."""
    try:
        if int(os.environ.get("LISTEN_PID", "")) != os.getpid():
            return 0
        return max(0, int(os.environ.get("LISTEN_FDS", "")))
    except ValueError:
        return 0


def _preserved_fds(n, most):
    """--preserve-fds N (after the socket activation's fds, if any): our
    caller's fds 3 .. 3+N-1, kept at their numbers in the process, as runc
    passes them.
    Each must be one the caller passed: open and without close-on-exec --
    every fd sentry opens itself has it, so none of ours can slip through."""
    if n < 0 or n > most:
        raise OciError(f"--preserve-fds {n}: between 0 and {most}")
    for i, fd in enumerate(range(3, 3 + n)):
        try:
            ours = not os.get_inheritable(fd)
        except OSError:
            ours = True
        if ours:
            raise OciError(f"unable to stat preserved-fd {i} (of {n}): stat /proc/self/fd/{fd}: "
                           "no such file or directory")
    return list(range(3, 3 + n))


def _read_report(fd):
    """The container process's one line: "ok GUESTPID" or its error.  Read
    to the first newline, not EOF: a helper it forked may hold the pipe."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _write_pid_file(path, pid):
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _container_process(cfg, c, report_w, process, rlimits, attrs, cgroup, record):
    """The forked container process: becomes the Sentry of the sandbox.
    Stays alive after `create` exits (the engine's conmon, a subreaper,
    inherits and reaps it) and exits with the guest's status.  attrs: what
    it sets on itself for the whole sandbox (inherited.check's)."""
    from sentry.oci import inherited
    from sentry.sandbox import ConfigError, run
    from sentry.platform import privileges
    code = 125
    try:
        # a session of its own, as runc's container init has: the engine's
        # terminal signals never reach it; with a console, its terminal's
        # (made once the sandbox's devpts is: sandbox/start.py)
        os.setsid()
        if cfg.console is not None:
            # create's stdio are not the container's: none of the helpers
            # forked before the console may hold them (the runc shim reads
            # create's output to its end)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
        if cgroup:
            ocicgroup.join(cgroup)
            _apply_limits(cgroup, record["resources"])
        # inherited by the guest, as the spec asks of the container process
        runtime_umask = os.umask(int(process["user"]["umask"]) if "umask" in (process.get("user") or {}) else 0o022)
        _check_rlimits(rlimits)
        try:
            inherited.apply(attrs)
        except inherited.InheritedError as e:
            raise ConfigError(str(e))
        hooks = ocihooks.from_json(record["hooks"])

        def on_ready(guest_pid, spawner, enter_namespaces):
            # The sandbox is set up, its first process waits: the create
            # hooks run now, as the Sentry's children but not its orphans'
            # reaper (a daemon one leaves behind is none of the sandbox's).
            # The first process then waits at the gate (exec.fifo) for `start`.
            state = c.oci_state(dict(record, pid=os.getppid()), "creating")     # the stand-in's
            privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 0)
            try:
                kw = dict(cwd=record["bundle"], umask=runtime_umask)
                ocihooks.run("prestart", hooks, state, **kw)
                ocihooks.run("createRuntime", hooks, state, **kw)
                ocihooks.run("createContainer", hooks, state, prepare=enter_namespaces, **kw)
            finally:
                privileges.prctl(privileges.PR_SET_CHILD_SUBREAPER, 1)
            os.write(report_w, f"ok {guest_pid} {spawner or 0} {os.getpid()}\n".encode())
            os.close(report_w)

        code = run(cfg, on_ready, control=c.control_socket)
    except ocihooks.HookError as e:
        _report_error(report_w, f"sentry create failed: unable to start container process: {e}")
    except (ConfigError, OciError) as e:
        _report_error(report_w, str(e))
    except BaseException as e:      # nothing may return into the caller's code
        try:
            _report_error(report_w, f"container process: {e!r}")
            ocilog.emit("error", f"container process: {e!r}")
        except BaseException:
            pass
    finally:
        if "logging" in sys.modules:
            sys.modules["logging"].shutdown()
        os._exit(code)


def _check_rlimits(rlimits):
    """Refuse at create what the guest could not be given: a hard limit
    above ours needs CAP_SYS_RESOURCE (podman's defaults for root fail so on
    these machines, as under runc).  Raising our own hard limit is the test;
    the guest gets the exact values (sandbox.Config.rlimits)."""
    import resource
    from sentry.sandbox import ConfigError
    for res, soft, hard, name in rlimits:
        if soft > hard and hard != resource.RLIM_INFINITY:
            raise ConfigError(f"rlimit {name}: soft {soft} above hard {hard}")
        cur_soft, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > cur_hard):
            try:
                resource.setrlimit(res, (cur_soft, hard))
            except (OSError, ValueError) as e:
                raise ConfigError(f"error setting rlimit type {name}: {getattr(e, 'strerror', None) or e}")


def _report_error(fd, msg):
    try:
        os.write(fd, (msg.replace("\n", " ") + "\n").encode())
    except OSError:
        ocilog.emit("error", msg)    # create has gone: the log is all that is left


def cmd_start(ctx, argv):
    args = _parse("start", argv)
    c = _existing(ctx, args.id)
    with c.locked():
        status = c.status()
        if status != "created":
            raise OciError(f"cannot start a container that has {'stopped' if status == 'stopped' else 'started already'}"
                           if status in ("stopped", "running") else f"cannot start a container in the {status} state")
        gate = _release(c)
    _started(c, gate)
    return 0


def _release(c, timeout=60):
    """Open exec.fifo to read: the guest's first process, blocked opening it
    to write (sandbox/guest.py), goes on and writes one byte.  Returns the
    fd, on which it says what stops it before its execve, if anything."""
    fd = os.open(c.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    if os.read(fd, 1):
                        break
                except BlockingIOError:
                    pass
            if not c.sentry_alive():
                raise OciError(f"container {c.id}: its process exited before start")
            if time.monotonic() > deadline:
                raise OciError(f"container {c.id}: its process did not answer start")
    except BaseException:
        os.close(fd)
        raise
    os.unlink(c.fifo)
    return fd


def _started(c, gate):
    """After _release: until the entrypoint's execve closes the gate (or
    the first process ends); then the poststart hooks.  What the first
    process wrote there instead is a startContainer hook's failure: the
    container is destroyed (its poststop hooks run) and start fails."""
    said = b""
    try:
        while True:
            ready, _, _ = select.select([gate], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(gate, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                said += chunk
            elif not c.sentry_alive():
                break
    finally:
        os.close(gate)
    hooks = ocihooks.from_json(c.data.get("hooks"))
    if said.strip():
        deadline = time.monotonic() + 5
        while c.sentry_alive() and time.monotonic() < deadline:
            time.sleep(0.01)        # it ends by itself, with the first process's status
        _destroy(c)
        raise OciError(said.decode(errors="replace").strip())
    if hooks.get("poststart"):
        ocihooks.run_warn("poststart", hooks, c.oci_state(), cwd=_cwd_of(c.data["bundle"]))


def _cwd_of(bundle):
    """Hooks in the runtime namespace run in the bundle, as runc's do."""
    return bundle if os.path.isdir(bundle) else None


def _poststop(hooks, state, bundle):
    if hooks.get("poststop"):
        ocihooks.run_warn("poststop", hooks, state, cwd=_cwd_of(bundle))


def cmd_run(ctx, argv):
    args = _parse("run", argv, _RUN)
    pid = _create(ctx, args, foreground=not args.detach)
    c = Container(ctx.root, args.id)
    try:
        with c.locked():
            gate = _release(c)
    except BaseException:
        _destroy(c)
        raise
    _started(c, gate)
    if args.detach:
        return 0
    # foreground: the container process is our child; its status is ours.
    # Our signals (a terminal's Ctrl-C: the container has a session of its
    # own) go to the container as `kill` sends them, as runc passes them on
    saved = {s: signal.signal(s, lambda sig, _f: _signal_container(c, sig, "running"))
             for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    if not args.keep:
        _destroy(c)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _kill_quiet(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# -- exec ---------------------------------------------------------------------

_EXEC = (Option("--process|-p", VALUE), Option("--tty|-t"), Option("--console-socket", VALUE),
         Option("--detach|-d"), Option("--pid-file", VALUE), Option("--env|-e", LIST),
         Option("--user|-u", VALUE), Option("--additional-gids|-g", LIST), Option("--cwd", VALUE),
         Option("--preserve-fds", INT, 0),
         # accepted as runc does; sentry's guests hold no host capabilities anyway
         Option("--no-new-privs"), Option("--cap|-c", LIST), Option("--process-label", VALUE),
         Option("--apparmor", VALUE), Option("--ignore-paused"), Option("--cgroup", VALUE))


def cmd_exec(ctx, argv):
    """A new process in the running sandbox (sandbox/spawner.py has how):
    its pid file names a process that exits with the command's status."""
    from sentry.sandbox import spawner
    args = _parse("exec", argv, _EXEC, rest="command")
    preserved = _preserved_fds(args.preserve_fds, spawner.MAX_FDS - 3)
    c = _existing(ctx, args.id)
    status = c.status()
    if status not in ("created", "running"):
        raise OciError(f"cannot exec in a {status} container")
    if not c.data.get("spawner_pid"):
        raise OciError(f"container {c.id}: its sandbox has no exec helper")
    req, console_size = _exec_request(c, args)
    req["preserve"] = len(preserved)
    on_pty = None
    if req["terminal"]:
        if args.console_socket:
            # the sandbox makes the pty (of its own devpts: /dev/pts/N
            # inside) and sends its master here, for the engine
            req["pty"] = True
            fds = []
            on_pty = functools.partial(_console_for_exec, args.console_socket, console_size)
        elif args.detach:
            raise OciError("cannot allocate tty if sentry will detach without setting console socket")
        elif os.isatty(0):
            fds = [0]
        else:
            raise OciError("exec --tty: no console socket, and stdin is not a terminal")
    else:
        if args.console_socket:
            raise OciError("cannot use console socket if sentry will not detach or allocate tty")
        fds = [0, 1, 2]
    try:
        conn = spawner.connect(c.control_socket)
    except OSError as e:
        raise OciError(f"container {c.id}: cannot reach its sandbox ({e.strerror})")
    try:
        host_pid = spawner.request(conn, req, fds + preserved, on_pty)
    except (OSError, spawner.SpawnerError) as e:
        conn.close()
        raise OciError(f"exec failed: {getattr(e, 'strerror', None) or e}")
    for fd in preserved:
        os.close(fd)                # the process has them now
    if args.detach:
        waiter = os.fork()
        if waiter == 0:
            _exec_waiter(conn, host_pid)
        conn.close()
        if args.pid_file:
            _write_pid_file(args.pid_file, waiter)
        return 0
    if args.pid_file:
        _write_pid_file(args.pid_file, os.getpid())
    return _wait_exec(conn, host_pid)


def _console_for_exec(path, size, master, name):
    """exec's terminal: the sandbox's pty's master goes to the engine."""
    from sentry.oci import console
    from sentry.sandbox import spawner
    try:
        console.hand_over(path, size, master, name)
    except console.ConsoleError as e:
        raise spawner.SpawnerError(str(e))


def _exec_request(c, args):
    """The request for the spawner, from --process or from the container's
    own process with the command line's changes (as runc builds it)."""
    from sentry.oci import spec as ocispec
    if args.process:
        try:
            with open(args.process) as f:
                process = json.load(f)
        except (OSError, ValueError) as e:
            raise OciError(f"--process {args.process}: {getattr(e, 'strerror', None) or e}")
        if not isinstance(process, dict) or not process.get("args"):
            raise OciError(f"--process {args.process}: args must not be empty")
        if args.tty:
            process["terminal"] = True
    else:
        if not args.command:
            raise OciError("exec: no command given (and no --process)")
        try:
            process = dict(ocispec.load(c.data["bundle"])["process"])
        except (ocispec.SpecError, KeyError):
            process = {"env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
        process["args"] = args.command
        process["terminal"] = args.tty
        env = ocispec.env_of(process)
        for kv in args.env:
            k, _, v = kv.partition("=")
            env[k] = v
        process["env"] = [f"{k}={v}" for k, v in env.items()]
        if args.cwd:
            process["cwd"] = args.cwd
        if args.user:
            uid, _, gid = args.user.partition(":")
            try:
                process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
            except ValueError:
                raise OciError(f"--user {args.user}: numeric UID[:GID] only")
        if args.additional_gids:
            user = dict(process.get("user") or {})
            user["additionalGids"] = [int(g) for g in args.additional_gids]
            process["user"] = user
    user = process.get("user") or {}
    try:
        req = {"args": [str(a) for a in process["args"]],
               "env": [str(e) for e in process.get("env") or []],
               "cwd": process.get("cwd") or "/",
               "uid": int(user.get("uid", 0)), "gid": int(user.get("gid", 0)),
               "groups": [int(g) for g in user.get("additionalGids") or []],
               "umask": int(user["umask"]) if user.get("umask") is not None else None,
               "terminal": bool(process.get("terminal"))}
    except (TypeError, ValueError) as e:
        raise OciError(f"exec: a malformed process: {e}")
    return req, process.get("consoleSize")


def _exec_status(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + status if 0 < status < 64 else 125


def _wait_exec(conn, host_pid):
    """Until the process ends; signals to us are passed on to it."""
    from sentry.sandbox import spawner
    saved = {s: signal.signal(s, lambda sig, _f: _kill_quiet(host_pid, sig))
             for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)}
    try:
        return _exec_status(spawner.wait_status(conn))
    finally:
        conn.close()
        for s, h in saved.items():
            signal.signal(s, h)


def _exec_waiter(conn, host_pid):
    """exec --detach: the process whose pid goes to --pid-file (the engine's
    conmon, a subreaper, inherits and reaps it): it exits with the command's
    status, and holds none of the caller's stdio."""
    code = 125
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        code = _wait_exec(conn, host_pid)
    except BaseException:
        pass
    finally:
        os._exit(code)


# -- state / list / ps --------------------------------------------------------

def _existing(ctx, cid):
    try:
        c = Container(ctx.root, cid)
        if not c.exists():
            raise OciError(f"container {cid} does not exist")
        c.load()
        return c
    except StateError as e:
        raise OciError(str(e))


def cmd_state(ctx, argv):
    args = _parse("state", argv)
    c = _existing(ctx, args.id)
    print(json.dumps(c.oci_state(), indent=2))
    return 0


_FORMAT = Option("--format|-f", VALUE, "table", choices=("table", "json"))


def cmd_list(ctx, argv):
    args = _parse("list", argv, (_FORMAT, Option("--quiet|-q")), args=())
    states = []
    for cid in all_ids(ctx.root):
        try:
            states.append(Container(ctx.root, cid).oci_state())
        except StateError:
            continue        # removed meanwhile
    if args.quiet:
        for s in states:
            print(s["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]) for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def cmd_ps(ctx, argv):
    import subprocess
    args = _parse("ps", argv, (_FORMAT,), rest="ps_args")
    c = _existing(ctx, args.id)
    pids = c.guest_pids()
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    # as runc: the host's ps, its lines for the container's processes
    out = subprocess.run(["ps"] + (args.ps_args or ["-ef"]), capture_output=True, text=True)
    lines = out.stdout.splitlines()
    if not lines:
        raise OciError(f"ps: {out.stderr.strip()}")
    header = lines[0].split()
    if "PID" not in header:
        raise OciError("ps: no PID column in its output")
    col = header.index("PID")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            print(line)
    return 0


# -- kill / delete ------------------------------------------------------------

def parse_signal(text):
    t = str(text).upper()
    if t.isdigit():
        n = int(t)
        if not 0 < n < signal.NSIG:
            raise OciError(f"invalid signal: {text}")
        return n
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return int(getattr(signal.Signals, t))
    except AttributeError:
        raise OciError(f"invalid signal: {text}")


def cmd_kill(ctx, argv):
    args = _parse("kill", argv, (Option("--all|-a"),), optional=(("signal", "TERM"),))
    sig = parse_signal(args.signal)
    c = _existing(ctx, args.id)
    with c.locked():
        status = c.status()
        if status == "stopped":
            raise OciError("container not running")
        sentry_pid = c.sentry_pid
        if status == "paused" and sig == signal.SIGKILL:
            freezer.thaw(c.data.get("cgroup"))
        if args.all:
            for pid in c.guest_pids():
                _kill_quiet(pid, sig)
            if status == "created":
                _kill_quiet(sentry_pid, sig)
        else:
            _signal_container(c, sig, status)
    return 0


def _signal_container(c, sig, status):
    """A signal to the container from outside (`kill`, a foreground `run`'s
    own signals)."""
    if sig == signal.SIGKILL or status == "created":
        # the Sentry's end takes every guest with it (PTRACE_O_EXITKILL);
        # its own death by SIGKILL is the status the engine reports (137)
        _kill_quiet(c.sentry_pid, sig)
        return
    init = c.data.get("init_pid")
    if init and init in c.guest_pids():
        # The guest's init is pid 1 of its namespace: from outside, as
        # on Linux, a signal reaches it only when it is not left to its
        # default action (runc's init without a TERM handler ignores
        # TERM; podman's stop then escalates to KILL).  Else delivered by
        # the host, seen and passed on by the tracer.
        if sig == signal.SIGSTOP or _receives(init, sig):
            _kill_quiet(init, sig)
    else:
        _kill_quiet(c.sentry_pid, sig)


SYS_RT_SIGTIMEDWAIT = 128


def _receives(pid, sig):
    """Whether host process pid, a PID namespace's init, would take sig
    from outside as Linux decides (sig_ignored, sig_task_ignored): it has a
    handler (SigCgt), or the signal is blocked (SigBlk: a signalfd's, as
    podman --init's catatonit waits), or it waits for it in
    rt_sigtimedwait (tini), whose wait unblocks the set for its length."""
    try:
        with open(f"/proc/{pid}/status") as f:
            masks = {k: int(v, 16) for k, _, v in (line.partition(":") for line in f) if k in ("SigCgt", "SigBlk")}
        if any(m >> (sig - 1) & 1 for m in masks.values()):
            return True
        return _waits_for(pid, sig)
    except (OSError, ValueError):
        return False


def _waits_for(pid, sig):
    """Whether pid's main thread sleeps in rt_sigtimedwait on a set with sig."""
    with open(f"/proc/{pid}/syscall") as f:
        words = f.read().split()
    if not words or words[0] != str(SYS_RT_SIGTIMEDWAIT):
        return False
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    try:
        waited = int.from_bytes(os.pread(fd, 8, int(words[1], 16)), "little")
    finally:
        os.close(fd)
    return bool(waited >> (sig - 1) & 1)


def cmd_delete(ctx, argv):
    args = _parse("delete", argv, (Option("--force|-f"),))
    c = Container(ctx.root, args.id)
    if not os.path.isdir(c.dir):
        if args.force:
            return 0        # what podman's cleanup asks after any end
        raise OciError(f"container {args.id} does not exist")
    if not c.exists():
        # a create that never finished (killed halfway): nothing runs yet
        c.remove()
        return 0
    status = c.status()
    if status in ("running", "paused") and not args.force:
        raise OciError(f"cannot delete container {args.id} that is not stopped: {status}")
    _destroy(c)
    return 0


def _destroy(c, patience=10):
    """SIGKILL the container process (the guests die with it), wait for it
    to be gone, remove the state: whatever state the container is in.  Then
    the poststop hooks."""
    with c.locked():
        if c.sentry_alive():
            freezer.thaw(c.data.get("cgroup"))
            _kill_quiet(c.sentry_pid, signal.SIGKILL)
            deadline = time.monotonic() + patience
            while c.sentry_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        ocicgroup.remove(c.data.get("cgroup"))
        state = c.oci_state()
        c.remove()
    _poststop(ocihooks.from_json(c.data.get("hooks")), state, c.data["bundle"])


# -- pause / resume -----------------------------------------------------------

def cmd_pause(ctx, argv):
    args = _parse("pause", argv)
    c = _existing(ctx, args.id)
    with c.locked():
        if c.status() != "running":
            raise OciError(f"container {args.id} is not running")
        try:
            freezer.freeze(c.data.get("cgroup"))
        except freezer.FreezerError as e:
            raise OciError(str(e))
        c.update(paused=True)
    return 0


def cmd_resume(ctx, argv):
    args = _parse("resume", argv)
    c = _existing(ctx, args.id)
    with c.locked():
        if c.status() != "paused":
            raise OciError(f"container {args.id} is not paused")
        try:
            freezer.thaw(c.data.get("cgroup"), strict=True)
        except freezer.FreezerError as e:
            raise OciError(str(e))
        c.update(paused=False)
    return 0


# -- spec / features / the rest -----------------------------------------------

def cmd_spec(ctx, argv):
    from sentry.oci import spec as ocispec
    args = _parse("spec", argv, (Option("--bundle|-b", VALUE, "."), Option("--rootless")), args=())
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise OciError("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        json.dump(ocispec.default_spec(args.rootless), f, indent="\t")
    return 0


def cmd_features(ctx, argv):
    from sentry.oci import seccomp as ocisec, spec as ocispec
    _parse("features", argv, args=())
    print(json.dumps({
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": list(ocihooks.KINDS),
        "mountOptions": ["bind", "rbind", "ro", "rw", "size"],
        "linux": {
            "namespaces": ["mount", "network", "pid", "uts", "ipc", "user", "time"],
            "capabilities": [],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": ocisec.ACTIONS, "operators": sorted(ocisec.OPERATORS),
                        "archs": ocisec.ARCHS, "supportedFlags": sorted(ocisec.FLAGS)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"dev.sentry.version": __version__,
                        "dev.sentry.options": ",".join(sorted(ocispec.SENTRY_OPTIONS))},
    }, indent=4))
    return 0


# runc's; each takes a value
_UPDATE = tuple(Option(n, VALUE) for n in (
    "--resources|-r", "--blkio-weight", "--cpu-period", "--cpu-quota", "--cpu-share", "--cpu-rt-period",
    "--cpu-rt-runtime", "--cpuset-cpus", "--cpuset-mems", "--kernel-memory", "--kernel-memory-tcp", "--memory",
    "--memory-reservation", "--memory-swap", "--pids-limit", "--l3-cache-schema", "--mem-bw-schema"))


# runc update's flags that sentry applies: (linux.resources kind, field, the value's kind)
_UPDATE_FIELDS = {"--memory": ("memory", "limit", "size"), "--memory-swap": ("memory", "swap", "size"),
                  "--memory-reservation": ("memory", "reservation", "size"),
                  "--cpu-share": ("cpu", "shares", "int"), "--cpu-quota": ("cpu", "quota", "int"),
                  "--cpu-period": ("cpu", "period", "int"), "--cpu-rt-period": ("cpu", "realtimePeriod", "int"),
                  "--cpu-rt-runtime": ("cpu", "realtimeRuntime", "int"), "--cpuset-cpus": ("cpu", "cpus", "str"),
                  "--cpuset-mems": ("cpu", "mems", "str"), "--blkio-weight": ("blockIO", "weight", "int")}
# and those it does not, by the field each sets
_UPDATE_IGNORED = {"--kernel-memory": "memory.kernel", "--kernel-memory-tcp": "memory.kernelTCP",
                   "--l3-cache-schema": "intelRdt", "--mem-bw-schema": "intelRdt"}


def cmd_update(ctx, argv):
    """runc update: the LinuxResources JSON of --resources FILE (`-`: stdin,
    what podman and containerd's shim send) and runc's flags, merged field by
    field into what the container has (what is left out stays).  Memory,
    CPU and block I/O are written to the container's cgroup (resources.py); the pids limit
    is the Sentry's, read at every fork (kernel/limits.py PidsLimit), so a
    fork past a lowered limit is EAGAIN from then on and the tasks already
    there stay, as with a pids cgroup's pids.max.  What neither applies is
    named in a warning."""
    args = _parse("update", argv, _UPDATE)
    c = _existing(ctx, args.id)
    resources = {}
    if args.resources is not None:
        try:
            text = sys.stdin.read() if args.resources == "-" else open(args.resources).read()
            resources = json.loads(text)
        except OSError as e:
            raise OciError(f"update: {args.resources}: {e.strerror}")
        except ValueError as e:
            raise OciError(f"update: the resources are not JSON: {e}")
        if not isinstance(resources, dict):
            raise OciError("update: the resources are not a JSON object (LinuxResources)")
    for flag, (kind, field, value_kind) in _UPDATE_FIELDS.items():
        value = getattr(args, _attr(flag))
        if value is not None:
            resources.setdefault(kind, {})
            if not isinstance(resources[kind], dict):
                raise OciError(f"update: {kind} is not an object")
            resources[kind][field] = _update_number(flag, value, value_kind)
    pids = (resources.get("pids") or {}).get("limit") if isinstance(resources.get("pids"), dict) else None
    if args.pids_limit is not None:
        pids = _update_number("--pids-limit", args.pids_limit, "int")
    if pids is not None and (not isinstance(pids, int) or isinstance(pids, bool)):
        raise OciError(f"update: pids.limit {pids!r}: a number of tasks")
    ignored = sorted(set(ocires.not_applied(resources)) |
                     {field for flag, field in _UPDATE_IGNORED.items() if getattr(args, _attr(flag)) is not None})
    with c.locked():
        try:
            limits = ocires.merge(c.data.get("resources"), {k: v for k, v in resources.items() if k in ocires.APPLIED})
            ocires.check(limits)
        except ocires.ResourceError as e:
            raise OciError(f"update: {e}")
        if c.status() == "stopped":
            raise OciError(f"container {args.id} is not running")
        if pids is not None:
            _write_pids_limit(c, max(0, pids))
        if limits != (c.data.get("resources") or {}):
            try:
                ocires.apply(c.data.get("cgroup"), limits)
            except ocires.ResourceError as e:
                raise OciError(f"update: {e}")
            c.update(resources=limits)
    if ignored:
        ocilog.warning(f"update {args.id}: {', '.join(ignored)} not applied "
                       "(sentry applies the memory, cpu, cpuset, blockIO, hugetlb, unified and pids limits)")
    return 0


def _update_number(flag, text, kind):
    """A flag's value as runc reads it: a size with a unit (64m) or -1, a
    plain integer, or a string as it is (a CPU list)."""
    from sentry.kernel.limits import parse_bytes
    if kind == "str":
        return text
    try:
        return -1 if text.strip() == "-1" else parse_bytes(text) if kind == "size" else int(text)
    except ValueError:
        raise OciError(f"invalid value {text!r} for flag {flag}: "
                       + ("a size (64m) or -1" if kind == "size" else "a number"))


def _attr(flag):
    """The attribute args.py gives an option: --cpu-rt-period -> cpu_rt_period."""
    return flag.lstrip("-").split("|")[0].replace("-", "_")


def _write_pids_limit(c, limit, create=False):
    """Set the limit the container's Sentry reads at every fork (c.pids_file:
    kernel/limits.py PidsLimit), rewritten in place, never replaced: the
    Sentry holds it open."""
    from sentry.kernel.limits import PidsLimit
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(c.pids_file, flags | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise OciError(f"the pids limit of {c.id}: {e.strerror}")
    try:
        PidsLimit.write_to(fd, limit)
    finally:
        os.close(fd)


def cmd_events(ctx, argv):
    """runc's event stream: with --stats one stats event and done; else one
    every --interval until the container stops (sentry/oci/stats.py says
    where the figures come from), and an "oom" event for each process the
    kernel's OOM killer ends in the container's cgroup (its memory limit
    reached: resources.py) from then on, as runc reports them."""
    from sentry.oci import stats
    args = _parse("events", argv, (Option("--stats"), Option("--interval", VALUE, "5s")))
    interval = _duration(args.interval)
    c = _existing(ctx, args.id)
    cgroup = c.data.get("cgroup")
    watch = ocires.OomWatch(cgroup) if not args.stats else None
    due = time.monotonic()
    while True:
        stopped = c.status() == "stopped"
        if stopped and args.stats:
            raise OciError(f"container {args.id} is not running")
        events = [{"type": "oom", "id": args.id}] * (watch.take() if watch else 0)
        if not stopped and time.monotonic() >= due:
            events.append({"type": "stats", "id": args.id, "data": stats.stats(cgroup, c.sentry_pid)})
            due = time.monotonic() + interval
        try:
            for event in events:
                print(json.dumps(event), flush=True)
        except BrokenPipeError:
            return 0            # the reader has gone: so has the stream
        if args.stats or stopped:
            return 0
        # woken by an OOM; the container's end is seen within 100 ms
        wait = max(0.0, min(0.1, due - time.monotonic()))
        if watch.fileno() is not None:
            select.select([watch.fileno()], [], [], wait)
        else:
            time.sleep(wait)


def _duration(text):
    """A Go duration as runc takes it: 5s, 100ms, 1m, 1.5s."""
    for unit, scale in (("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(unit) and text[:-len(unit)].replace(".", "", 1).isdigit():
            value = float(text[:-len(unit)]) * scale
            if value > 0:
                return value
    raise OciError(f"events: invalid duration {text!r} (5s, 100ms ...)")


def not_supported(name, why):
    def cmd(ctx, argv):
        raise OciError(f"{name}: not supported yet by sentry ({why})")
    return cmd


COMMANDS = {
    "create": cmd_create, "start": cmd_start, "run": cmd_run, "state": cmd_state,
    "kill": cmd_kill, "delete": cmd_delete, "list": cmd_list, "ps": cmd_ps,
    "pause": cmd_pause, "resume": cmd_resume, "spec": cmd_spec, "features": cmd_features,
    "update": cmd_update,
    "exec": cmd_exec,
    "events": cmd_events,
    "checkpoint": not_supported("checkpoint", "no checkpoint/restore"),
    "restore": not_supported("restore", "no checkpoint/restore"),
}


# what runs code that logs through the logging module (the sandbox, the
# config reader): its records become lines of the runtime's log
USES_LOGGING = ("create", "run", "exec", "spec", "features")


def main(ctx, command, argv):
    if command in USES_LOGGING:
        ocilog.attach_logging()
    try:
        return COMMANDS[command](ctx, argv)
    except (OciError, StateError, UsageError) as e:
        ocilog.error(str(e))
        return 1
    except BrokenPipeError:
        # the reader of our output has gone (`sentry state ID | head -1`):
        # quietly, as runc ends by SIGPIPE; nothing left to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
