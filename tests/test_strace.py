"""--strace against strace itself: the same program run natively under
`strace -f` and in sentry with --strace must show the same calls, in the same
order, with the same decoded arguments and results, but for what differs by
design: addresses, host pids, the environment's size, random bytes, and the
calls by which the sandbox's own ld.so maps a dynamic program (sentry runs it
as the program, as `ld.so PROG` would: tests/test_exec_escape.py)."""
import difflib
import os
import re
import shutil
import subprocess

import pytest

from conftest import run_sentry

BUSYBOX = shutil.which("busybox")
STRACE = shutil.which("strace")

# what strace's line says and sentry's may not: the host's pid for the
# caller's own tid, addresses (ASLR), how many variables the environment had
# (sentry's adds none, but the test runner's differs between the two runs)
_PIDS = re.compile(r"^(set_tid_address|getpid|gettid|getppid)\((.*)\) = \d+$")
_ADDR = re.compile(r"0x[0-9a-f]+")
_VARS = re.compile(r"/\* \d+ vars? \*/")
_RANDOM = re.compile(r'^getrandom\("[^"]*"')
# the lines an ld.so loading a program itself adds, after execve
_LOADER_CALLS = {"openat", "read", "pread64", "newfstatat", "mmap", "close", "brk", "mprotect"}


def _normal(line):
    line = re.sub(r"\s+= ", " = ", line)
    line = _PIDS.sub(r"\1(\2) = PID", line)
    line = _RANDOM.sub('getrandom("RANDOM"', line)
    return _VARS.sub("/* vars */", _ADDR.sub("0x?", line))


def _native(argv, cwd, out):
    if STRACE is None:
        pytest.fail("strace is not installed (scripts/setup installs it)", pytrace=False)
    subprocess.run([STRACE, "-f", "-qq", "-o", out, "--"] + argv, cwd=cwd, check=True,
                   capture_output=True, timeout=120)
    lines = []
    for line in open(out).read().splitlines():
        m = re.match(r"^\d+\s+(\w+\(.*)$", line)
        assert m or "+++" in line or "---" in line, line     # a call, an exit or a signal
        if m:
            lines.append(m.group(1))
    return lines


def _sentry(argv, cwd, log):
    r = run_sentry(argv, extra=["--cwd", cwd, "--strace", "--log", log])
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    lines = []
    for line in open(log).read().splitlines():
        m = re.match(r"^sentry: \[pid +\d+\] (\w+\(.*) \((emulated|rewritten|passed|denied)\)$", line)
        if m:
            lines.append(m.group(1))
    return lines, r


def _compare(argv, cwd, tmp_path, loader=None):
    """Returns (native lines, sentry lines) once both are normalized and
    sentry's ld.so block (a dynamic program, loader=its path) is set aside."""
    native = [_normal(x) for x in _native(argv, cwd, str(tmp_path / "native.txt"))]
    boxed, _ = _sentry(argv, cwd, str(tmp_path / "sentry.log"))
    boxed = [_normal(x) for x in boxed]
    if loader is not None:
        # sentry's ld.so opens and maps the program, right after the exec; the
        # kernel did that natively, before the first call strace sees
        start = boxed.index(f'openat(AT_FDCWD, "{loader}", O_RDONLY|O_CLOEXEC) = 3')
        end = boxed.index("close(3) = 0", start)
        block = boxed[start:end + 1]
        assert {x.split("(")[0] for x in block} <= _LOADER_CALLS, block
        assert start <= 3, boxed[:start]
        boxed = boxed[:start] + boxed[end + 1:]
    return native, boxed


# calls whose line sentry shows otherwise, and why (only the name is compared)
LOOSE = {
    "prctl": "its arguments' meaning depends on the option: sentry shows them raw",
    "fcntl": "as prctl, per command; strace also decodes F_GETFD's result",
    "futex": "as prctl, per operation",
    "sysinfo": "struct sysinfo is not decoded",
}


def _assert_same(native, boxed, loose=LOOSE):
    """Same calls in the same order; the same line but for calls in `loose`."""
    names_n = [x.split("(")[0] for x in native]
    names_b = [x.split("(")[0] for x in boxed]
    assert names_b == names_n, "\n".join(difflib.unified_diff(names_n, names_b, lineterm=""))
    differ = [(n, b) for n, b in zip(native, boxed) if n != b and n.split("(")[0] not in loose]
    assert differ == [], "\n".join(f"strace: {n}\nsentry: {b}" for n, b in differ)
    return len(native)


@pytest.fixture
def workdir(outside_tmp, tmp_path):
    d = os.path.join(outside_tmp, tmp_path.name)
    os.makedirs(os.path.join(d, "dir"))
    with open(os.path.join(d, "file.txt"), "w") as f:
        f.write("line one\nline two \x01\t\"quoted\" and a long tail to cut at 32 bytes\n")
    for name in ("a", "b", "c"):
        open(os.path.join(d, "dir", name), "w").close()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_busybox_cat(workdir, tmp_path):
    native, boxed = _compare([BUSYBOX, "cat", "file.txt"], workdir, tmp_path)
    n = _assert_same(native, boxed)
    assert n > 15
    assert 'openat(AT_FDCWD, "file.txt", O_RDONLY) = 3' in boxed
    assert 'readlink("/proc/self/exe", "/usr/bin/busybox", 4096) = 16' in boxed


def test_busybox_ls(workdir, tmp_path):
    native, boxed = _compare([BUSYBOX, "ls", "-l", "dir"], workdir, tmp_path)
    # getdents64's size is the directory's on its file system: the same
    # directory here, so it must match too
    _assert_same(native, boxed)
    assert any(x.startswith('newfstatat(AT_FDCWD, "dir/a", {st_mode=S_IFREG|0644, st_size=0, ...}')
               for x in boxed), boxed


def test_static_c_program(workdir, tmp_path, cbin):
    prog = os.path.join(workdir, "demo")
    shutil.copy2(cbin("strace_demo"), prog)
    native, boxed = _compare(["./demo"], workdir, tmp_path)
    _assert_same(native, boxed)
    # each structure decoded, as strace decodes it
    for want in (
            'openat(AT_FDCWD, "demo.txt", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0640) = 3',
            'writev(3, [{iov_base="hello ", iov_len=6}, {iov_base="world\\n\\t\\"\\\\\\1\\0", iov_len=11}], 2) = 17',
            'newfstatat(3, "", {st_mode=S_IFREG|0640, st_size=17, ...}, AT_EMPTY_PATH) = 0',
            'newfstatat(AT_FDCWD, "/no/such/file", 0x?, AT_SYMLINK_NOFOLLOW) = -1 ENOENT (No such file or directory)',
            'openat2(AT_FDCWD, "demo.d", {flags=O_RDONLY|O_DIRECTORY, resolve=RESOLVE_BENEATH}, 24) = 3',
            "rt_sigaction(SIGUSR1, {sa_handler=0x?, sa_mask=[TERM], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x?}, NULL, 8) = 0",
            'connect(3, {sa_family=AF_UNIX, sun_path="no-such.sock"}, 110) = -1 ENOENT (No such file or directory)',
            'sendto(3, "ping", 4, 0, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")}, 16) = 4',
            "clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=1000}, NULL) = 0"):
        assert want in native, want       # the expectation is strace's own
        assert want in boxed, want


def test_python(workdir, tmp_path):
    python = os.path.realpath("/usr/bin/python3")
    code = "import os; print(open('file.txt').read()); os.stat('dir')"
    native, boxed = _compare([python, "-c", code], workdir, tmp_path, loader=python)
    _assert_same(native, boxed)
    assert 'openat(AT_FDCWD, "file.txt", O_RDONLY|O_CLOEXEC) = 3' in boxed
    # escapes, and the cut at 32 bytes (strace -s 32), as strace shows them
    read = 'read(3, "line one\\nline two \\1\\t\\"quoted\\" and"..., '
    assert any(x.startswith(read) for x in native), native
    assert any(x.startswith(read) for x in boxed), boxed


def test_string_escapes_are_straces(tmp_path):
    """Every byte value, escaped as strace escapes it (its own output is
    the expectation)."""
    from sentry.strace import format as fmt
    out = str(tmp_path / "native.txt")
    data = bytes(range(256)) + b"0\x001"            # an octal escape before a digit
    subprocess.run([STRACE, "-e", "trace=write", "-s", "1024", "-o", out, "--",
                    os.path.realpath("/usr/bin/python3"), "-c",
                    f"import os; os.write(1, {data!r})"], stdout=subprocess.DEVNULL, check=True)
    line = [x for x in open(out).read().splitlines() if x.startswith("write(1, ")][0]
    assert line == f"write(1, {fmt.quote(data, 1024)}, {len(data)}) = {len(data)}"
    assert fmt.quote(b"abcdef", 4) == '"abcd"...'


def test_classes_select_as_strace_trace_does():
    from syscalls import signature
    from syscalls.table import build_table
    entries = list(build_table().entries.values())

    def sel(spec):
        return signature.select(spec, entries)
    assert {"open", "openat", "stat", "newfstatat", "execve", "unlink", "readlink"} <= sel("%file")
    assert not {"read", "close", "mmap", "getpid"} & sel("%file")
    assert {"read", "write", "close", "fstat", "openat", "dup2"} <= sel("%desc")
    assert {"socket", "connect", "bind", "sendto", "recvmsg", "listen"} <= sel("%network")
    assert not {"read", "openat"} & sel("%network")
    assert {"clone", "fork", "vfork", "execve", "exit_group", "wait4"} <= sel("%process")
    assert {"rt_sigaction", "rt_sigprocmask", "kill", "sigaltstack"} <= sel("%signal")
    assert {"mmap", "munmap", "mprotect", "brk", "madvise"} <= sel("%memory")
    assert {"setuid", "getuid", "setresgid", "capset", "setgroups"} <= sel("%creds")
    assert sel("open,stat,%file") == sel("%file")
    assert sel("read,write") == {"read", "write"}
    assert sel("!read") == sel("all") - {"read"}
    assert sel("/^getres") == {"getresuid", "getresgid"}
    for bad in ("%bogus", "nosuchcall"):
        with pytest.raises(ValueError):
            sel(bad)


def test_filter_and_times(workdir, tmp_path):
    """--strace=%file shows only file calls; --strace-time=tt,T puts the time
    of day before each line and the time spent in the call after it."""
    from syscalls import signature
    from syscalls.table import build_table
    log = str(tmp_path / "sentry.log")
    r = run_sentry([BUSYBOX, "cat", "file.txt"],
                   extra=["--cwd", workdir, "--strace=%file,close", "--strace-time=tt,T", "--log", log])
    assert r.returncode == 0, r.stderr
    lines = [x for x in open(log).read().splitlines() if "] " in x]
    shown = set()
    for line in lines:
        m = re.match(r"^sentry: \[pid +1\] \d\d:\d\d:\d\d\.\d{6} (\w+)\(.*\) = .* <\d+\.\d{6}> "
                     r"\((emulated|rewritten|passed|denied)\)$", line)
        assert m, line
        shown.add(m.group(1))
    assert shown == {"execve", "readlink", "openat", "close"}
    assert shown <= signature.select("%file,close", build_table().entries.values())


def test_bad_strace_options_are_refused():
    for opt in ("--strace=%bogus", "--strace=nosuchcall", "--strace-time=x"):
        r = run_sentry(["/bin/true"], extra=[opt])
        assert r.returncode == 125 and len(r.stderr.splitlines()) == 1, (opt, r.stderr)


def test_strace_before_the_command_is_not_a_list(workdir):
    """`--strace CMD` without `--`: CMD runs, traced in full."""
    import sys
    r = subprocess.run([sys.executable, "-m", "sentry", "run", "--cwd", workdir, "--strace",
                        BUSYBOX, "cat", "file.txt"], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(b"line one"), r.stderr
    assert b'openat(AT_FDCWD, "file.txt", O_RDONLY) = 3 (rewritten)' in r.stderr
