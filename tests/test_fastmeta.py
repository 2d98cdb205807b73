"""The attribute calls that native/fastpath.c answers in C -- fchmod,
fchown and futimens (utimensat(fd, NULL, times, 0)) on an fd, chmod,
fchmodat, chown, lchown, fchownat and utimensat on a path -- against
Python's handlers (syscalls/fdutil.py, syscalls/path.py: --strace turns the
fast path off) and against Linux, on the default root and a --rootfs, for a
root guest (C answers) and a guest of another uid (C declines, Python checks
its ids); and raced: a thread swapping a host file and a sandbox file at the
fd number the calls name, and another swapping the path they name between a
sandbox file and a symlink to a host file the sandbox shows read-only, never
get a host file changed."""
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import rootfs_with, sentry_run, shown_copy
from test_unprivileged import as_nobody  # noqa: F401 (fixture)

WHO = {"root": [], "uid1000": ["--uid", "1000"]}


@pytest.fixture(scope="module")
def prog(cbin, outside_tmp):
    return shown_copy(cbin, outside_tmp, "fd_attrs")


@pytest.fixture
def rootfs(tmp_path, busybox_root, prog):
    return rootfs_with(busybox_root, tmp_path, prog)


_sentry = sentry_run


def _native(argv, who, root=None):
    """argv run natively as `who` (uid 1000 with gid 0, as sentry's --uid
    leaves the gid), in root (chroot) if given."""
    pre = []
    if root:
        pre = ["chroot"] + (["--userspec=1000:0"] if who == "uid1000" else []) + [root]
    elif who == "uid1000":
        pre = ["setpriv", "--reuid=1000", "--regid=0", "--clear-groups"]
    return subprocess.run(pre + argv, capture_output=True, timeout=120)


@pytest.fixture
def lower_file(outside_tmp, request):
    """A host file the default root shows through its read-only lower layer
    (never a file of the host's own: a wrong answer must cost only this)."""
    path = os.path.join(outside_tmp, "lower-" + re.sub(r"\W", "_", request.node.name))
    with open(path, "w") as f:
        f.write("lower\n")
    os.chmod(path, 0o644)
    os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return path


@pytest.mark.parametrize("who", sorted(WHO))
def test_fd_attrs_default_root(prog, outside_tmp, lower_file, who):
    """Fast path, Python and Linux agree, call by call; the sandbox-only
    cases (a pipe, a hidden fd number, /dev/null, a file of the read-only
    lower layer) agree between the fast path and Python, and the lower
    file is as it was."""
    ids = WHO[who]
    before = _snapshot(lower_file)
    fast = _sentry(ids + ["--", prog, "/tmp", lower_file])
    slow = _sentry(ids + ["--", prog, "/tmp", lower_file], fast=False)
    assert _snapshot(lower_file) == before
    assert fast.returncode == 0, fast.stdout.decode() + fast.stderr.decode()
    assert fast.stdout.decode() == slow.stdout.decode(), fast.stderr.decode()
    assert "fchmod(l, 0600) = -1 EROFS" in fast.stdout.decode()
    assert "fchmod(pipefd[0], 0600) = -1 EPERM" in fast.stdout.decode()
    here = os.path.join(outside_tmp, "native-" + who)     # searchable by uid 1000
    os.mkdir(here)
    if who == "uid1000":
        os.chown(here, 1000, 0)
    native = _native([prog, here], who)
    assert native.returncode == 0, native.stderr.decode()
    boxed = _sentry(ids + ["--", prog, "/tmp"])
    assert boxed.stdout.decode() == native.stdout.decode()


@pytest.mark.parametrize("who", sorted(WHO))
def test_fd_attrs_rootfs(rootfs, who):
    """The same on a --rootfs written in place, with a read-only bind."""
    root, ro = rootfs
    ids = WHO[who] + ["--rootfs", root, "--mount", f"type=bind,src={ro},dst=/ro,ro"]
    fast = _sentry(ids + ["--", "/bin/fd_attrs", "/tmp", "/ro/file"])
    slow = _sentry(ids + ["--", "/bin/fd_attrs", "/tmp", "/ro/file"], fast=False)
    assert fast.returncode == 0, fast.stdout.decode() + fast.stderr.decode()
    assert fast.stdout.decode() == slow.stdout.decode(), fast.stderr.decode()
    assert "fchmod(l, 0600) = -1 EROFS" in fast.stdout.decode()
    os.mkdir(root + "/native")
    if who == "uid1000":
        os.chown(root + "/native", 1000, 0)
    native = _native(["/bin/fd_attrs", "/native"], who, root)
    assert native.returncode == 0, native.stderr.decode()
    boxed = _sentry(ids + ["--", "/bin/fd_attrs", "/tmp"])
    assert boxed.stdout.decode() == native.stdout.decode()


def test_fd_attrs_as_nobody(as_nobody, prog, lower_file):
    """Sentry run unprivileged (the guest in a one-id user namespace): the
    ids fchown gives pass through the map (native/idmap.c), and an id the
    namespace does not map is EINVAL, from the fast path as from Python."""
    outs = []
    before = _snapshot(lower_file)
    for extra in ([], ["--strace"]):
        r = as_nobody(extra + ["--", prog, "/tmp", lower_file])
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        outs.append(r.stdout.decode())
    assert _snapshot(lower_file) == before
    assert outs[0] == outs[1]
    assert "fchown(f, 4242, -1) = -1 EINVAL" in outs[0], outs[0]
    assert "fchown(f, uid, gid) = 0" in outs[0], outs[0]


def _fast_paths(stderr):
    m = re.search(r"'fast_paths': (\d+)", stderr)
    assert m, stderr
    return int(m.group(1))


def test_fd_attrs_are_answered_in_c(prog):
    """A root guest's calls on its own file never reach Python: the stops C
    answered are at least the calls made (tens of thousands in 2 s)."""
    r = subprocess.run([sys.executable, "-m", "sentry", "--debug", "run", "--", prog, "race", "/tmp", "0"],
                       capture_output=True, timeout=120)
    out = r.stdout.decode()
    calls = int(re.search(r"calls: (\d+)", out).group(1))
    assert _fast_paths(r.stderr.decode()) >= calls > 0, out


def _snapshot(path):
    """Its attributes (not read: a read would move its atime)."""
    st = os.stat(path)
    return st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns, st.st_size


def _unchanged(path):
    """Its attributes and content, but its atime: a copy-up of a lower
    file (chmod through a symlink to it, Python's) reads it."""
    st = os.stat(path)
    with open(path, "rb") as f:
        return st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_ctime_ns, f.read()


@pytest.mark.parametrize("root_kind", ["default", "rootfs"])
@pytest.mark.parametrize("who", sorted(WHO))
def test_fd_attrs_racing_an_fd_swap(rootfs, prog, tmp_path, outside_tmp, root_kind, who):
    """Two threads swap a host file (stdin; outside the --rootfs, or a file
    of the default root's read-only lower layer) and a sandbox file at one
    fd number while fchmod, fchown and futimens run on that number, and one
    swaps a path between a sandbox file and a symlink to a host file shown
    read-only (a read-only bind's, or the lower layer's) while chmod, chown,
    lchown and utimensat run on that path: the host files never change, the
    sandbox file does (for root)."""
    root, ro = rootfs
    host = str(tmp_path / "host.txt")
    with open(host, "w") as f:
        f.write("host data\n")
    os.chmod(host, 0o644)
    os.utime(host, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    if root_kind == "default":
        shown = os.path.join(outside_tmp, f"shown-{who}")     # the lower layer's
        with open(shown, "w") as f:
            f.write("lower\n")
        os.chmod(shown, 0o644)
        args = WHO[who] + ["--", prog, "race", "/tmp", "2", shown]
    else:
        shown = ro + "/file"
        args = WHO[who] + ["--rootfs", root, "--mount", f"type=bind,src={ro},dst=/ro,ro",
                           "--", "/bin/fd_attrs", "race", "/tmp", "2", "/ro/file"]
    os.utime(shown, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    before = _snapshot(host), _unchanged(shown)
    with open(host, "rb") as f:
        r = _sentry(args, stdin=f)
    out = r.stdout.decode() + r.stderr.decode()
    assert (_snapshot(host), _unchanged(shown)) == before, out
    assert "refused some" in out, out
    if who == "root":
        assert "race: ok some" in out, out
    if root_kind == "rootfs":
        raced = os.stat(root + "/tmp/fa_raced")
        if who == "root":
            assert stat.S_IMODE(raced.st_mode) == 0o777 and raced.st_uid == 4242, out


def test_idmap_host_rule_matches_python():
    """native/idmap.c's sn_idmap_host is IdMap.host_ids's rule (in a child:
    the map, once set, is the process's)."""
    code = r"""
from sentry._native import lib
from sentry.kernel.idmap import IdMap, UNCHANGED
from sentry.errors import SyscallError
cases = [0, 1, 7, 1000, 65534, UNCHANGED, 0xFFFFFFFE]
def py(m, kind, v):
    try:
        h = m.host_ids(v, UNCHANGED)[0] if kind == 0 else m.host_ids(UNCHANGED, v)[1]
    except SyscallError as e:
        return -e.errno
    return 0xFFFFFFFF if h == -1 else h
def c(kind, v):
    return lib.sn_idmap_host(kind, v)
for kind in (0, 1):
    for v in cases:
        assert py(IdMap(), kind, v) == c(kind, v), (kind, v)
lib.sn_set_idmap(0, 1000, 7, 1001)
m = IdMap((0, 1000), (7, 1001))
for kind in (0, 1):
    for v in cases:
        assert py(m, kind, v) == c(kind, v), (kind, v, py(m, kind, v), c(kind, v))
print("ok")
"""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=here, timeout=60)
    assert r.stdout.decode().strip() == "ok", r.stderr.decode()
