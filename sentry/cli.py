"""Command line: `sentry run [options] -- CMD ARGS...`."""
import argparse
import logging
import sys

from sentry import __version__


USAGE_ERROR = 125       # as for every error of sentry's own (README: exit status)


class _Parser(argparse.ArgumentParser):
    """A bad option is one line on stderr and exit status 125 (argparse's
    own way is the usage text and 2, which a command's status could be)."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: {message}\n")


def parser():
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    # `--strace CMD` must run CMD, not read it as --strace's list: a list is
    # given as --strace=LIST only
    if "--" in argv:
        cut = argv.index("--")
        argv = [a if a != "--strace" else "--strace=all" for a in argv[:cut]] + argv[cut:]
    else:
        argv = [a if a != "--strace" else "--strace=all" for a in argv]
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
                     network=args.network, net_allow=args.net_allow)
        return run(cfg)
    except ConfigError as e:
        print(f"sentry: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
