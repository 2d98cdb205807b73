"""The command line: help, version, exit statuses, and bad input."""
import os
import signal
import subprocess
import sys

from conftest import SENTRY, run_sentry


def test_help_and_version():
    for args in (["--help"], ["run", "--help"]):
        r = subprocess.run([sys.executable, "-m", "sentry", *args], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: sentry" in r.stdout
    r = subprocess.run([sys.executable, "-m", "sentry", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("sentry ")
    assert "--rootfs" in subprocess.run([sys.executable, "-m", "sentry", "run", "--help"],
                                        capture_output=True, text=True).stdout


def test_exit_status_propagates(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "echo hi; exit 3"], busybox_root)
    assert r.stdout == b"hi\n" and r.returncode == 3


def test_killed_by_signal_is_128_plus_signal(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "kill -9 $$"], busybox_root)
    assert r.returncode == 128 + signal.SIGKILL
    r = run_sentry(["/bin/sh", "-c", "kill -TERM $$"], busybox_root)
    assert r.returncode == 128 + signal.SIGTERM


def test_missing_rootfs(tmp_path):
    r = run_sentry(["/bin/true"], str(tmp_path / "nope"))
    assert r.returncode != 0
    assert r.stderr.decode().count("\n") == 1 and "no such directory" in r.stderr.decode()


def test_rootfs_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run_sentry(["/bin/true"], str(f))
    assert r.returncode != 0 and "not a directory" in r.stderr.decode()


def test_command_not_found_is_127(busybox_root):
    r = run_sentry(["/no/such/program"], busybox_root)
    assert r.returncode == 127 and b"not found" in r.stderr
    r = run_sentry(["nosuchcommand"], busybox_root)
    assert r.returncode == 127


def test_not_executable_is_126(busybox_root):
    path = os.path.join(busybox_root, "etc/passwd")
    assert os.path.exists(path)
    r = run_sentry(["/etc/passwd"], busybox_root)
    assert r.returncode == 126


def test_no_command():
    r = subprocess.run(SENTRY, capture_output=True, text=True)
    assert r.returncode != 0 and "no command" in r.stderr


def test_shell_reports_126_and_127_like_linux(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "/etc/passwd; echo $?; /nope; echo $?"], busybox_root)
    assert r.stdout.split() == [b"126", b"127"]
