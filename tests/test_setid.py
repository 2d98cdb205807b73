"""Set-user-id and set-group-id programs, and no_new_privs, as on Linux.

The host runs every guest program as sentry's uid with no_new_privs set, so
it gives set-id programs nothing; the Sentry changes the emulated ids at the
exec stop (Credentials.exec), sets AT_SECURE in the new image's auxv so its
loader and libc run in secure mode, and keeps a no_new_privs of the guest's
own (prctl, /proc/<pid>/status, and a seccomp filter's EACCES without it).
Every case is compared with the same programs run natively in a chroot.
"""
import os
import shutil
import subprocess

import pytest

from conftest import HERE, copy_root, run_native, run_sentry

ENV = {"PATH": "/bin:/usr/bin:/usr/sbin:/sbin", "LD_LIBRARY_PATH": "/nowhere", "TMPDIR": "/var/tmp", "HOME": "/home/u"}


@pytest.fixture(scope="module")
def root(host_root, tmp_path_factory):
    r = str(tmp_path_factory.mktemp("setid") / "root")
    copy_root(host_root, r)
    src = os.path.join(HERE, "c", "setid_exec.c")
    bins = os.path.join(r, "bin")
    subprocess.run(["gcc", "-O1", "-o", f"{bins}/show", src], check=True)
    subprocess.run(["gcc", "-O1", "-static", "-o", f"{bins}/show-static", src], check=True)
    shutil.copy2(f"{bins}/show-static", f"{bins}/as")
    for name, mode, owner in (("suid", 0o4755, (0, 0)), ("suid-static", 0o4755, (0, 0)),
                              ("suid-2000", 0o4755, (2000, 2000)), ("sgid", 0o2755, (0, 50)),
                              ("sgid-noexec", 0o2705, (0, 50))):
        dst = f"{bins}/{name}"
        shutil.copy2(f"{bins}/show-static" if "static" in name else f"{bins}/show", dst)
        os.chown(dst, *owner)
        os.chmod(dst, mode)
    # a directory the user may write, holding a hard link to a set-uid program
    os.makedirs(f"{r}/home/u", exist_ok=True)
    os.chown(f"{r}/home/u", 1000, 1000)
    os.link(f"{bins}/suid", f"{r}/home/u/mine")
    # the native runs read their capabilities from /proc (the sandbox has its own)
    subprocess.run(["mount", "-t", "proc", "proc", f"{r}/proc"], check=True)
    try:
        yield r
    finally:
        subprocess.run(["umount", "-l", f"{r}/proc"])


CASES = {
    "suid by a user": ["/bin/as", "1000", "1000", "/bin/suid"],
    "suid static": ["/bin/as", "1000", "1000", "/bin/suid-static"],
    "suid to another user": ["/bin/as", "1000", "1000", "/bin/suid-2000"],
    "sgid": ["/bin/as", "1000", "1000", "/bin/sgid"],
    "sgid without group exec": ["/bin/as", "1000", "1000", "/bin/sgid-noexec"],
    "no_new_privs": ["/bin/as", "1000", "1000", "-nnp", "/bin/suid"],
    "root runs another's": ["/bin/suid-2000"],
    "plain": ["/bin/as", "1000", "1000", "/bin/show"],
}


@pytest.mark.parametrize("case", CASES)
def test_setid_exec_as_natively(root, case):
    args = CASES[case]
    native = run_native(args, root, env=ENV)
    boxed = run_sentry(args, root, env=ENV)
    assert native.returncode == 0, native.stderr
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr
    assert boxed.returncode == 0


def test_setid_exec_changes_ids_and_runs_secure(root):
    out = run_sentry(CASES["suid by a user"], root, env=ENV).stdout.decode()
    assert out.startswith("uid 1000 0 0 gid 1000 1000 1000 secure 1 nnp 0 LD_LIBRARY_PATH=- TMPDIR=- HOME=/home/u"), out
    assert "CapPrm some\nCapEff some\n" in out, out


def test_a_set_id_program_in_a_directory_the_user_writes_gives_nothing(root):
    """Sentry-specific (Linux's protected_hardlinks forbids the link): the
    loader opens a dynamic program again by path after the exec, so a file
    the user could swap in between never runs set-id."""
    out = run_sentry(["/bin/as", "1000", "1000", "/home/u/mine"], root, env=ENV)
    assert out.stdout.decode().startswith("uid 1000 1000 1000 gid 1000 1000 1000 secure 0"), out.stderr


def test_a_racing_thread_never_runs_a_set_id_program_insecure(root, cbin):
    """While one thread execs a set-uid program, another flips an unsecure
    variable's name and the envp array's pointers: every run is secure
    (its loader drops the variable) or stopped, never one with the
    program's ids and the variable."""
    racer = cbin("setid_race")
    shutil.copy2(racer, os.path.join(root, "bin", "race"))
    r = run_sentry(["/bin/as", "1000", "1000", "/bin/race", "/bin/suid", "60"], root, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.decode().splitlines() if line.startswith("uid")]
    assert len(lines) >= 30, r.stdout        # most runs go through
    for line in lines:
        assert line.startswith("uid 1000 0 0 gid 1000 1000 1000 secure 1 nnp 0 LD_LIBRARY_PATH=- "), line


NO_NEW_PRIVS = r'''
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def call(*a):
    r = libc.syscall(*a) if a[0] > 100 else libc.prctl(*a, *[0] * (5 - len(a)))
    return r if r >= 0 else -ctypes.get_errno()
def status():
    return [l.split()[1] for l in open("/proc/self/status") if l.startswith(("NoNewPrivs", "Seccomp"))]
ALLOW = (ctypes.c_uint64 * 1)(0x7fff000000000006)          # BPF_RET | BPF_K, SECCOMP_RET_ALLOW
fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", 1, ctypes.addressof(ALLOW)))
empty = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", 0, ctypes.addressof(ALLOW)))
ruleset = call(444, ctypes.create_string_buffer(struct.pack("<QQQ", 1, 0, 0)), 8, 0)   # landlock
print("start", call(39), call(21), status(), ruleset >= 0)
print("bad", call(39, 1), call(38, 0), call(38, 1, 1), call(21, 1))
pid = os.fork()
if pid == 0:
    os.setuid(1000)
    print("user filter", call(317, 1, 0, fprog), call(317, 1, 0, empty), call(317, 1, 1 << 7, fprog),
          call(317, 1, 0, 8), call(22, 2, fprog), call(446, ruleset, 0), call(446, ruleset, 9))
    print("set", call(38, 1), call(39), status())
    print("user filter", call(317, 1, 0, fprog), call(22, 2, fprog), call(21), status(), call(446, ruleset, 9))
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/sh", ["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp)' /proc/self/status"])
    os.waitpid(pid, 0)
    os._exit(0)
os.waitpid(pid, 0)
print("root filter", call(317, 1, 0, fprog), call(21), status(), call(39))
'''


def test_no_new_privs_and_own_filters_as_natively():
    """prctl's no_new_privs and seccomp options, /proc/<pid>/status, and the
    EACCES (seccomp) and EPERM (landlock) Linux gives a task that has
    neither no_new_privs nor CAP_SYS_ADMIN, kept across fork and exec."""
    native = subprocess.run(["python3", "-c", NO_NEW_PRIVS], capture_output=True)
    boxed = run_sentry(["python3", "-c", NO_NEW_PRIVS])
    assert native.returncode == 0, native.stderr
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr
    assert b"user filter -13 -22 -22 -14 -13 -1 -1\n" in native.stdout
