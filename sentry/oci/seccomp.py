"""config.json's linux.seccomp -> the guest's own seccomp filter (a
platform GuestProfile), compiled with libseccomp as runc does and stacked on
the Sentry's filter in the guest, just before its execve.

Filters stack and the kernel takes the highest-ranked action.  A call the
profile denies (ERRNO, TRAP, KILL_*) is answered by the kernel before the
Sentry's RET_TRACE could stop it; a call it allows or logs still stops at
the Sentry as before.  So a profile only ever takes calls away.  Two actions
would do more, and are not installed as written:

  SCMP_ACT_NOTIFY   outranks RET_TRACE: its supervisor (listenerPath) could
                    let a call run unchecked.  Refused, as the guest's own
                    seccomp(2) is refused a listener (syscalls/process.py).
  SCMP_ACT_TRACE    asks for the process's tracer.  Inside a sandbox the
                    only tracer is the Sentry (a guest's ptrace is refused),
                    so it is what Linux gives a call traced by no one:
                    ENOSYS (logged once at create).

The compiled program is checked before it is handed on: every return is one
of platform/seccomp.py's PROFILE_ACTIONS.
"""
import errno
import logging

from sentry.platform import seccomp as platform_seccomp
from sentry.platform.libseccomp import pyseccomp

log = logging.getLogger("sentry")

_ARCHS = {"SCMP_ARCH_" + name: getattr(pyseccomp.Arch, name) for name in (
    "X86_64", "X86", "X32", "AARCH64", "ARM", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL", "MIPSEL64",
    "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X")}
ARCHS = sorted(_ARCHS)
OPERATORS = {"SCMP_CMP_NE": pyseccomp.NE, "SCMP_CMP_LT": pyseccomp.LT, "SCMP_CMP_LE": pyseccomp.LE,
             "SCMP_CMP_EQ": pyseccomp.EQ, "SCMP_CMP_GE": pyseccomp.GE, "SCMP_CMP_GT": pyseccomp.GT,
             "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ}
# action name -> libseccomp action, given the errno the rule names
_ACTIONS = {
    "SCMP_ACT_KILL": lambda e: pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": lambda e: pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": lambda e: pyseccomp.KILL_PROCESS,
    "SCMP_ACT_TRAP": lambda e: pyseccomp.TRAP,
    "SCMP_ACT_ERRNO": lambda e: pyseccomp.ERRNO(errno.EPERM if e is None else e),
    "SCMP_ACT_TRACE": lambda e: pyseccomp.ERRNO(errno.ENOSYS),       # no tracer but the Sentry
    "SCMP_ACT_LOG": lambda e: pyseccomp.LOG,
    "SCMP_ACT_ALLOW": lambda e: pyseccomp.ALLOW,
}
ACTIONS = sorted(_ACTIONS)
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
NOTIFY_REFUSED = ("SCMP_ACT_NOTIFY: a user-notification supervisor outranks the Sentry's trap and could "
                  "let a call run unchecked; sentry does not install it")


class ProfileError(ValueError):
    """linux.seccomp cannot be installed: create fails with this line."""


def profile_of(spec):
    """The GuestProfile for config.json's linux.seccomp, or None."""
    prof = (spec.get("linux") or {}).get("seccomp")
    if prof is None:
        return None
    if not isinstance(prof, dict):
        raise ProfileError("linux.seccomp: an object")
    if prof.get("listenerPath"):
        raise ProfileError(f"linux.seccomp.listenerPath: {NOTIFY_REFUSED}")
    flags = 0
    for name in prof.get("flags") or []:
        if name not in FLAGS:
            raise ProfileError(f"linux.seccomp.flags: {name} is not supported "
                               f"(one of {', '.join(sorted(FLAGS))})")
        flags |= FLAGS[name]
    default = _action("defaultAction", prof.get("defaultAction"), prof.get("defaultErrnoRet"))
    filt = pyseccomp.SyscallFilter(default)
    for name in prof.get("architectures") or []:
        if name not in _ARCHS:
            raise ProfileError(f"linux.seccomp.architectures: unknown {name}")
        try:
            filt.add_arch(_ARCHS[name])
        except OSError as e:
            if e.errno != errno.EEXIST:         # the native one is there already
                raise ProfileError(f"linux.seccomp.architectures: {name}: {e.strerror}")
    for i, rule in enumerate(prof.get("syscalls") or []):
        _add(filt, f"linux.seccomp.syscalls[{i}]", rule, default)
    try:
        code = platform_seccomp.compile_profile(filt)
        return platform_seccomp.GuestProfile(code, flags)
    except (OSError, ValueError) as e:
        raise ProfileError(f"linux.seccomp: {getattr(e, 'strerror', None) or e}")


def _action(where, name, errno_ret):
    if name == "SCMP_ACT_NOTIFY":
        raise ProfileError(f"linux.seccomp: {where}: {NOTIFY_REFUSED}")
    if name not in _ACTIONS:
        raise ProfileError(f"linux.seccomp: {where}: unknown action {name!r}")
    if errno_ret is not None and (not isinstance(errno_ret, int) or not 0 <= errno_ret <= 0xFFFF):
        raise ProfileError(f"linux.seccomp: {where}: errnoRet {errno_ret!r} is not an errno")
    if name == "SCMP_ACT_TRACE":
        log.warning("linux.seccomp: %s SCMP_ACT_TRACE: the Sentry is the only tracer in a sandbox; "
                    "the call fails with ENOSYS, as on Linux when no tracer is attached", where)
    return _ACTIONS[name](errno_ret)


def _add(filt, where, rule, default):
    """One syscalls[] entry, as runc adds it: an unknown name is skipped, an
    action that is the default's adds nothing, and comparisons of one
    argument with itself more than once become separate (OR-ed) rules."""
    if not isinstance(rule, dict) or not isinstance(rule.get("names"), list):
        raise ProfileError(f"linux.seccomp: {where}: names must be an array")
    action = _action(where, rule.get("action"), rule.get("errnoRet"))
    if action == default:
        return
    conds, indexes = [], []
    for a in rule.get("args") or []:
        op = OPERATORS.get(a.get("op"))
        index, value, two = a.get("index"), a.get("value", 0), a.get("valueTwo", 0)
        if op is None or not isinstance(index, int) or not 0 <= index < 6 or \
                not all(isinstance(v, int) and 0 <= v < 1 << 64 for v in (value, two)):
            raise ProfileError(f"linux.seccomp: {where}: a bad argument comparison {a!r}")
        conds.append(pyseccomp.Arg(index, op, value, two))
        indexes.append(index)
    groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
    for name in rule["names"]:
        if not isinstance(name, str):
            raise ProfileError(f"linux.seccomp: {where}: names must be strings")
        nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if nr == -1:
            log.debug("linux.seccomp: unknown syscall %s ignored", name)
            continue
        for group in groups:
            try:
                filt.add_rule(action, nr, *group)
            except OSError as e:
                raise ProfileError(f"linux.seccomp: {where}: {name}: {e.strerror}")
