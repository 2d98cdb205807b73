"""Differential file-system workload (tests/c/fileops.c) on each backend:
a --rootfs written in place, the default root's private /tmp, /dev/shm."""
import os
import shutil

import pytest

from conftest import copy_root, install, run_native, run_sentry


@pytest.fixture(scope="module")
def fileops(cbin):
    return cbin("fileops")


def _native_transcript(tmp_path, fileops):
    scratch = tmp_path / "native"
    scratch.mkdir()
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


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
def test_fileops_default_root(tmp_path, fileops, where, outside_tmp):
    exe = shutil.copy(fileops, outside_tmp)
    boxed = run_sentry(["/bin/sh", "-c", f"mkdir {where}/s && exec {exe} {where}/s"])
    assert boxed.returncode == 0, boxed.stderr
    assert boxed.stdout.decode() == _native_transcript(tmp_path, fileops)


def test_device_nodes_cannot_be_made(tmp_path, busybox_root):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    r = run_sentry(["/bin/sh", "-c", "mknod /tmp/d c 1 1; mknod /tmp/p p && echo fifo-ok"], root)
    assert b"Operation not permitted" in r.stderr and r.stdout == b"fifo-ok\n"


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
