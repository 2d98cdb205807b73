"""User namespaces a guest makes (issue 13; sentry/kernel/userns.py): the
same transcript as the program run natively, as root and as two users that
are not, and `unshare -r` as a user runs it."""
import os
import shutil
import subprocess

import pytest

from conftest import HERE, run_sentry

@pytest.fixture
def script(outside_tmp):
    """tests/py/NAME copied where the default root shows it to every user
    (the checkout may be under /tmp, which a sandbox has of its own)."""
    os.chmod(outside_tmp, 0o755)

    def copy(name):
        return shutil.copy(os.path.join(HERE, "py", name), outside_tmp)
    return copy


@pytest.fixture
def root_dir(tmp_path_factory):
    """A directory root owns, mode 755, that the guest sees (outside /tmp)."""
    d = "/var/tmp/sentry-userns-test"
    subprocess.run(["rm", "-rf", d], check=True)
    os.mkdir(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", d], check=True)


def _as(uid):
    if uid == 0:
        return []
    return ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]


@pytest.mark.parametrize("uid", [0, 1000, 65534])
def test_user_namespaces_as_natively(uid, root_dir, script):
    cmd = _as(uid) + ["/usr/bin/python3", script("userns_probe.py"), str(uid), str(uid), root_dir]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    assert "map root EPERM" in native.stdout or uid == 0
    boxed = run_sentry(cmd, timeout=60)
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()[-3000:]


def test_unshare_r_as_a_user():
    """util-linux's unshare -r: setgroups deny, both maps, then the command
    as root of the namespace, with its capabilities there."""
    script = ("unshare -r sh -c 'id -u; id -g; cat /proc/self/uid_map /proc/self/setgroups;"
              " grep CapEff /proc/self/status; unshare -u sh -c \"hostname inner; hostname\"'")
    cmd = _as(1000) + ["sh", "-c", script]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    boxed = run_sentry(cmd, timeout=60)
    assert boxed.stdout.decode() == native.stdout, boxed.stderr.decode()[-3000:]


def test_uid_map_written_while_its_fd_number_is_swapped(root_dir, script):
    """Threads write root's mapping (and a user's own) to an fd number a
    third thread turns between /proc/self/uid_map and a plain file: the
    kernel's answer for the file, the map's rules for the map, whatever the
    order; root's id is never mapped and root's files stay closed, as
    natively."""
    cmd = _as(65534) + ["/usr/bin/python3", script("userns_race.py"), root_dir]
    expected = "refused True root mapped False root's dir EACCES\n"
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert native.stdout == expected, native.stderr
    boxed = run_sentry(cmd, timeout=60)
    assert boxed.stdout.decode() == expected, boxed.stderr.decode()[-3000:]
