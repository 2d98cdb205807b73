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
import hashlib
import json
import logging
import os
import stat

from sentry.platform import seccomp as platform_seccomp
from sentry.platform.libseccomp import library_version, pyseccomp

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


def profile_of(spec, cache=None):
    """The GuestProfile for config.json's linux.seccomp, or None.
    cache: a directory where compiled programs are kept by the profile's
    digest (with libseccomp's version): podman sends its default profile
    with every container, and libseccomp takes ~12 ms to compile it.  The
    profile is checked in full either way; a kept program is used only if
    it is ours (owner, mode) and passes GuestProfile's check."""
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
    archs = []
    for name in prof.get("architectures") or []:
        if name not in _ARCHS:
            raise ProfileError(f"linux.seccomp.architectures: unknown {name}")
        archs.append(name)
    rules = [_rule(f"linux.seccomp.syscalls[{i}]", rule, default) for i, rule in enumerate(prof.get("syscalls") or [])]
    key = _digest(prof) if cache else None
    code = _kept(cache, key) if key else None
    if code is None:
        code = _compile(default, archs, rules)
        if key:
            _keep(cache, key, code)
    try:
        return platform_seccomp.GuestProfile(code, flags)
    except ValueError as e:
        raise ProfileError(f"linux.seccomp: {e}")


def _compile(default, archs, rules):
    filt = pyseccomp.SyscallFilter(default)
    for name in archs:
        try:
            filt.add_arch(_ARCHS[name])
        except OSError as e:
            if e.errno != errno.EEXIST:         # the native one is there already
                raise ProfileError(f"linux.seccomp.architectures: {name}: {e.strerror}")
    for where, action, groups, names in rules:
        _add(filt, where, action, groups, names)
    try:
        return platform_seccomp.compile_profile(filt)
    except OSError as e:
        raise ProfileError(f"linux.seccomp: {e.strerror}")


# -- compiled programs kept by digest ------------------------------------------

KEPT_MOST = 32          # programs kept; the oldest go first


def _digest(prof):
    text = json.dumps([1, library_version(), prof], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _kept(cache, key):
    """The program kept under key, if it is ours and nobody else could have
    written it; None otherwise (then compiled again)."""
    try:
        fd = os.open(os.path.join(cache, key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022 \
                or st.st_size > 1 << 20:
            return None
        code = os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)
    try:
        platform_seccomp.check_profile(code)
    except ValueError:
        return None
    return code


def _keep(cache, key, code):
    """Best effort: a cache that cannot be written is no cache.  Made only
    inside an existing state root, mode 0700."""
    try:
        try:
            os.mkdir(cache, 0o700)
        except FileExistsError:
            pass
        names = [n for n in os.listdir(cache) if not n.startswith(".")]
        if len(names) >= KEPT_MOST:
            names.sort(key=lambda n: os.stat(os.path.join(cache, n)).st_mtime)
            for n in names[:len(names) - KEPT_MOST + 1]:
                os.unlink(os.path.join(cache, n))
        tmp = os.path.join(cache, f".{key}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, code)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(cache, key))
    except OSError:
        pass


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


def _rule(where, rule, default):
    """One syscalls[] entry, checked: (where, action, groups of argument
    comparisons, names), as runc reads it: an action that is the default's
    adds nothing (no names), and comparisons of one argument with itself
    more than once become separate (OR-ed) rules."""
    if not isinstance(rule, dict) or not isinstance(rule.get("names"), list):
        raise ProfileError(f"linux.seccomp: {where}: names must be an array")
    action = _action(where, rule.get("action"), rule.get("errnoRet"))
    if not all(isinstance(name, str) for name in rule["names"]):
        raise ProfileError(f"linux.seccomp: {where}: names must be strings")
    if action == default:
        return where, action, [], []
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
    return where, action, groups, rule["names"]


def _add(filt, where, action, groups, names):
    """A checked rule into libseccomp's filter; an unknown name is skipped,
    as runc skips it."""
    for name in names:
        nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if nr == -1:
            log.debug("linux.seccomp: unknown syscall %s ignored", name)
            continue
        for group in groups:
            try:
                filt.add_rule(action, nr, *group)
            except OSError as e:
                raise ProfileError(f"linux.seccomp: {where}: {name}: {e.strerror}")
