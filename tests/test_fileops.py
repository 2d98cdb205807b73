"""Differential file-system workload (tests/c/fileops.c) on each backend:
a --rootfs written in place, the default root's private /tmp, /dev/shm, and
copy-on-write overlays (--rootfs --overlay, the default root) whose lower
layer holds entries made before the workload (make_pre) and stays unchanged."""
import hashlib
import os
import shutil
import stat
import tempfile

import pytest

from conftest import copy_root, install, run_native, run_sentry


@pytest.fixture(scope="module")
def fileops(cbin):
    return cbin("fileops")


def make_pre(top):
    """top/pre: what the workload's second part finds already there."""
    pre = os.path.join(top, "pre")
    for d in ("dir/sub", "mv/sub", "gone/a/b", "many", "dir2", "dir3", "empty", "abs/sub", "abs2/deep"):
        os.makedirs(os.path.join(pre, d))

    def put(rel, data, mode=0o644):
        path = os.path.join(pre, rel)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
    put("file", b"lower\n" * 10)
    put("dir/a", b"a" * 100)
    put("dir/b", b"bbbb")
    put("dir/sub/c", b"c\n")
    put("mv/sub/x", b"moved with its directory\n")
    put("gone/a/b/f", b"f")
    put("gone/g", b"g")
    put("dir2/x", b"x")
    put("dir3/keep", b"k")
    for name in ("abs/f1", "abs/f2", "abs/sub/f3", "abs2/deep/f4"):
        put(name, name.encode())
    os.symlink("f1", os.path.join(pre, "abs/lnk"))
    put("ro", b"read-only\n", 0o444)
    put("suid", b"#!/bin/sh\n", 0o4755)
    put("xattr", b"")
    os.setxattr(os.path.join(pre, "xattr"), "user.k", b"v")
    for i in range(200):
        put(f"many/{i:03d}", b"")
    block = hashlib.sha256(b"big").digest() * 2048                  # 64 KiB
    put("big", block * 96)                                            # 6 MiB
    with open(os.path.join(pre, "sparse"), "wb") as f:
        f.truncate(1 << 20)
        f.seek(1 << 19)
        f.write(b"data")
    os.symlink("file", os.path.join(pre, "link"))


def tree_digest(root):
    """Names, types, modes, owners, sizes, mtimes, link targets, contents and
    xattrs of every entry under root (atimes aside: reading changes them)."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)} {st.st_mode:o} {st.st_uid}:{st.st_gid} "
                     f"{st.st_size} {st.st_mtime_ns} {st.st_nlink}\n".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    h.update(f.read())
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                for x in sorted(os.listxattr(path)):
                    h.update(x.encode() + os.getxattr(path, x))
    return h.hexdigest()


def _native_transcript(tmp_path, fileops, pre=False):
    scratch = tmp_path / ("native-pre" if pre else "native")
    scratch.mkdir()
    if pre:
        make_pre(str(scratch))
    r = run_native([fileops, str(scratch)])
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_fileops_rootfs_in_place(tmp_path, busybox_root, fileops):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    install(fileops, root)
    os.mkdir(os.path.join(root, "scratch"))
    boxed = run_sentry(["/bin/fileops", "/scratch"], root)
    assert boxed.returncode == 0, boxed.stderr
    assert boxed.stdout.decode() == _native_transcript(tmp_path, fileops)
    # the changes are really in the rootfs, where the guest put them
    assert os.path.islink(os.path.join(root, "scratch/d/sym"))
    assert len(os.listdir(os.path.join(root, "scratch/d/many"))) == 300


def test_fileops_rootfs_overlay(tmp_path, busybox_root, fileops):
    """--rootfs DIR --overlay: the workload sees a writable tree, DIR stays
    as it was, byte for byte."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    install(fileops, root)
    os.mkdir(os.path.join(root, "scratch"))
    make_pre(os.path.join(root, "scratch"))
    before = tree_digest(root)
    boxed = run_sentry(["/bin/fileops", "/scratch"], root, extra=["--overlay"])
    assert boxed.returncode == 0, boxed.stderr
    native = _native_transcript(tmp_path, fileops, pre=True)
    assert "-- pre-existing entries" in native
    assert boxed.stdout.decode() == native
    assert tree_digest(root) == before


def test_fileops_default_root_overlay(tmp_path, fileops, outside_tmp):
    """The default root: the host's / is the lower layer."""
    exe = shutil.copy(fileops, outside_tmp)
    scratch = os.path.join(outside_tmp, "scratch")
    os.mkdir(scratch)
    make_pre(scratch)
    before = tree_digest(outside_tmp)
    boxed = run_sentry([exe, scratch])
    assert boxed.returncode == 0, boxed.stderr
    assert boxed.stdout.decode() == _native_transcript(tmp_path, fileops, pre=True)
    assert tree_digest(outside_tmp) == before


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
def test_fileops_default_root(tmp_path, fileops, where, outside_tmp):
    exe = shutil.copy(fileops, outside_tmp)
    boxed = run_sentry(["/bin/sh", "-c", f"mkdir {where}/s && exec {exe} {where}/s"])
    assert boxed.returncode == 0, boxed.stderr
    assert boxed.stdout.decode() == _native_transcript(tmp_path, fileops)


def test_device_nodes_are_never_made_on_the_host(tmp_path, busybox_root):
    """The sandbox's root may make device nodes (tests/test_devnodes.py),
    but what lands in the host directory is a plain file: no host device
    becomes reachable through it, from inside or outside."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    r = run_sentry(["/bin/sh", "-c", "mknod /tmp/d c 1 1 && mknod /tmp/b b 254 0 && mknod /tmp/p p && "
                    "ls -l /tmp/d /tmp/b | cut -c1; cat /tmp/d"], root)
    assert r.stdout == b"b\nc\n" and b"Operation not permitted" in r.stderr, r.stderr
    for name in ("d", "b"):
        st = os.lstat(os.path.join(root, "tmp", name))
        assert stat.S_ISREG(st.st_mode) and st.st_size == 0


def test_symlinks_followed_natively_track_changes(tmp_path, busybox_root):
    """The native fast path follows symlinks the Sentry resolved before; a
    guest that replaces or moves them sees the new target at once."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    script = """
cd /tmp && mkdir a b && echo in-a > a/f && echo in-b > b/f && ln -s a l && ln -s a/f lf
cat /tmp/l/f /tmp/lf; cat /tmp/l/f /tmp/lf
rm l lf && ln -s b l && ln -s b/f lf; cat /tmp/l/f /tmp/lf
mv b c && mkdir b && echo new-b > b/f; cat /tmp/l/f /tmp/lf
rm l && mkdir l && echo real > l/f; cat /tmp/l/f
"""
    native = run_native(["/bin/sh", "-c", script], root)
    copy_root(busybox_root, str(tmp_path / "root2"))
    boxed = run_sentry(["/bin/sh", "-c", script], str(tmp_path / "root2"))
    assert boxed.stdout == native.stdout == b"in-a\nin-a\nin-a\nin-a\nin-b\nin-b\nnew-b\nnew-b\nreal\n"


@pytest.mark.parametrize("mount", ["bind", "tmpfs", "tmpfs-sized"])
def test_fileops_on_added_mounts(tmp_path, fileops, mount, outside_tmp):
    """The same workload on a --mount: a bind mount (its changes land in the
    host directory), a private tmpfs directory, and a real sized tmpfs."""
    exe = shutil.copy(fileops, outside_tmp)
    data = tempfile.mkdtemp(dir=outside_tmp)      # outside_tmp is the session's
    spec = {"bind": f"type=bind,src={data},dst=/data", "tmpfs": "type=tmpfs,dst=/data",
            "tmpfs-sized": "type=tmpfs,dst=/data,size=256m"}[mount]
    boxed = run_sentry(["/bin/sh", "-c", f"mkdir /data/s && exec {exe} /data/s"], extra=["--mount", spec])
    assert boxed.returncode == 0, boxed.stderr
    assert boxed.stdout.decode() == _native_transcript(tmp_path, fileops)
    if mount == "bind":
        assert len(os.listdir(os.path.join(data, "s/d/many"))) == 300
