"""Owners of what a guest creates: a guest whose emulated ids are not root's
gets new files, directories, fifos, sockets and symlinks of its own fsuid and
fsgid (the directory's group in a set-group-id directory, where a new
directory inherits S_ISGID), as a real uid 1000 does natively
(syscalls/owner.py).  Differential: one script, run natively as uid 1000 and
in the sandbox (setpriv inside, or --uid/--gid), the same `stat` lines."""
import os
import shutil
import subprocess

import pytest

from conftest import copy_root, run_native, run_sentry

SETPRIV = ["--reuid", "1000", "--regid", "1000", "--clear-groups"]

SCRIPT = r"""
cd {w} || exit 9
umask 022
echo a > f
mkdir d
mkfifo p
ln -s f l
{make} sock s
{make} tmpfile . t 640
umask 000
echo a > g && echo b >> g && cat g
umask 022
cd sg
echo x > f2
mkdir d2
mkdir d2/d3
mkfifo p2
ln -s f2 l2
{make} sock s2
{make} tmpfile . t2 640
{make} tmpfile . t3 2750
cd ..
find . -mindepth 1 | sort | while read n; do stat -c '%A %u %g %n' "$n"; done
"""


def _scratch(base):
    """base/w, 1000's (0777: the guest's host process reaches it as other),
    with w/sg set-group-id of group 2000, which 1000 is not in."""
    w = os.path.join(base, "w")
    if os.path.exists(w):
        shutil.rmtree(w)
    os.makedirs(os.path.join(w, "sg"))
    os.chown(w, 1000, 1000)
    os.chmod(w, 0o777)
    os.chown(os.path.join(w, "sg"), 1000, 2000)
    os.chmod(os.path.join(w, "sg"), 0o2777)
    return w


def _out(r):
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


@pytest.fixture(scope="module")
def host_scratch(outside_tmp, cbin):
    base = os.path.join(outside_tmp, "owner")
    os.makedirs(base, exist_ok=True)
    for d in (outside_tmp, base):
        os.chmod(d, 0o755)           # searchable by 1000 (mkdtemp's is 0700)
    make = os.path.join(base, "owner_make")
    shutil.copy(cbin("owner_make"), make)
    os.chmod(make, 0o755)
    return base, make


def test_owners_default_root(host_scratch):
    base, make = host_scratch
    script = SCRIPT.format(w=os.path.join(base, "w"), make=make)
    _scratch(base)
    native = _out(run_native(["setpriv", *SETPRIV, "sh", "-c", script]))
    assert " 1000 2000 ./sg/d2\n" in native and "drwxr-sr-x 1000 2000 ./sg/d2/d3" in native
    _scratch(base)
    assert _out(run_sentry(["setpriv", *SETPRIV, "sh", "-c", script])) == native
    _scratch(base)
    assert _out(run_sentry(["sh", "-c", script], extra=["--uid", "1000", "--gid", "1000"])) == native


def test_owners_rootfs(busybox_root, cbin, tmp_path):
    """busybox's setpriv changes no uid: natively chroot --userspec, in the
    sandbox --uid/--gid."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    shutil.copy(cbin("owner_make"), os.path.join(root, "bin/owner_make"))
    script = SCRIPT.format(w="/w", make="/bin/owner_make")
    _scratch(root)
    proc = os.path.join(root, "proc")
    subprocess.run(["mount", "-t", "proc", "proc", proc], check=True)    # linkat of /proc/self/fd/N
    try:
        native = _out(run_native(["chroot", "--userspec=1000:1000", "--groups=", root, "/bin/sh", "-c", script]))
    finally:
        subprocess.run(["umount", "-l", proc], check=True)
    assert "drwxr-sr-x 1000 2000 ./sg/d2/d3" in native
    _scratch(root)
    assert _out(run_sentry(["/bin/sh", "-c", script], root, extra=["--uid", "1000", "--gid", "1000"])) == native


def test_root_guest_keeps_root_owner():
    """The common case costs nothing and changes nothing: root's files are root's."""
    out = _out(run_sentry(["sh", "-c", "cd /tmp && echo a > f && mkdir d && stat -c '%u %g %n' f d"]))
    assert out == "0 0 f\n0 0 d\n"


def test_group_only_change():
    """A root guest with another fsgid: the group alone is given (the C fast
    path leaves its O_CREAT opens to Python)."""
    out = _out(run_sentry(["setpriv", "--regid", "1000", "--clear-groups", "sh", "-c",
                           "cd /tmp && echo a > f && echo b >> f && mkdir d && stat -c '%u %g %n' f d"]))
    assert out == "0 1000 f\n0 1000 d\n"


def test_append_after_create_umask_022():
    """The guest's host process (sentry's uid, no capability) is 'other' on
    a file its emulated uid owns: the Sentry opens it and hands it over."""
    out = run_sentry(["sh", "-c", "cd /tmp && echo a > f && echo b >> f && cat f"],
                     extra=["--uid", "1000", "--gid", "1000"])
    assert out.stdout == b"a\nb\n"


def test_race_never_gives_away_a_root_file(cbin, outside_tmp):
    """A thread dup2()s root-owned files (one named, one O_TMPFILE) over the
    fd numbers O_CREAT opens return, before their exit stop; then a thread
    that stayed root keeps making a name that a uid 1000 thread opens
    O_CREAT, the Sentry having seen no file there: the Sentry adopts only a
    file the call itself made, never those."""
    d = os.path.join(outside_tmp, "owner-race")
    os.makedirs(d, exist_ok=True)
    prog = os.path.join(d, "owner_race")
    shutil.copy(cbin("owner_race"), prog)
    r = run_sentry(["sh", "-c", f"mkdir /tmp/w && {prog} /tmp/w 900"], timeout=300)
    out = r.stdout.decode()
    assert "CHOWNED" not in out, out
    assert out.splitlines()[-2:] == ["victims kept", "names kept"], (out, r.stderr.decode())
    mine = int(out.split("new files: ")[1].split()[0])
    assert mine > 0, out     # the race does not stop every adoption
