"""CAP_FSETID (issue 13; syscalls/fsetid.py): root's write, pwrite,
writev, ftruncate, fallocate (and through a dup) keep a file's set-id bits,
a file created with them (O_CREAT, O_TMPFILE: LTP openat03) too; a user's
clear them.  The same transcript as natively as root, on the default root
and on a rootfs."""
import os

import pytest

from conftest import rootfs_with, run_native, run_sentry, shown_copy


@pytest.mark.parametrize("where", ["default-root", "rootfs"])
def test_set_id_bits_kept_by_root_cleared_by_a_user(where, cbin, outside_tmp, busybox_root, tmp_path):
    exe = shown_copy(cbin, outside_tmp, "fsetid_keep")
    scratch = os.path.join(outside_tmp, "native-" + where)
    os.mkdir(scratch)
    os.chmod(scratch, 0o777)
    native = run_native([exe, scratch], timeout=60)
    assert native.returncode == 0, native.stderr.decode()
    assert b"after write: 6755" in native.stdout and b"after write: 0777" in native.stdout
    if where == "rootfs":
        root, _ = rootfs_with(busybox_root, tmp_path, exe)
        boxed = run_sentry(["/bin/fsetid_keep", "/tmp"], rootfs=root, timeout=120)
    else:
        boxed_dir = os.path.join(outside_tmp, "boxed-" + where)
        os.mkdir(boxed_dir)
        os.chmod(boxed_dir, 0o777)
        boxed = run_sentry([exe, boxed_dir], timeout=120)
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr.decode()[-3000:]
    assert boxed.returncode == 0


def test_fd_number_turned_between_a_set_id_file_and_another(cbin, outside_tmp):
    """fsetid_race: root writes to an fd number a thread turns between a
    06755 file and a 0644 one: the 0644 file never gains a set-id bit,
    natively or in sentry, and the Sentry survives."""
    exe = shown_copy(cbin, outside_tmp, "fsetid_race")
    expected = "plain file gained a set-id bit: 0 times, now 0644\n"
    for side in ("native", "boxed"):
        d = os.path.join(outside_tmp, "race-" + side)
        os.mkdir(d)
        run = run_native if side == "native" else run_sentry
        out = run([exe, d], timeout=240)
        assert out.stdout.decode() == expected, out.stderr.decode()[-3000:]
        assert b"Traceback" not in out.stderr
