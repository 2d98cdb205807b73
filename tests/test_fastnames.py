"""Names made and removed in C (native/fastpath.c): open(O_CREAT) of a new
file (create_open), mkdir and mkdirat (make_dir), link and linkat
(link_name), rename, renameat and renameat2 of what is not a directory
(rename_name), symlink and symlinkat (make_symlink), unlink, unlinkat and
rmdir (remove_name), and what reads names: readlink and readlinkat
(read_link), getcwd (get_cwd), when they need nothing of Python's, against
Python's handlers (syscalls/file.py open_rewrite, syscalls/path.py _mkdir,
_link, _rename, _symlink, _readlink, sys_getcwd and _unlink: --strace turns
the fast path off)
and against Linux: modes under umasks, O_EXCL, symlinks at the last name
(dangling ones too), trailing slashes, "." and "..", ENAMETOOLONG,
set-group-id directories, a process that setuid()s to uid 1000 (owner,
permissions, the sticky bit: Python's), a read-only mount, a hidden path,
the overlay's upper layer, a directory it must copy up first and files and
a directory of its lower layer.  And raced: threads swapping the directory
for symlinks, the path string for one naming a host directory, and the
dirfd for a read-only mount's, while others create, remove and read
links: no file ever lands outside the sandbox's writable tree or under a
hidden path, none there goes, and no link under a hidden path is read."""
import os
import re
import subprocess
import sys

import pytest

from conftest import rootfs_with, sentry_run, shown_copy
from test_unprivileged import as_nobody  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def prog(cbin, outside_tmp):
    return shown_copy(cbin, outside_tmp, "fast_names")


@pytest.fixture
def rootfs(tmp_path, busybox_root, prog):
    """A busybox rootfs with the program, a directory to hide (holding a
    file) and, beside it, a host directory to bind read-only."""
    root, ro = rootfs_with(busybox_root, tmp_path, prog)
    os.mkdir(root + "/secret")
    with open(root + "/secret/key", "w") as f:
        f.write("secret\n")
    return root, ro


_sentry = sentry_run


def _tree(path):
    """Every name under path with its type, mode, owner, size: what a
    creation would change."""
    out = {}
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            st = os.lstat(os.path.join(base, name))
            out[os.path.relpath(os.path.join(base, name), path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size)
    return out


def _native(tmp_path, prog, root=None):
    """The transcript natively, as root, in a fresh directory (in root,
    by chroot, if given)."""
    if root:
        os.mkdir(root + "/native")
        return subprocess.run(["chroot", root, "/bin/fast_names", "/native"], capture_output=True, timeout=120)
    here = tmp_path / "native"
    here.mkdir()
    os.chmod(here, 0o755)
    return subprocess.run([prog, str(here)], capture_output=True, timeout=120)


def _compare(fast, slow, native):
    out = fast.stdout.decode()
    assert fast.returncode == 0, out + fast.stderr.decode()
    assert out == slow.stdout.decode(), fast.stderr.decode()
    assert native.returncode == 0, native.stderr.decode()
    # the sandbox-only lines (RODIR, HIDDEN, LOWER) sit between markers:
    # the rest is compared with Linux line by line
    common = re.sub(r"-- sandbox only\n.*?-- end\n", "", out, flags=re.S)
    assert common == native.stdout.decode()
    return out


@pytest.mark.parametrize("where", ["tmp", "overlay"])
def test_names_default_root(prog, outside_tmp, tmp_path, where):
    """The default root: its private /tmp (a host directory), and the
    overlay's upper layer (a directory of the lower layer, copied up by
    Python on the first creation, then created in by C); a read-only bind
    and a hidden directory (Python's, both); files and a directory of the
    lower layer removed (a copy-up by Python first, then C)."""
    lower = os.path.join(outside_tmp, "lower-" + where)
    os.mkdir(lower)
    os.chmod(lower, 0o755)
    gone = os.path.join(outside_tmp, "gone-" + where)
    os.makedirs(gone + "/e")
    for name in ("a", "b"):
        with open(f"{gone}/{name}", "w") as f:
            f.write(name)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "file").write_text("ro\n")
    hidden = os.path.join(outside_tmp, "hidden-" + where)     # where the default root shows it
    os.mkdir(hidden)
    before = _tree(lower), _tree(ro), _tree(hidden), _tree(gone)
    outs = []
    for fast in (True, False):
        d = f"/tmp/co-{fast}" if where == "tmp" else f"{lower}/co-{fast}"
        outs.append(_sentry(["--mount", f"type=bind,src={ro},dst=/ro,ro", "--hide", str(hidden), "--",
                             "/bin/sh", "-c", 'mkdir "$1" && exec "$2" "$1" /ro "$3" "$4"', "sh", d, prog,
                             hidden, gone], fast=fast))
    out = _compare(*outs, _native(tmp_path, prog))
    assert (_tree(lower), _tree(ro), _tree(hidden), _tree(gone)) == before
    assert "O(p, O_WRONLY | O_CREAT, 0600) = -1 EROFS" in out
    assert "unlink(p) = -1 EROFS" in out
    assert f"{hidden}/new: type 10 mode 0640" in out
    assert f"{gone}/b: lstat ENOENT\n" in out and f"{gone}/e: lstat ENOENT\n" in out, out
    assert f"{gone}/e: type 4 mode 0705" in out and f"{hidden}/newdir: type 4 mode 0700" in out, out


def test_names_rootfs(rootfs, tmp_path):
    """A --rootfs written in place, with a read-only bind and a hidden
    directory of its own."""
    root, ro = rootfs
    before = _tree(root + "/secret"), _tree(ro)
    args = ["--rootfs", root, "--mount", f"type=bind,src={ro},dst=/ro,ro", "--hide", "/secret", "--",
            "/bin/sh", "-c", 'mkdir "$1" && exec /bin/fast_names "$1" /ro /secret -', "sh"]
    fast = _sentry(args + ["/fast"])
    slow = _sentry(args + ["/slow"], fast=False)
    _compare(fast, slow, _native(tmp_path, None, root))
    assert (_tree(root + "/secret"), _tree(ro)) == before
    assert _tree(root + "/fast") == _tree(root + "/slow")


def test_names_as_nobody(as_nobody, prog):
    """Sentry run unprivileged (the guest in a one-id user namespace, its
    new files sentry's uid's and so its own): C and Python agree."""
    outs = []
    for extra in ([], ["--strace"]):
        r = as_nobody(extra + ["--", "/bin/sh", "-c", 'mkdir "$1" && exec "$2" "$1"', "sh", "/tmp/co", prog])
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        outs.append(r.stdout.decode())
    assert outs[0] == outs[1]
    assert "f2: type 10 mode 0755 uid 0 gid 0" in outs[0], outs[0]


def _fast_paths(stderr):
    m = re.search(r"'fast_paths': (\d+)", stderr)
    assert m, stderr
    return int(m.group(1))


@pytest.mark.parametrize("where", ["/tmp", "/var/tmp"])
def test_names_are_made_and_removed_in_c(prog, where):
    """A root guest's creations and removals in a plain directory, or in a
    complete directory of the overlay's upper layer, never reach Python."""
    d = f"{where}/sentry-fastcreate-{os.getpid()}"
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", "--", "/bin/sh", "-c",
                        f'mkdir -p {d} && {prog} loop {d} 500 && rm -r {d}'], capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    calls = int(re.search(r"calls: (\d+)", out).group(1))
    assert _fast_paths(r.stderr.decode()) >= calls == 6000, out


@pytest.mark.parametrize("target", ["hidden", "ro", "lower"])
def test_names_racing_swaps(rootfs, prog, outside_tmp, target):
    """Threads create below /tmp/r/sub while others swap sub for a symlink
    to a host directory the sandbox shows (a hidden one, whose content is
    the host's; a read-only bind; on the default root, a directory of the
    read-only lower layer), flip the path string to name that directory,
    and put an fd on the read-only bind's directory (writable on the host)
    at the dirfd the creators use.  None of those host directories gains a
    name, nor loses one."""
    root, ro = rootfs
    bind = ["--mount", f"type=bind,src={ro},dst=/ro,ro"]
    if target == "lower":
        host = os.path.join(outside_tmp, "race-lower")
        os.makedirs(host, exist_ok=True)
        args = bind + ["--", prog, "race", "/tmp", host, "/ro", "2"]
        watched = [host, ro]
    else:
        host = "/secret" if target == "hidden" else "/ro"
        args = ["--rootfs", root, "--hide", "/secret"] + bind + [
            "--", "/bin/fast_names", "race", "/tmp", host, "/ro", "2"]
        watched = [root + "/secret", ro]
    for w in watched:             # what a removal gone astray would take
        # what a readlink gone astray would read: the hidden directory's link
        os.symlink("hidden-target" if target == "hidden" and w == watched[0] else "shown-target",
                   os.path.join(w, "secretlink"))
        for name in ["from-string"] + [f"by-fd{i}" for i in range(64)] + [f"f{i}" for i in range(64)] \
                + [f"ln{i}" for i in range(64)] + [f"rn{i}" for i in range(64)]:
            with open(os.path.join(w, name), "w") as f:
                f.write("keep\n")
        for i in range(64):
            os.mkdir(os.path.join(w, f"m{i}"))
            os.mkdir(os.path.join(w, f"md{i}"))
    before = [_tree(w) for w in watched]
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run"] + args, capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()[-3000:]
    assert [_tree(w) for w in watched] == before, out
    made = int(re.search(r"race: created (\d+)", out).group(1))
    assert made > 0 and _fast_paths(r.stderr.decode()) > made // 4, out
    # the read-only bind's link is the sandbox's to read, through the
    # swapped fd; the hidden directory's never
    hidden, shown = map(int, re.search(r"race: read hidden (\d+), shown (\d+)", out).groups())
    assert hidden == 0 and shown > 0, out
