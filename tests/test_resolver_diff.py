"""Differential test of the path resolver: random trees, random mount tables,
random paths, and every way of resolving must give the same answer.

The walk is native/resolve.c alone; it is compared with
- a reference model written here in Python, straightforward and slow: a
  recursive walk with Linux's rules, each name looked up by the backend's
  own Python methods (the overlay's rules as overlay.py documents them);
- the native fast path (native/fastpath.c, sn_fast_resolve: the walk plus
  its rules for what it answers alone), where it answers rather than
  sending the call to Python;
- itself, driven through Python's callbacks (a mount Python serves, a
  caller whose search permission is checked at each directory);
- the host kernel, openat2(RESOLVE_IN_ROOT) on the root's host directory,
  where the table is a single plain mount (with the guest's own RESOLVE_*
  flags, which the walk applies too).

An answer is (backing, path under it, inode) or an errno.  Run with
RESOLVER_DIFF_SEEDS=N for a longer run.
"""
import errno
import os
import random
import shutil
import stat

import pytest

from sentry._native import ffi, lib
from sentry.fsimpl import hidden
from sentry.fsimpl.dev import DevMount
from sentry.fsimpl.overlay import OverlayMount, is_marked
from sentry.vfs import resolve as R
from sentry.host import openat2
from sentry.vfs.mount import Mount, MountTable
from sentry.errors import SyscallError

NAMES = ["a", "b", "c", "lnk", ".wh.a", "é"]
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
SEEDS = int(os.environ.get("RESOLVER_DIFF_SEEDS", "60"))
PATHS = int(os.environ.get("RESOLVER_DIFF_PATHS", "300"))


class Searching:
    """A caller held to its own ids who may search everywhere: the walk,
    never the shortcut."""
    checks_search = True

    def may_search(self, st):
        pass


# ---- random trees -------------------------------------------------------------

def rand_path(rng, depth=4):
    comps = [rng.choice(NAMES + ["..", ".", "", "x" * 256 if rng.random() < 0.05 else "a"])
             for _ in range(rng.randint(0, depth))]
    p = "/".join(comps)
    if rng.random() < 0.5:
        p = "/" + p
    if rng.random() < 0.15:
        p += "/"
    return p


def make_tree(rng, root, depth=3, prefix=""):
    """A random tree at host directory root: dirs, files, fifos, symlinks
    (relative, absolute, looping, dangling, through `..`)."""
    for name in rng.sample(NAMES, rng.randint(1, len(NAMES))):
        host = os.path.join(root, name)
        if os.path.lexists(host):
            continue
        kind = rng.random()
        if kind < 0.35 and depth > 0:
            os.mkdir(host)
            make_tree(rng, host, depth - 1, prefix + "/" + name)
        elif kind < 0.55:
            with open(host, "w") as f:
                f.write(name)
        elif kind < 0.6:
            os.mkfifo(host)
        else:
            r = rng.random()
            if r < 0.1:
                target = name                       # loops on itself
            elif r < 0.2:
                target = "/" + "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 3)))
            else:
                target = rand_path(rng, 3).lstrip("/") or "."
                if rng.random() < 0.5:
                    target = "/" + target
            os.symlink(target, host)


def mutate_overlay(rng, mounts, ov, n):
    """Give the overlay a history: directories completed, files copied up,
    names made and removed in the upper layer, the lower layer changed under
    it (as the host's / may change under the default root)."""
    for _ in range(n):
        p = rand_path(rng, 3)
        try:
            loc = R.resolve(mounts, "/", p, follow=False, must_exist=False, record=False)
        except SyscallError:
            continue
        op = rng.random()
        try:
            if op < 0.3 and loc.exists:
                ov.expose(loc) if loc.is_dir else ov.prepare_change(loc, "write")
            elif op < 0.5 and loc.exists:
                up = ov.prepare_change(loc, "remove")
                fd, name = up.mount.open_parent(up.rel)
                try:
                    if up.is_dir:
                        shutil.rmtree(f"/proc/self/fd/{fd}/{name}")
                    else:
                        os.unlink(name, dir_fd=fd)
                finally:
                    os.close(fd)
            elif op < 0.75 and not loc.exists and loc.rel != ".":
                up = ov.prepare_change(loc, "create")
                fd, name = up.mount.open_parent(up.rel)
                try:
                    r = rng.random()
                    if r < 0.4:
                        os.mkdir(name, dir_fd=fd)
                    elif r < 0.7:
                        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=fd))
                    else:
                        os.symlink(rand_path(rng, 3) or ".", name, dir_fd=fd)
                finally:
                    os.close(fd)
            elif op < 0.85 and loc.exists and loc.mount is ov.lower:
                host = os.path.join(ov.lower.host_root, loc.rel)
                if loc.is_dir:
                    shutil.rmtree(host)
                else:
                    os.unlink(host)
                if rng.random() < 0.5:
                    os.mkdir(host)
        except (SyscallError, OSError):
            pass
        ov._changed()


class Synthetic(Mount):
    """A mount Python serves (as /proc is): the walk asks for each name."""
    kind = "synthetic"
    stable_links = False

    def __init__(self, path, host_root):
        super().__init__(path, host_root, readonly=True)
        self.prepared = 0

    def prepare(self, rel, ctx, final=True):
        self.prepared += 1


# ---- random mount tables --------------------------------------------------------

def build(rng, tmp):
    """A random table: a plain or overlay root, maybe binds (nested, read-only,
    at a path that is not a directory of the mount below), hidden paths,
    /dev.  Returns (table, plain: the root is the only mount, a bind)."""
    mounts = MountTable()
    lower = os.path.join(tmp, "root")
    os.mkdir(lower)
    make_tree(rng, lower)
    plain = rng.random() < 0.4
    if plain:
        mounts.add(Mount("/", lower))
    else:
        ov = OverlayMount("/", lower, os.path.join(tmp, "upper"), os.path.join(tmp, "work"))
        mounts.add(ov)
        mutate_overlay(rng, mounts, ov, rng.randint(0, 25))
        if rng.random() < 0.3:            # the lower layer changed under the upper
            make_tree(random.Random(rng.random()), os.path.join(tmp, "root"), 1)
    if plain and rng.random() < 0.5:
        return mounts, True
    for i in range(rng.randint(0, 3)):
        src = os.path.join(tmp, f"bind{i}")
        os.mkdir(src)
        make_tree(rng, src, 2)
        at = "/" + "/".join(rng.choice(NAMES[:4]) for _ in range(rng.randint(1, 2)))
        if at not in mounts.mounts:
            mounts.add(Mount(at, src, readonly=rng.random() < 0.3))
    if rng.random() < 0.5:
        src = os.path.join(tmp, "synthetic")
        os.mkdir(src)
        make_tree(rng, src, 2)
        at = "/" + rng.choice(NAMES[:4] + ["proc"])
        if at not in mounts.mounts:
            mounts.add(Synthetic(at, src))
    if rng.random() < 0.2:
        mounts.add(DevMount())
    paths = {}
    for _ in range(rng.randint(0, 3)):
        try:
            loc = R.resolve(mounts, "/", rand_path(rng, 3), follow=rng.random() < 0.5, record=False)
        except SyscallError:
            continue
        if loc.spath != "/" and loc.mount.owner is mounts.mounts["/"] and loc.spath not in mounts.mounts:
            paths[loc.spath] = loc.st
    if paths:
        hidden.hide(mounts, os.path.join(tmp, "store"), {p: st for p, st in paths.items()
                                                        if not any(q != p and p.startswith(q + "/") for q in paths)})
    return mounts, False


# ---- the reference model ----------------------------------------------------------

class Model:
    """Linux's path walk, written to be read: recursive (a symlink's target
    is walked from the directory holding the link), each name looked up by
    its backend's Python methods, no shortcut and no cache."""

    def __init__(self, mounts):
        self.mounts = mounts

    def resolve(self, start, path, follow, must_exist, scope=0):
        """scope: openat2's RESOLVE_* flags, start being the dirfd's directory."""
        if not path:
            raise SyscallError(errno.ENOENT)
        if len(os.fsencode(path)) >= 4096:
            raise SyscallError(errno.ENAMETOOLONG)
        if path.startswith("/") and scope & R.RESOLVE_BENEATH:
            raise SyscallError(errno.EXDEV)
        self.links, self.scope = 0, scope
        here = [c for c in start.split("/") if c]
        self.root = here if scope & R.SCOPED else []
        # an absolute path starts in the root's mount (the kernel allows
        # that, and refuses only a later jump to another)
        first = self.root if path.startswith("/") else here
        self.base = self.locate("/" + "/".join(first))[0] if scope & R.RESOLVE_NO_XDEV else None
        return self.walk(here, path, follow, must_exist, False)[1]

    def same_mount(self, stack):
        if self.base is not None and self.locate("/" + "/".join(stack))[0] is not self.base:
            raise SyscallError(errno.EXDEV)

    def walk(self, stack, path, follow, must_exist, must_dir):
        """(directory stack, resolved) of path's last name, from stack."""
        if path.startswith("/"):
            if self.scope & R.RESOLVE_BENEATH:
                raise SyscallError(errno.EXDEV)
            stack = list(self.root)
            self.same_mount(stack)
        comps = path.split("/")
        # "x/" and "x/." name a directory, followed
        must_dir = must_dir or comps[-1] in ("", ".")
        names = [c for c in comps if c not in ("", ".")]
        if not names:
            return stack, self.at(stack)
        for k, name in enumerate(names):
            last = k == len(names) - 1
            if len(os.fsencode(name)) > 255:
                raise SyscallError(errno.ENAMETOOLONG)
            if name == "..":
                if len(stack) > len(self.root):
                    stack = stack[:-1]
                elif self.scope & R.RESOLVE_BENEATH:
                    raise SyscallError(errno.EXDEV)
                self.same_mount(stack)
                if last:
                    return stack, self.at(stack)
                continue
            cand = stack + [name]
            spath = "/" + "/".join(cand)
            self.same_mount(cand)
            mount, rel, backing, st = self.find(spath)
            if st is None:
                if last and not must_exist:
                    return stack, R.Resolved(spath, mount, rel, None)
                raise SyscallError(errno.ENOENT)
            if stat.S_ISLNK(st.st_mode) and (not last or follow or must_dir):
                if self.scope & R.RESOLVE_NO_SYMLINKS:
                    raise SyscallError(errno.ELOOP)
                self.links += 1
                if self.links > 40:
                    raise SyscallError(errno.ELOOP)
                target = backing.readlink(rel)
                if not target:
                    raise SyscallError(errno.ENOENT)
                if last:
                    return self.walk(stack, target, follow, must_exist, must_dir)
                stack, _ = self.walk(stack, target, True, True, True)
                continue
            if (not last or must_dir) and not stat.S_ISDIR(st.st_mode):
                raise SyscallError(errno.ENOTDIR)
            stack = cand
            if last:
                return stack, R.Resolved(spath, backing, rel, st)

    def at(self, stack):
        spath = "/" + "/".join(stack)
        mount, rel, backing, st = self.find(spath)
        if st is None:
            raise SyscallError(errno.ENOENT)
        return R.Resolved(spath, backing, rel, st)

    def locate(self, spath):
        cut = spath
        while cut not in self.mounts.mounts:
            cut = cut.rpartition("/")[0] or "/"
        m = self.mounts.mounts[cut]
        return m, m.rel_of(spath[len(cut):].strip("/") or ".")

    def find(self, spath):
        """(mount, rel, backing, lstat or None)"""
        mount, rel = self.locate(spath)
        try:
            if not mount.allows(rel):
                raise SyscallError(errno.ENOENT)
            if isinstance(mount, OverlayMount):
                backing, st = self.ov_find(mount, rel)
            else:
                backing, st = mount, mount.lstat(rel)
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
            return mount, rel, mount, None
        return mount, rel, backing, st

    # the overlay's rules (sentry/fsimpl/overlay.py's docstring)
    def ov_dir_layer(self, ov, drel):
        if drel == ".":
            return ov.lower if is_marked(ov.upper.fd) else ov.upper
        if self.ov_dir_layer(ov, drel.rpartition("/")[0] or ".") is ov.lower:
            return ov.lower
        st = ov.upper.lstat_direct(drel)
        if st in ov.placeholders:
            return ov.lower
        if stat.S_ISLNK(st.st_mode):
            raise SyscallError(errno.ELOOP)
        if not stat.S_ISDIR(st.st_mode):
            raise SyscallError(errno.ENOTDIR)
        fd = openat2(ov.upper.fd, drel, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return ov.lower if is_marked(fd) else ov.upper
        finally:
            os.close(fd)

    def ov_find(self, ov, rel):
        if rel == ".":
            layer = self.ov_dir_layer(ov, ".")
            return layer, os.fstat(layer.fd)
        if self.ov_dir_layer(ov, rel.rpartition("/")[0] or ".") is ov.lower:
            return ov.lower, ov.lower.lstat_direct(rel)
        fd = openat2(ov.upper.fd, rel, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if st in ov.placeholders or (stat.S_ISDIR(st.st_mode) and is_marked(fd)):
                return ov.lower, ov.lower.lstat_direct(rel)
            return ov.upper, st
        finally:
            os.close(fd)


# ---- the resolvers --------------------------------------------------------------

def answer(fn):
    try:
        loc = fn()
    except SyscallError as e:
        return e.errno
    return (id(loc.mount), loc.rel, (loc.st.st_dev, loc.st.st_ino) if loc.st else None)


def native(mounts, start, path, follow):
    idx = ffi.new("int *")
    rel = ffi.new("char[]", 4096)
    st = ffi.new("char[]", 144)
    r = lib.sn_fast_resolve(start.encode(), os.fsencode(path), int(follow), idx, rel, 4096, st)
    if r == 1:
        return None
    if r < 0:
        return -r
    raw = bytes(ffi.buffer(st, 144))
    dev, ino = int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[8:16], "little")
    return (id(mounts.entries[idx[0]]), os.fsdecode(ffi.string(rel)), (dev, ino))


def kernel(root_fd, start, path, follow, scope):
    """The host kernel's own resolution in a scratch tree (a single plain
    mount): the reference model.  The sandbox's root is the kernel's
    RESOLVE_IN_ROOT; a scoped walk's root is its start directory."""
    if scope & R.SCOPED:
        dfd = lib.sn_openat2(root_fd, os.fsencode(start.lstrip("/") or "."), os.O_PATH | os.O_CLOEXEC, 0, 0)
        assert dfd >= 0
        try:
            return kernel_at(dfd, path, follow, scope)
        finally:
            os.close(dfd)
    return kernel_at(root_fd, path if path.startswith("/") else start.rstrip("/") + "/" + path, follow,
                     scope | RESOLVE_IN_ROOT)


def kernel_at(dirfd, path, follow, resolve):
    fd = lib.sn_openat2(dirfd, os.fsencode(path), os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW),
                        0, resolve | RESOLVE_NO_MAGICLINKS)
    if fd < 0:
        return -fd
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


def start_dirs(mounts, rng):
    starts = ["/"]
    for _ in range(5):
        try:
            loc = R.resolve(mounts, "/", rand_path(rng, 2), record=False)
        except SyscallError:
            continue
        if loc.is_dir:
            starts.append(loc.spath)
    return starts


def check_seed(seed, tmp, divergences, seen):
    rng = random.Random(seed)
    mounts, plain = build(rng, str(tmp))
    model = Model(mounts)
    starts = start_dirs(mounts, rng)
    root_fd = mounts.mounts["/"].fd if plain else None
    for i in range(PATHS):
        start = rng.choice(starts)
        path = rand_path(rng, 6)
        follow = rng.random() < 0.6
        must_exist = rng.random() < 0.8
        record = rng.random() < 0.5          # fills the walk's link memo
        # the guest's openat2 RESOLVE_* flags, now and then
        scope = rng.choice([0] * 6 + [R.RESOLVE_BENEATH, R.RESOLVE_IN_ROOT, R.RESOLVE_NO_XDEV,
                                      R.RESOLVE_NO_SYMLINKS, R.RESOLVE_IN_ROOT | R.RESOLVE_NO_XDEV])
        ref = answer(lambda: model.resolve(start, path, follow, must_exist, scope))
        walk = answer(lambda: R.resolve(mounts, start, path, follow, must_exist, record=record, scope=scope))
        asking = answer(lambda: R.resolve(mounts, start, path, follow, must_exist, record=False, ctx=Searching(),
                                          scope=scope))
        where = f"seed {seed} start {start!r} path {path!r} follow {follow} must_exist {must_exist} scope {scope}"
        if walk != ref:
            divergences.append(f"{where}: model {ref} walk {walk}")
        if asking != walk:
            divergences.append(f"{where}: walk {walk} walk checking search {asking}")
        seen["found"] += not isinstance(ref, int)
        if must_exist and not scope:
            fast = native(mounts, start, path, follow)
            seen["native"] += fast is not None
            if fast is not None and fast != walk:
                divergences.append(f"{where}: walk {walk} native {fast}")
        if plain and path and must_exist:
            k = kernel(root_fd, start, path, follow, scope)
            seen["kernel"] += 1
            got = walk if isinstance(walk, int) else walk[2]
            if k != got:
                divergences.append(f"{where}: walk {walk} kernel {k}")
    for m in mounts:
        if isinstance(m, Synthetic):
            seen["python"] += m.prepared


@pytest.mark.parametrize("block", range(4))
def test_resolvers_agree(tmp_path, block):
    divergences = []
    seen = {"native": 0, "kernel": 0, "found": 0, "python": 0}
    for seed in range(block, SEEDS, 4):
        d = tmp_path / str(seed)
        d.mkdir()
        check_seed(seed, d, divergences, seen)
    print(seen)
    # every resolver was really asked, and paths were found as well as not
    assert min(seen.values()) > SEEDS * PATHS // 400, seen
    assert not divergences, f"{len(divergences)} divergences:\n" + "\n".join(divergences[:30])


class Refusing(Searching):
    """Held to its own ids, and refused search in one directory."""

    def __init__(self, refused):
        self.refused, self.asked = refused, []

    def may_search(self, st):
        self.asked.append(st.st_ino)
        if (st.st_dev, st.st_ino) == self.refused:
            raise SyscallError(errno.EACCES)


def test_search_is_checked_through_remembered_symlinks(tmp_path):
    """The walk remembers where symlinks lead, for later lookups; a guest
    that must be allowed to search each directory never skips the link's
    own directory that way."""
    root = tmp_path / "root"
    (root / "locked").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/f").write_text("f")
    os.symlink("/usr/lib", root / "locked/lib")
    mounts = MountTable()
    mounts.add(Mount("/", str(root)))
    assert R.resolve(mounts, "/", "/locked/lib/f", record=True).rel == "usr/lib/f"   # remembered
    locked = os.stat(root / "locked")
    ctx = Refusing((locked.st_dev, locked.st_ino))
    with pytest.raises(SyscallError) as e:
        R.resolve(mounts, "/", "/locked/lib/f", ctx=ctx)
    assert e.value.errno == errno.EACCES
    # and a directory allowed is asked about once per name below it
    ctx = Refusing(None)
    assert R.resolve(mounts, "/", "/usr/lib/f", ctx=ctx).rel == "usr/lib/f"
    assert len(ctx.asked) == 3
