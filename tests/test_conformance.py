"""Differential conformance suite (issue 5): one C program per syscall family
(tests/c/conf_*.c), each printing a deterministic transcript of results and
errno names.  Each runs natively in a chroot of a fresh busybox rootfs and in
`sentry run --rootfs` on another fresh copy; the transcripts, after the
normalisations below, must be the same except for the known gaps listed in
tests/conformance_gaps.txt.  A listed gap that no longer shows, or a
difference that is not listed, fails the test: no blanket skips.

tests/conformance_gaps.txt lists each gap as a block: a header line
`[program] reason`, then the whole differing hunk (a run of consecutive
differing lines), each native line as `- line` and each line sentry printed
instead as `+ line`, in order.  A hunk matches a gap only if both sides are
exactly the listed lines, where `<number>` in a listed line stands for any
decimal number (a length that depends on the Sentry's pid, say).  `#` starts
a comment line; blank lines are ignored.
"""
import difflib
import os
import re
import socket

import pytest

from conftest import HERE, copy_root, install, run_native, run_sentry

PROGRAMS = ["conf_errorder", "conf_pipes", "conf_unix", "conf_signals", "conf_threads", "conf_memory",
            "conf_time", "conf_poll", "conf_rlimits", "conf_identity", "conf_pids", "conf_creds", "conf_pidns",
            "conf_clone3"]
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
    """Differing runs as (native lines, sentry lines)."""
    sm = difflib.SequenceMatcher(None, native, boxed, autojunk=False)
    return [(tuple(native[i1:i2]), tuple(boxed[j1:j2]))
            for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]


def _line_matches(listed, line):
    return re.fullmatch(re.escape(listed).replace(re.escape("<number>"), r"\d+"), line) is not None


def gap_matches(gap, hunk):
    """Whether a hunk (native lines, sentry lines) is the listed gap."""
    return all(len(g) == len(h) and all(_line_matches(a, b) for a, b in zip(g, h))
               for g, h in zip(gap, hunk))


def load_gaps(path=GAPS_FILE):
    """{program: {(native lines, sentry lines): reason}}"""
    gaps, current = {}, None

    def close(n):
        if current is not None:
            prog, reason, nat, box, at = current
            assert nat or box, "%s:%d: a gap without its hunk's lines" % (path, at)
            assert (nat, box) not in gaps.setdefault(prog, {}), "%s:%d: listed twice" % (path, at)
            gaps[prog][(nat, box)] = reason

    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            m = re.fullmatch(r"\[(\w+)\] (\S.*)", line)
            if m:
                close(n)
                assert m.group(1) in PROGRAMS, "%s:%d: unknown program %s" % (path, n, m.group(1))
                current = (m.group(1), m.group(2), (), (), n)
                continue
            assert current is not None and line[:2] in ("- ", "+ "), \
                "%s:%d: want `[program] reason`, then `- native line`s and `+ sentry line`s" % (path, n)
            prog, reason, nat, box, at = current
            if line[0] == "-":
                assert not box, "%s:%d: native lines come before sentry's" % (path, n)
                nat += (line[2:],)
            else:
                box += (line[2:],)
            current = (prog, reason, nat, box, at)
    close(None)
    return gaps


def _show(prog, nat, box):
    return ["  [%s] <reason>" % prog] + ["  - " + l for l in nat] + ["  + " + l for l in box]


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
    new = [h for h in found if not any(gap_matches(g, h) for g in known)]
    fixed = [g for g in known if not any(gap_matches(g, h) for h in found)]
    msg = []
    for nat, box in new:
        msg.append("new difference (not in conformance_gaps.txt as this whole hunk):")
        msg += _show(prog, nat, box)
    for nat, box in fixed:
        msg.append("listed gap no longer differs as listed (remove or update it): %s" % known[(nat, box)])
        msg += _show(prog, nat, box)
    if new:
        msg.append("sentry stderr (tail):\n" + boxed.stderr.decode(errors="replace")[-3000:])
    assert not msg, "\n".join(msg)
