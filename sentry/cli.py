"""Command line: `sentry [global options] COMMAND ...`.

Two families share it:
  sentry run [options] -- CMD ARGS...     a command in a new sandbox (as ever)
  sentry [global] create|start|state|kill|delete|run|list|ps|spec|features|
         pause|resume|update ... ID       the OCI runtime (runc's command line:
                                          sentry/oci/), for podman and containerd

`run` is both: a `--` after it, or no container ID, means a sandbox run (see
is_sandbox_run); `run [--bundle B] [--detach] ... ID` with no `--` is the OCI
one.  Global options come before the command, as `--flag=value` or
`--flag value`: runc's (--root, --log, --log-format, --debug,
--systemd-cgroup, --rootless) and sentry's own (--network, --strace,
--overlay, --audit, --pids-limit, --cpus, --memory, --kernel-release), which
apply to the sandbox of a `create`/`run` (podman's --runtime-flag passes
them) and to `sentry run` as if given after it."""
import gc
import os
import sys

from sentry import __version__


USAGE_ERROR = 125       # as for every error of sentry's own (README: exit status)


def parser():
    # argparse and logging are the sandbox run's: the OCI commands an engine
    # runs for every container (a new interpreter each) start without them
    import argparse

    class _Parser(argparse.ArgumentParser):
        """A bad option is one line on stderr and exit status 125 (argparse's
        own way is the usage text and 2, which a command's status could be)."""

        def error(self, message):
            self.exit(USAGE_ERROR, f"{self.prog}: {message}\n")

    p = _Parser(
        prog="sentry",
        description="Run Linux programs in a userspace-kernel sandbox (seccomp-bpf + ptrace).")
    p.add_argument("--version", action="version", version=f"sentry {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a command in a new sandbox",
                         description="Run CMD in a new sandbox. Without --rootfs the host's / is "
                                     "the read-only lower layer of a private copy-on-write overlay "
                                     "root (discarded at exit), with a private /tmp, and its secrets "
                                     "(/etc/shadow, /root, /home, ssh host keys, container and "
                                     "database state...) are hidden behind empty stand-ins.")
    run.add_argument("--rootfs", metavar="DIR",
                     help="use DIR as the sandbox's root, writable in place (see --overlay)")
    run.add_argument("--overlay", action="store_true",
                     help="with --rootfs: DIR becomes the read-only lower layer of a private "
                          "copy-on-write overlay, discarded at exit (the default root always is one)")
    run.add_argument("--overlay-dir", metavar="PATH",
                     help="keep the overlay's upper layer in PATH (its upper/ and work/), so a later "
                          "run sees the changes; implies --overlay")
    run.add_argument("--cwd", metavar="DIR", help="working directory inside the sandbox "
                     "(default: the current directory without --rootfs, / with it)")
    run.add_argument("--mount", action="append", default=[], metavar="SPEC",
                     help="add a mount (repeatable): type=bind,src=HOSTDIR,dst=/PATH[,ro][,sockets] "
                          "(unix sockets in it are connected to only with sockets) "
                          "or type=tmpfs,dst=/PATH (a private directory, removed at exit)")
    run.add_argument("--hide", action="append", default=[], metavar="PATH",
                     help="hide PATH behind an empty stand-in (repeatable; with --rootfs too)")
    run.add_argument("--expose", action="append", default=[], metavar="PATH",
                     help="show PATH, which the default root hides, as the host has it (repeatable)")
    run.add_argument("--hostname", default="sentry", help="hostname seen by the guest (default: sentry)")
    run.add_argument("--pids-limit", type=int, default=4096, metavar="N",
                     help="most tasks (processes and threads) the sandbox may hold; a fork or "
                          "clone past it fails with EAGAIN (default 4096, 0: no limit)")
    run.add_argument("--uid", default=0, metavar="UID",
                     help="user id the guest runs as inside the sandbox (default 0, root in the "
                          "sandbox's user namespace; the host sees sentry's own uid)")
    run.add_argument("--gid", default=0, metavar="GID", help="group id inside the sandbox (default 0)")
    run.add_argument("--groups", default="", metavar="GID,...",
                     help="supplementary group ids inside the sandbox (default: none)")
    run.add_argument("--cpus", type=int, metavar="N",
                     help="run on N of sentry's CPUs; nproc, /proc/cpuinfo and /sys show N")
    run.add_argument("--memory", metavar="BYTES",
                     help="memory the sandbox reports (/proc/meminfo, sysinfo, free); "
                          "k, m, g suffixes; reported, not enforced")
    run.add_argument("--kernel-release", metavar="RELEASE",
                     help="kernel release uname -r reports (default: the host's)")
    run.add_argument("--network", default="sandbox", choices=("sandbox", "none", "host"),
                     help="sandbox (default): a private network (loopback) of the sandbox's own; none: "
                          "loopback only; host: the host's network, not isolated")
    run.add_argument("--net-allow", action="append", default=[], metavar="CIDR[:PORT]",
                     help="with --network=sandbox: the destinations outside the sandbox the guest may connect "
                          "to, repeatable (default: any but the host's own, loopback and link-local addresses)")
    run.add_argument("--publish", "-p", action="append", default=[], metavar="HOSTPORT:PORT[/udp]",
                     help="with --network=sandbox: make the sandbox's server on PORT (TCP, or UDP with /udp) "
                          "reachable on the host's port HOSTPORT (127.0.0.1 and the host's addresses), "
                          "repeatable; a host port already taken stops the run (exit 125)")
    run.add_argument("--dns", action="append", default=[], metavar="IP",
                     help="with --network=sandbox: a resolver the sandbox's DNS relay serves at its own address "
                          "(UDP port 53), repeatable; default: the nameservers of the host's /etc/resolv.conf; "
                          "none: no relay")
    run.add_argument("--strace", nargs="?", const="all", default=False, metavar="LIST",
                     help="log every syscall as strace does, with its outcome (emulated, rewritten, "
                          "passed, denied); --strace=LIST shows only those of LIST, as strace's "
                          "-e trace=LIST: names, %%file, %%desc, %%network, %%process, %%signal, "
                          "%%memory, %%creds, /REGEX, a leading ! inverts")
    run.add_argument("--strace-time", metavar="OPTS",
                     help="with --strace: t, tt or ttt prefix each line with the time of day "
                          "(seconds, microseconds, since the epoch), T appends the time spent in "
                          "the call, as strace -t/-tt/-ttt/-T (comma-separated: tt,T)")
    run.add_argument("--strace-string-limit", type=int, default=32, metavar="N",
                     help="with --strace: bytes of a string or buffer shown (strace -s; default 32)")
    run.add_argument("--audit", metavar="FILE",
                     help="append one JSON line to FILE per denied call, privileged action, "
                          "and process start, exec and exit")
    run.add_argument("--log", metavar="FILE", help="write the Sentry's log to FILE instead of stderr")
    run.add_argument("--debug", action="store_true", help="verbose Sentry log")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    return p


OCI_COMMANDS = ("create", "start", "state", "kill", "delete", "list", "ps", "spec", "features",
                "pause", "resume", "update", "exec", "events", "checkpoint", "restore")
GLOBAL_VALUE = ("--root", "--log", "--log-format", "--criu")
GLOBAL_FLAG = ("--debug", "--systemd-cgroup")
# sentry's own options, global so that an engine can pass them (podman --runtime-flag)
SENTRY_VALUE = ("--network", "--audit", "--pids-limit", "--cpus", "--memory", "--kernel-release")
SENTRY_FLAG = ("--strace", "--overlay")
# options only the OCI `run` has: with one of them, `run` is the OCI one
OCI_RUN_OPTIONS = ("--bundle", "-b", "--detach", "-d", "--pid-file", "--console-socket", "--no-pivot",
                   "--no-new-keyring", "--preserve-fds", "--keep", "--no-subreaper")
SPEC_VERSION = "1.0.2"

HELP = """usage: sentry [global options] COMMAND [options] ...

Run Linux programs in a userspace-kernel sandbox (seccomp-bpf + ptrace).

  sentry run [options] -- CMD [ARGS...]   run CMD in a new sandbox (sentry run --help)

OCI runtime commands (runc's command line, for podman and containerd):
  create --bundle B [--pid-file F] [--console-socket S] [--preserve-fds N] ID   set a container up
  start ID            run its process        state ID          its OCI state JSON
  kill ID [SIGNAL]    signal it (--all)      delete [--force] ID
  run [--bundle B] [--detach] [--pid-file F] [--console-socket S] [--preserve-fds N] ID   create + start
  exec [--process P] [-t] [-e K=V] [-u U[:G]] [--cwd D] [--detach] [--preserve-fds N] ID [CMD...]
                      a new process in it
  list [--format table|json] [-q]            ps [--format table|json] ID
  pause ID, resume ID                        spec [--bundle B] [--rootless]
  features            update ID (accepted)   events, checkpoint, restore: not supported yet

global options (before COMMAND; --flag=value or --flag value):
  --root DIR          container state (default /run/sentry; $XDG_RUNTIME_DIR/sentry when not root)
  --log FILE          log here instead of stderr        --log-format text|json
  --debug             verbose log                       --systemd-cgroup, --rootless: accepted
  --network, --strace, --overlay, --audit, --pids-limit, --cpus, --memory, --kernel-release:
                      sentry's own options, for the sandbox of create/run
  --version, --help
"""


def _version():
    commit = "unknown"
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(here, ".git")):
        import subprocess
        try:
            commit = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                    text=True, timeout=5).stdout.strip() or commit
        except (OSError, subprocess.SubprocessError):
            pass
    return f"sentry version {__version__}\ncommit: {commit}\nspec: {SPEC_VERSION}"


class _UsageError(Exception):
    pass


def parse_globals(argv):
    """(options, command, the command's argv).  Long options take one or two
    dashes (runc's parser does); values attach with = or follow."""
    opts = {"root": None, "log": None, "log-format": "text", "debug": False, "sentry": {}, "sentry_argv": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-":
            break
        if a == "--":
            raise _UsageError("no command given before --")
        if a in ("-v", "--version", "-version"):
            return opts, "--version", []
        if a in ("-h", "--help", "-help"):
            return opts, "--help", []
        name, eq, value = a.partition("=")
        if not name.startswith("--"):
            name = "-" + name
        if name in GLOBAL_VALUE + SENTRY_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise _UsageError(f"option {name} needs a value")
                value = argv[i]
            if name in SENTRY_VALUE:
                opts["sentry"][name[2:]] = value
                opts["sentry_argv"] += [name, value]
            else:
                opts[name[2:]] = value
        elif name in GLOBAL_FLAG + SENTRY_FLAG:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise _UsageError(f"option {name} takes true or false, not {value}")
            on = not eq or value.lower() in ("true", "1")
            if name in SENTRY_FLAG:
                if on:
                    opts["sentry"][name[2:]] = "true"
                    opts["sentry_argv"].append(name)
            elif name == "--debug":
                opts["debug"] = on
        elif name == "--rootless":
            # runc: --rootless true|false|auto; accepted, sentry never needs root
            if not eq and i + 1 < len(argv) and argv[i + 1] in ("true", "false", "auto"):
                i += 1
        else:
            raise _UsageError(f"unrecognized global option {a} (sentry --help)")
        i += 1
    if i == len(argv):
        raise _UsageError("no command given (usage: sentry run [options] -- CMD [ARGS...]; sentry --help)")
    return opts, argv[i], argv[i + 1:]


def is_sandbox_run(argv):
    """`run` after the global options: a sandbox run (sentry's own) when a
    `--` comes (`run [options] -- CMD`), or when there is anything but a
    single container ID; the OCI run when an option only it has is given
    (--bundle, --detach, --pid-file, --console-socket …), or when its one
    argument names a container in a bundle: ./config.json exists (runc's
    default bundle is the current directory)."""
    if "--" in argv:
        return True
    if any(a.partition("=")[0] in OCI_RUN_OPTIONS for a in argv):
        return False
    positional = [a for a in argv if not a.startswith("-")]
    return not (len(positional) == 1 and len(argv) == 1 and os.path.isfile("config.json"))


def main(argv=None):
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts, command, rest = parse_globals(argv)
    except _UsageError as e:
        print(f"sentry: {e}", file=sys.stderr)
        return USAGE_ERROR
    if command == "--version":
        print(_version())
        return 0
    if command == "--help":
        print(HELP, end="")
        return 0
    if command == "run" and is_sandbox_run(rest):
        extra = list(opts["sentry_argv"])
        if opts["log"]:
            extra += ["--log", opts["log"]]
        if opts["debug"]:
            extra.append("--debug")
        if as_program:
            # no collection while the sandbox is set up: what it makes lives
            # on (sandbox/start.py freezes it and collects again)
            gc.disable()
        code = sandbox_run(["run"] + extra + rest)
        if as_program:
            _exit_now(code)
        return code
    if command != "run" and command not in OCI_COMMANDS:
        print(f"sentry: unknown command {command!r} (sentry --help)", file=sys.stderr)
        return USAGE_ERROR
    from sentry.oci import commands, log as ocilog
    from sentry.oci.state import default_root
    try:
        ocilog.setup(opts["log"], opts["log-format"], opts["debug"])
    except (ValueError, OSError) as e:
        print(f"sentry: {e}", file=sys.stderr)
        return USAGE_ERROR
    ctx = commands.Context(os.path.abspath(opts["root"] or default_root()), opts["sentry"], opts["debug"])
    code = commands.main(ctx, command, rest)
    if as_program:
        _exit_now(code)
    return code


def _exit_now(code):
    """A sandbox's run or an OCI command, run as the program, ends here:
    what it made is on disk or in its children (a run's helpers, private
    directories and audit trail are closed by then), so the interpreter's
    teardown of every module (6-12 ms, at every one of the engine's create,
    start, state, delete; 12-20 ms after a run, whose table and mounts are
    larger) is skipped; output and the log are flushed first."""
    if "logging" in sys.modules:        # imported by the commands that log through it
        sys.modules["logging"].shutdown()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def sandbox_run(argv):
    # `--strace CMD` must run CMD, not read it as --strace's list: a list is
    # given as --strace=LIST only
    if "--" in argv:
        cut = argv.index("--")
        argv = [a if a != "--strace" else "--strace=all" for a in argv[:cut]] + argv[cut:]
    else:
        argv = [a if a != "--strace" else "--strace=all" for a in argv]
    import logging
    args = parser().parse_args(argv)
    if args.command != "run":
        print("sentry: no command given (usage: sentry run [options] -- CMD [ARGS...]; sentry --help)",
              file=sys.stderr)
        return USAGE_ERROR
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sentry: %(message)s"))
    root = logging.getLogger("sentry")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.debug else logging.INFO if args.strace else logging.WARNING)

    from sentry.sandbox import Config, ConfigError, run
    try:
        cfg = Config(cmd, rootfs=args.rootfs, cwd=args.cwd, hostname=args.hostname,
                     strace=args.strace, mounts=args.mount, pids_limit=args.pids_limit,
                     uid=args.uid, gid=args.gid, groups=[g for g in args.groups.split(",") if g],
                     cpus=args.cpus, memory=args.memory, kernel_release=args.kernel_release,
                     overlay=args.overlay, overlay_dir=args.overlay_dir,
                     hide=args.hide, expose=args.expose, audit=args.audit,
                     strace_time=args.strace_time, strace_string_limit=args.strace_string_limit,
                     network=args.network, net_allow=args.net_allow, dns=args.dns,
                     publish=args.publish)
        return run(cfg)
    except ConfigError as e:
        print(f"sentry: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
