"""Differential test of the path resolvers: random trees, random mount tables,
random paths, and every resolver must give the same answer.

The resolvers compared:
- the walk, sentry/vfs/resolve.py, component by component (forced by a
  context that checks search permission, which skips the shortcut);
- resolve() as handlers call it (its one-lookup shortcut where it applies,
  the native link cache's substitutions included);
- the native fast path's lookup (native/fastpath.c, sn_fast_resolve), where
  it answers rather than sending the call to Python;
- the host kernel itself, openat2(RESOLVE_IN_ROOT) on the root's host
  directory, where the table is a single plain mount (the reference model).

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
from sentry.fsimpl.overlay import OverlayMount
from sentry.platform.seccomp import configure_native
from sentry.vfs import resolve as R
from sentry.vfs.mount import Mount, MountTable
from syscalls.errors import SyscallError

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
                target = rand_path(rng, 3).strip("/") or "."
                if rng.random() < 0.5:
                    target = "/" + target
            os.symlink(target, host)


def mutate_overlay(rng, ov, n):
    """Give the overlay a history: directories completed, files copied up,
    names made and removed in the upper layer, the lower layer changed under
    it (as the host's / may change under the default root)."""
    for _ in range(n):
        p = rand_path(rng, 3)
        try:
            loc = R.resolve(ov_table(ov), "/", p, follow=False, must_exist=False, record=False)
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
        ov._dirs.clear()
        lib.sn_overlay_changed()


_tables = {}


def ov_table(ov):
    t = _tables.get(id(ov))
    if t is None:
        t = _tables[id(ov)] = MountTable()
        t.add(ov)
    return t


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
        mutate_overlay(rng, ov, rng.randint(0, 25))
        mounts.add(ov)
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


# ---- the resolvers --------------------------------------------------------------

def answer(fn):
    try:
        loc = fn()
    except SyscallError as e:
        return e.errno
    return (id(loc.mount), loc.rel, (loc.st.st_dev, loc.st.st_ino))


def native(mounts, spath, follow):
    idx = ffi.new("int *")
    rel = ffi.new("char[]", 4096)
    st = ffi.new("char[]", 144)
    r = lib.sn_fast_resolve(spath.encode(), int(follow), idx, rel, 4096, st)
    if r == 1:
        return None
    if r < 0:
        return -r
    raw = bytes(ffi.buffer(st, 144))
    dev, ino = int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[8:16], "little")
    return (id(mounts.backings()[idx[0]]), ffi.string(rel).decode(), (dev, ino))


def kernel(root_fd, spath, follow):
    """The host kernel's own resolution in a scratch tree (a single plain
    mount): the reference model."""
    how = lib.sn_openat2(root_fd, spath.encode(), os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW),
                         0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    if how < 0:
        return -how
    try:
        st = os.fstat(how)
        return (st.st_dev, st.st_ino)
    finally:
        os.close(how)


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
    lib.sn_reset_mounts()
    for ov in mounts:
        if isinstance(ov, OverlayMount):
            for dev, ino in ov.placeholders.ids:
                lib.sn_add_placeholder(dev, ino)
    configure_native(0, 0, mounts, fast_paths=False)
    starts = start_dirs(mounts, rng)
    root_fd = mounts.mounts["/"].fd if plain else None
    for i in range(PATHS):
        start = rng.choice(starts)
        path = rand_path(rng, 6)
        follow = rng.random() < 0.6
        record = rng.random() < 0.5          # fills the native link cache
        walk = answer(lambda: R.resolve(mounts, start, path, follow, record=False, ctx=Searching()))
        short = answer(lambda: R.resolve(mounts, start, path, follow, record=record))
        where = f"seed {seed} start {start!r} path {path!r} follow {follow}"
        if short != walk:
            divergences.append(f"{where}: walk {walk} shortcut {short}")
        spath = path if path.startswith("/") else (start.rstrip("/") + "/" + path)
        if path:
            fast = native(mounts, spath, follow)
            seen["native"] += fast is not None
            seen["found"] += not isinstance(walk, int)
            if fast is not None and fast != walk:
                divergences.append(f"{where}: walk {walk} native {fast}")
        if plain and path:
            ref = kernel(root_fd, spath, follow)
            seen["kernel"] += 1
            got = walk if isinstance(walk, int) else walk[2]
            if ref != got:
                divergences.append(f"{where}: walk {walk} kernel {ref}")
    lib.sn_reset_mounts()


@pytest.mark.parametrize("block", range(4))
def test_resolvers_agree(tmp_path, block):
    divergences = []
    seen = {"native": 0, "kernel": 0, "found": 0}
    for seed in range(block, SEEDS, 4):
        d = tmp_path / str(seed)
        d.mkdir()
        check_seed(seed, d, divergences, seen)
    print(seen)
    # every resolver was really asked, and paths were found as well as not
    assert min(seen.values()) > SEEDS * PATHS // 100, seen
    assert not divergences, f"{len(divergences)} divergences:\n" + "\n".join(divergences[:30])
