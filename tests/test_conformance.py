"""Differential conformance suite (issue 5): one C program per syscall family
(tests/c/conf_*.c), each printing a deterministic transcript of results and
errno names.  Each runs natively in a chroot of a fresh busybox rootfs and in
`sentry run --rootfs` on another fresh copy; the transcripts, after the
normalisations below, must be the same except for the known gaps listed in
tests/conformance_gaps.txt.  A listed gap that no longer shows, or a
difference that is not listed, fails the test: no blanket skips.

tests/conformance_gaps.txt: one gap a line, `program<TAB>line<TAB>reason`,
where line is the first native transcript line of a differing hunk (a run of
consecutive differing lines); for a hunk of lines only sentry printed, it is
`+` followed by sentry's first line.  `#` starts a comment line.
"""
import difflib
import os
import re
import socket

import pytest

from conftest import HERE, copy_root, install, run_native, run_sentry

PROGRAMS = ["conf_pipes", "conf_unix", "conf_signals", "conf_threads", "conf_memory",
            "conf_time", "conf_poll", "conf_rlimits", "conf_identity", "conf_pids", "conf_creds"]
SCRATCH = "/scratch"            # the programs' empty working directory, same path on both sides
SENTRY_HOSTNAME = "sentry"      # `sentry run` without --hostname
GAPS_FILE = os.path.join(HERE, "conformance_gaps.txt")
TIMEOUT = 60


# ---- normalisations: the only place a transcript is rewritten ---------------
# name -> (function(side, text) -> text, why).  side is "native" or "sentry".
# They erase only what differs by design; anything else is a finding.

def _hostname(side, text):
    expected = socket.gethostname() if side == "native" else SENTRY_HOSTNAME
    return re.sub(r"(?m)^nodename=%s$" % re.escape(expected), "nodename=<hostname>", text)


NORMALISATIONS = {
    "hostname": (_hostname,
                 "conf_identity prints uname's nodename: the host's name natively, the "
                 "sandbox's own (--hostname, default 'sentry') inside.  Only the name each "
                 "side should show is replaced, so a sandbox leaking the host's name differs."),
}


def normalise(side, text):
    for fn, _why in NORMALISATIONS.values():
        text = fn(side, text)
    return text


def transcript(side, proc):
    """The compared text: stdout, then the exit status, then (sentry only)
    markers for failures the Sentry logged on stderr."""
    out = normalise(side, proc.stdout.decode(errors="replace"))
    lines = out.splitlines() + ["exit status: %d" % proc.returncode]
    if side == "sentry":
        err = proc.stderr.decode(errors="replace")
        if "Traceback (most recent call last)" in err:
            lines.append("sentry stderr: Python traceback")
        for name in sorted(set(re.findall(r"handler for (\w+) failed", err))):
            lines.append("sentry stderr: handler for %s failed" % name)
    return lines


# ---- comparison ---------------------------------------------------------------

def hunks(native, boxed):
    """Differing runs as (key, native lines, sentry lines)."""
    sm = difflib.SequenceMatcher(None, native, boxed, autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        key = native[i1] if i2 > i1 else "+" + boxed[j1]
        out.append((key, native[i1:i2], boxed[j1:j2]))
    return out


def load_gaps(path=GAPS_FILE):
    gaps = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            assert len(parts) == 3 and all(p.strip() for p in parts), \
                "%s:%d: want program<TAB>line<TAB>reason" % (path, n)
            prog, key, reason = parts
            assert prog in PROGRAMS, "%s:%d: unknown program %s" % (path, n, prog)
            assert key not in gaps.setdefault(prog, {}), "%s:%d: listed twice" % (path, n)
            gaps[prog][key] = reason
    return gaps


def _run(runner, exe, base, busybox_root):
    root = str(base)
    copy_root(busybox_root, root)
    target = install(exe, root)
    os.mkdir(root + SCRATCH)
    # Under a shell, in both runs: in sentry the first process is the PID
    # namespace's init, whose signals, parent and orphans differ by design.
    # In a session of their own, in both runs: otherwise the session pytest
    # inherited decides what getsid() says (0 natively when CI's session
    # leader is outside the host's own PID namespace).
    return runner(["/bin/sh", "-c", '"$@"; exit $?', "sh", target, SCRATCH], root,
                  timeout=TIMEOUT, start_new_session=True)


def test_gaps_file_is_well_formed():
    load_gaps()


@pytest.mark.parametrize("prog", PROGRAMS)
def test_conformance(prog, tmp_path, busybox_root, cbin):
    exe = cbin(prog)
    native = _run(run_native, exe, tmp_path / "native", busybox_root)
    # the program's own sanity: natively it runs to the end
    assert native.returncode == 0, native.stdout.decode()[-2000:] + native.stderr.decode()
    assert native.stdout, "no transcript"
    boxed = _run(run_sentry, exe, tmp_path / "sentry", busybox_root)

    found = hunks(transcript("native", native), transcript("sentry", boxed))
    known = load_gaps().get(prog, {})
    new = [h for h in found if h[0] not in known]
    fixed = sorted(set(known) - {h[0] for h in found})
    msg = []
    for key, nat, box in new:
        msg.append("new difference (not in conformance_gaps.txt):\n  %s\t%s" % (prog, key))
        msg += ["  - " + l for l in nat] + ["  + " + l for l in box]
    for key in fixed:
        msg.append("listed gap no longer differs (remove it): %s\t%s" % (prog, key))
    if new:
        msg.append("sentry stderr (tail):\n" + boxed.stderr.decode(errors="replace")[-3000:])
    assert not msg, "\n".join(msg)
