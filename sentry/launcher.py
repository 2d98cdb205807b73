"""The `sentry` command as a launcher that starts the interpreter isolated
and without its site hooks (`python -I -S`).

An engine starts one runtime process per step of a container (podman's
create, start, delete; containerd's shim more), so the interpreter's start-up
is paid each time.  `site` is most of it: it reads every `.pth` file of the
installation and runs their `import` lines (on these machines' development
interpreter a certifi hook alone takes ~20 ms of a 31 ms start; `-I -S`
starts in ~6 ms).  The launcher carries instead the module path that the
interpreter computes with its site hooks, frozen when the launcher is
written, this checkout first: the package and its dependencies import as from
pip's console script.  Neither PYTHONPATH nor the current directory is
consulted (an engine runs its runtime in the bundle's directory); what a
`.pth` file's code would do at start-up is left out, and a dependency
installed later needs the launcher written again (scripts/setup does).

    python3 -m sentry.launcher [PATH]

writes it at PATH, or over the console script pip installed for this
distribution; bench/podmanenv.py writes one per checkout it runs."""
import json
import os
import subprocess
import sys

DISTRIBUTION = "sentry-sandbox"
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LauncherError(Exception):
    pass


def site_path(python):
    """python's module path with its site hooks, as a start outside any
    PYTHONPATH and directory has it (the '' of `-c`, the current directory,
    left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run([python, "-c", "import json, sys; print(json.dumps(sys.path))"], cwd="/", env=env,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise LauncherError(f"{python}: {r.stderr.strip()}")
    return [p for p in json.loads(r.stdout) if p]


def script(python, checkout=CHECKOUT, path=None):
    """The launcher's text."""
    # the kernel reads a #! line up to its first blank, at most 255 bytes:
    # one argument, so the flags go together
    if any(c.isspace() for c in python) or len(python) > 200 or not os.path.isabs(python):
        raise LauncherError(f"{python}: not an interpreter path a #! line can name")
    path = [checkout] + [p for p in (site_path(python) if path is None else path) if p != checkout]
    return (f"#!{python} -IS\n"
            "# sentry's command: the interpreter isolated and without its site hooks, its\n"
            "# module path frozen when this was written (sentry/launcher.py)\n"
            "import sys\n"
            f"sys.path[:] = {path!r}\n"
            "from sentry.cli import main\n"
            "sys.exit(main())\n")


def write(dest, python=None, checkout=CHECKOUT):
    """Write the launcher at dest (atomically: an engine may be running the
    one it replaces)."""
    text = script(os.path.abspath(python or sys.executable), checkout)
    tmp = f"{dest}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, dest)
    return dest


def console_script():
    """Where pip put this distribution's `sentry` command."""
    from importlib import metadata
    # every copy of its metadata on the path: a checkout's own egg-info (an
    # editable install's, found first from the checkout) lists no scripts
    dists = list(metadata.distributions(name=DISTRIBUTION))
    if not dists:
        raise LauncherError(f"{DISTRIBUTION} is not installed (pip install -e .)")
    for dist in dists:
        for f in dist.files or []:
            if f.name == "sentry" and f.parent.name in ("bin", "Scripts"):
                return str(f.locate().resolve())
    raise LauncherError(f"{DISTRIBUTION} installed no `sentry` command")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print("usage: python3 -m sentry.launcher [PATH]", file=sys.stderr)
        return 2
    try:
        print(write(argv[0] if argv else console_script()))
    except (LauncherError, OSError) as e:
        print(f"sentry.launcher: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
