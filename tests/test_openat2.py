"""openat2's RESOLVE_* flags are the guest's to use, applied by the Sentry's
walk inside the sandbox exactly as Linux applies them (they were accepted
and ignored: RESOLVE_BENEATH let `../out` and absolute symlinks through)."""
import os
import shutil
import tempfile

from conftest import run_native, run_sentry


def test_resolve_flags_as_natively(outside_tmp, cbin):
    d = tempfile.mkdtemp(dir=outside_tmp)
    prog = os.path.join(d, "resolve_flags")
    shutil.copy(cbin("resolve_flags"), prog)
    os.mkdir(os.path.join(d, "native"))
    os.mkdir(os.path.join(d, "boxed"))
    native = run_native([prog, os.path.join(d, "native")])
    boxed = run_sentry([prog, os.path.join(d, "boxed")])
    assert native.returncode == boxed.returncode == 0, boxed.stderr.decode()
    out = [line.replace(os.path.join(d, "boxed"), "D") for line in boxed.stdout.decode().splitlines()]
    want = [line.replace(os.path.join(d, "native"), "D") for line in native.stdout.decode().splitlines()]
    assert out == want
    assert any(line.endswith("EXDEV") for line in want) and any(line.endswith("ELOOP") for line in want)
