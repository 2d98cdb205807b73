"""--audit FILE: one JSON line per denied call, privileged action, process
start, exec and exit (sentry/kernel/audit.py; README "Audit trail")."""
import json
import os
import re
import shutil
import socket
import tempfile

from conftest import run_sentry

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_audit_trail(cbin, outside_tmp):
    prog = cbin("audit")
    d = tempfile.mkdtemp(dir=outside_tmp)
    host_sock = os.path.join(d, "host.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(host_sock)
    listener.listen(1)
    trail = os.path.join(d, "audit.jsonl")
    try:
        exe = shutil.copy2(prog, os.path.join(d, "audit"))      # where the default root shows it
        r = run_sentry([exe, host_sock], extra=["--audit", trail])
    finally:
        listener.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        "bpf -1", "kexec_load -1", "fsopen -1", "mount 0", "ptrace -1", "connect -1", "setuid 0", "setuid -1", "child 3"]
    with open(trail) as f:
        events = [json.loads(line) for line in f]
    for e in events:
        assert TIME.fullmatch(e["time"]) and e["pid"] >= 1 and e["tid"] >= 1, e
    kinds = [(e["kind"], e.get("syscall")) for e in events]
    assert kinds == [
        ("start", None), ("exec", None),
        ("deny", "bpf"), ("deny", "kexec_load"), ("mount-refused", "fsopen"), ("mount", "mount"),
        ("ptrace-refused", "ptrace"),
        ("connect-refused", "connect"), ("setid", "setuid"), ("setid", "setuid"),
        ("start", None), ("exit", None), ("exit", None)], events
    start, exec_, bpf, kexec, pivot, mount, ptrace, connect, setuid, refused, child, child_exit, exit_ = events
    assert start["pid"] == 1 and exec_["program"] == exe and exec_["uid"] == 0
    assert bpf["errno"] == "EPERM" and bpf["program"] == exe
    assert kexec["errno"] == pivot["errno"] == ptrace["errno"] == "EPERM"
    assert mount["path"] == "/mnt" and mount["type"] == "tmpfs" and "errno" not in mount
    assert connect["path"] == host_sock and connect["errno"] == "ECONNREFUSED"
    assert setuid["args"] == [1000] and setuid["uids"] == [1000] * 4 and "errno" not in setuid
    assert refused["args"] == [0] and refused["errno"] == "EPERM" and refused["uid"] == 1000
    assert child["pid"] == 2 and child["ppid"] == 1 and child["program"] == exe
    assert child_exit["pid"] == 2 and child_exit["code"] == 3
    assert exit_["pid"] == 1 and exit_["code"] == 0


def test_audit_trail_is_hidden_from_the_guest(outside_tmp):
    d = tempfile.mkdtemp(dir=outside_tmp)
    trail = os.path.join(d, "audit.jsonl")
    r = run_sentry(["/bin/sh", "-c", f"cat {trail}; echo x > {trail}; cat {trail}"], extra=["--audit", trail])
    assert r.stdout == b"x\n", r.stderr
    with open(trail) as f:
        assert [json.loads(line)["kind"] for line in f][:2] == ["start", "exec"]


def test_audit_file_that_cannot_be_opened():
    r = run_sentry(["/bin/true"], extra=["--audit", "/nonexistent-dir/audit.jsonl"])
    assert r.returncode == 125 and "--audit" in r.stderr.decode() and r.stderr.decode().count("\n") == 1
