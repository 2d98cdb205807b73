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
