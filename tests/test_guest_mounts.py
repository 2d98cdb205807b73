"""Mounts and mount namespaces a guest makes (issue 13; syscalls/mount.py,
sentry/fsimpl/guestmounts.py, vfs/mount.py MountTable.copy): the same
transcripts as natively under `unshare -m` (as root) and `unshare -rm` (as
a user), on the default root and on a rootfs; threads mounting while others
look under the mount point; and what the sandbox hides stays hidden."""
import os
import shutil
import subprocess

import pytest

from conftest import HERE, copy_root, run_sentry, skip_or_fail

PROBE = os.path.join(HERE, "py", "mount_probe.py")
PYTHON = "/usr/bin/python3"     # the system's: the runner's may live under /root, which the sandbox hides
AS_USER = ["setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups"]


@pytest.fixture
def work():
    """An empty directory the default root shows (outside /tmp), and a
    copy of the probe there, both readable by every user."""
    top = f"/var/tmp/sentry-guest-mounts-{os.getpid()}"
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top + "/d")
    shutil.copy(PROBE, top)
    os.chmod(top, 0o755)

    def fresh(owner=0):
        shutil.rmtree(top + "/d")
        os.mkdir(top + "/d")
        os.chown(top + "/d", owner, owner)
        return top + "/d"
    yield top, fresh
    shutil.rmtree(top, ignore_errors=True)


def _native(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("how", [[], ["unshare", "-m"], ["unshare", "-rm"]],
                         ids=["sandbox-namespace", "unshare-m", "unshare-rm"])
def test_mounts_as_natively(work, how):
    """The probe's transcript as natively in a mount namespace of its own:
    in the sandbox's own namespace (the fast path's table), and in one the
    guest made, as root of the sandbox or of a user namespace."""
    top, fresh = work
    probe = [PYTHON, os.path.join(top, "mount_probe.py")]
    native = _native((how or ["unshare", "-m"]) + probe + [fresh()])
    assert "child mounts True" in native and "EROFS" in native
    boxed = run_sentry(how + probe + [fresh()], timeout=120)
    assert boxed.stdout.decode() == native, boxed.stderr.decode()[-3000:]


def test_mounts_as_a_user_in_a_user_namespace(work):
    """`unshare -rm` as uid 1000: the namespace's root mounts there."""
    top, fresh = work
    cmd = AS_USER + ["unshare", "-rm", PYTHON, os.path.join(top, "mount_probe.py")]
    native = _native(cmd + [fresh(1000)])
    boxed = run_sentry(cmd + [fresh(1000)], timeout=120)
    assert boxed.stdout.decode() == native, boxed.stderr.decode()[-3000:]


def test_mount_takes_cap_sys_admin(work):
    """A user without it: EPERM for mount, umount2 and unshare(CLONE_NEWNS),
    after the target's lookup (ENOENT first), as on Linux."""
    top, fresh = work
    d = fresh(1000)
    code = ("import ctypes, errno, os, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def show(what, r): print(what, 'ok' if r == 0 else errno.errorcode[ctypes.get_errno()])\n"
            "d = sys.argv[1].encode()\n"
            "show('missing', libc.mount(b'x', d + b'/nope', b'tmpfs', 0, None))\n"
            "show('tmpfs', libc.mount(b'x', d, b'tmpfs', 0, None))\n"
            "show('bind', libc.mount(d, d, None, 4096, None))\n"
            "show('umount', libc.umount2(d, 0))\n"
            "show('unshare', libc.unshare(0x20000))\n")
    cmd = AS_USER + [PYTHON, "-c", code, d]
    native = _native(cmd)
    assert native == "missing ENOENT\ntmpfs EPERM\nbind EPERM\numount EPERM\nunshare EPERM\n"
    boxed = run_sentry(cmd, timeout=60)
    assert boxed.stdout.decode() == native, boxed.stderr.decode()[-3000:]


def test_mounts_on_a_rootfs(busybox_root, cbin, tmp_path):
    """The C probe on a --rootfs, against a chroot natively (as root, in a
    mount namespace of its own)."""
    transcripts = []
    for side in ("native", "sentry"):
        root = str(tmp_path / side)
        copy_root(busybox_root, root)
        shutil.copy2(cbin("mount_probe"), root + "/bin/mount_probe")
        os.mkdir(root + "/scratch")
        if side == "native":
            out = subprocess.run(["unshare", "-m", "chroot", root, "/bin/mount_probe", "/scratch"],
                                 capture_output=True, timeout=60)
        else:
            out = run_sentry(["/bin/mount_probe", "/scratch"], rootfs=root, timeout=120)
        assert out.returncode == 0, out.stderr.decode()[-3000:]
        transcripts.append(out.stdout.decode())
    assert "child holds child" in transcripts[0]
    assert transcripts[1] == transcripts[0]


@pytest.mark.parametrize("namespace", [[], ["unshare"]], ids=["sandbox-namespace", "own-namespace"])
def test_mounting_while_others_look_under_the_mount_point(work, cbin, namespace):
    """One thread mounts and unmounts a tmpfs and a bind on t (lazily or
    not) while three open, fstat, read and stat under it: every answer is
    one some moment of the table gives, natively and in the sandbox, in
    the sandbox's namespace (the C fast path's table) and in one of the
    guest's own."""
    top, fresh = work
    prog = os.path.join(top, "mount_race")
    shutil.copy2(cbin("mount_race"), prog)
    native = subprocess.run(["unshare", "-m", prog, fresh()] + namespace, capture_output=True, text=True,
                            timeout=120)
    assert native.returncode == 0 and "bad 0" in native.stdout, native.stdout + native.stderr
    boxed = run_sentry([prog, fresh()] + namespace, timeout=300)
    out = boxed.stdout.decode()
    assert boxed.returncode == 0 and "mounts 300 bad 0 last 'under'" in out, out + boxed.stderr.decode()[-3000:]
    seen = out.splitlines()[-1].split()
    assert seen[0::2] == ["under", "tmpfs", "other", "absent"]
    assert sum(int(x) for x in seen[1::2]) >= 2       # it raced: more than one state was met


def test_binds_never_show_what_the_sandbox_hides(work):
    """On the default root /etc/shadow is an empty stand-in: a bind of /etc
    (recursive or not) carries it along, the stand-in cannot be unmounted,
    nor can a tmpfs over /etc take it away when it goes."""
    top, fresh = work
    assert os.path.getsize("/etc/shadow") > 0
    d = fresh()
    script = (f"mkdir {d}/a {d}/b; mount --bind /etc {d}/a; echo bind $?; wc -c < {d}/a/shadow;"
              f" mount --rbind / {d}/b; echo rbind $?; wc -c < {d}/b/etc/shadow;"
              f" umount /etc/shadow; echo umount-stand-in $?; umount -l {d}/b/etc/shadow; echo umount-copy $?;"
              f" mount -t tmpfs x /etc; echo tmpfs $?; umount -l /etc; echo lazy $?; wc -c < /etc/shadow;"
              f" umount -l {d}/b; umount {d}/a; echo done $?; wc -c < /etc/shadow;"
              # a bind's source swapped for a symlink to /etc afterwards: the
              # bind never follows it (ELOOP), never shows /etc/shadow's content
              f" mkdir {d}/src; mount --bind {d}/src {d}/a; mv {d}/src {d}/src2; ln -s /etc {d}/src;"
              f" cat {d}/a/shadow 2>/dev/null | wc -c; umount -l {d}/a")
    for how in ([], ["unshare", "-m"], ["unshare", "-rm"]):
        boxed = run_sentry(how + ["sh", "-c", script], timeout=120)
        assert boxed.stdout.decode().split() == [
            "bind", "0", "0", "rbind", "0", "0", "umount-stand-in", "32", "umount-copy", "32",
            "tmpfs", "0", "lazy", "0", "0", "done", "0", "0", "0"], boxed.stderr.decode()[-3000:]


def test_mount_namespaces_have_their_own_proc_mounts(work):
    """/proc/<pid>/mounts and ns/mnt are the process's namespace's: a child
    that unshared sees its tmpfs, its parent neither the mount nor the
    namespace."""
    top, fresh = work
    d = fresh()
    script = (f"mkfifo {top}/go; unshare -m sh -c 'mount -t tmpfs inner {d}; grep -c \"^inner {d} tmpfs\" "
              f"/proc/self/mounts; touch {d}/x; readlink /proc/self/ns/mnt > {top}/inner.tmp;"
              f" mv {top}/inner.tmp {top}/inner; read x < {top}/go' &"
              f" while [ ! -e {top}/inner ]; do sleep 0.1; done;"
              f" grep -c \"^inner {d}\" /proc/$!/mounts; grep -c \"^inner\" /proc/self/mounts; echo > {top}/go; wait;"
              f" ls {d}; test \"$(cat {top}/inner)\" != \"$(readlink /proc/self/ns/mnt)\" && echo differ")
    boxed = run_sentry(["sh", "-c", script], timeout=60)
    assert boxed.stdout.decode().split() == ["1", "1", "0", "differ"], boxed.stderr.decode()[-3000:]


def test_mount_proc_shows_its_pid_namespace():
    """`unshare -p -f --mount-proc`: the new /proc lists the new PID
    namespace's processes, numbered there, as natively (ps's column widths
    follow pid_max, which the sandbox shows its own)."""
    script = ("unshare -p -f --mount-proc sh -c 'sleep 30 & ps -e -o pid,ppid,comm; read s < /proc/self/stat;"
              " echo ${s%% *};"
              " set -- /proc/[0-9]*; echo $#; grep -c \"[a-z] /proc proc \" /proc/mounts; kill $!'")
    native = _native(["sh", "-c", script]).split()
    assert native[:9] == ["PID", "PPID", "COMMAND", "1", "0", "sh", "2", "1", "sleep"]
    boxed = run_sentry(["sh", "-c", script], timeout=60)
    assert boxed.stdout.decode().split() == native, boxed.stderr.decode()[-3000:]


BWRAP = ("echo inside; ls /tmp | wc -l; ls /dev | tr '\\n' ' '; echo; touch /x 2>/dev/null; echo touch=$?;"
         " touch /tmp/y && echo tmp-writable; head -c 3 /dev/zero | wc -c; grep -c ' / ' /proc/self/mounts")


@pytest.mark.parametrize("how", [[], ["unshare", "-rm"], AS_USER], ids=["root", "unshare-rm", "user"])
def test_bubblewrap_as_natively(how):
    """bwrap's own mount namespace (a tmpfs, binds, pivot_root twice, a
    devpts, /dev's nodes bound one by one, read-only remounts of every
    submount it finds in mountinfo): the same as natively, as root and as
    a user (--unshare-user: two nested user namespaces, the inner one's
    maps written under the outer one's setgroups denial)."""
    if shutil.which("bwrap") is None:
        skip_or_fail("bwrap", "bubblewrap is not installed (scripts/setup installs it)")
    user = ["--unshare-user"] if how == AS_USER else []
    cmd = ["bwrap"] + user + ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                              "sh", "-c", BWRAP]
    native = _native((AS_USER if user else []) + cmd)
    assert native.startswith("inside\n0\n") and "touch=1\ntmp-writable\n3\n" in native
    boxed = run_sentry(how + cmd, timeout=120)
    assert boxed.stdout.decode() == native, boxed.stderr.decode()[-3000:]


def test_pivot_root_keeps_what_the_sandbox_hides(work):
    """After pivot_root the old root's tree, stand-ins and all, is below
    put_old: /etc/shadow there is still the empty stand-in, which cannot be
    unmounted alone; the whole old tree can, lazily, and then nothing of it
    is left."""
    top, fresh = work
    d = fresh()
    script = (f"mkdir {d}/nr; mount -t tmpfs x {d}/nr; mkdir {d}/nr/old; cd {d}/nr;"
              f" cp {shutil.which('busybox')} {d}/nr/busybox; pivot_root . old; echo pivot $?; cd /;"
              " /busybox wc -c < /old/etc/shadow; /busybox umount /old/etc/shadow; echo umount-stand-in $?;"
              " /busybox umount -l /old; echo umount-old $?; [ -e /old/etc ] && echo old-tree-left || echo 0")
    for how in (["unshare", "-m"], ["unshare", "-rm"]):
        boxed = run_sentry(how + ["sh", "-c", script], timeout=120)
        assert boxed.stdout.decode().split() == ["pivot", "0", "0", "umount-stand-in", "1", "umount-old", "0", "0"], \
            boxed.stderr.decode()[-3000:]
