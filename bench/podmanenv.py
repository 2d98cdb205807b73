"""A private podman set-up as ../shared/oci/README.md describes for these
machines (vfs storage, cgroupfs, file events, no network plugins, ulimits
within root's own), with a busybox image imported from a local rootfs: what
tests/test_podman.py runs on and what `python3 -m bench.oci` times."""
import os
import resource
import subprocess
import sys

IMAGE = "localhost/bb:latest"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runtime_wrapper(top, python=None, repo=REPO_ROOT, subdir="bin"):
    """A checkout's sentry (this one's by default) as an OCI runtime binary
    named `sentry` (podman passes --log-format=json only to a runtime of that
    name), in top/SUBDIR: the launcher scripts/setup installs
    (sentry/launcher.py), or for a checkout from before it had one, the
    interpreter with its site hooks, as that checkout was run."""
    d = os.path.join(top, subdir)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "sentry")
    python = python or sys.executable
    if os.path.exists(os.path.join(repo, "sentry", "launcher.py")):
        from sentry import launcher
        return launcher.write(path, python, repo)
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nPYTHONPATH={repo} exec {python} -m sentry "$@"\n')
    os.chmod(path, 0o755)
    return path


class Podman:
    """`podman --runtime R ...` with the private configuration of `top`;
    with `user` (a uid), rootless podman run as that user (HOME and
    XDG_RUNTIME_DIR in top, USER set as a login sets it)."""

    def __init__(self, top, runtime, user=None):
        self.top = top
        self.runtime = runtime
        self.user = user
        self.env = {**os.environ, "CONTAINERS_CONF": os.path.join(top, "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": os.path.join(top, "storage.conf")}
        self.prefix = []
        if user is not None:
            import pwd
            self.env.update(HOME=os.path.join(top, "home"), XDG_RUNTIME_DIR=os.path.join(top, "run"),
                            USER=pwd.getpwuid(user).pw_name, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
            self.prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]

    def command(self, *args, runtime=None):
        """The argv of `podman ARGS` as this set-up runs it."""
        return [*self.prefix, "podman", "--runtime", runtime or self.runtime, *args]

    def __call__(self, *args, runtime=None, timeout=120, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("cwd", self.top)          # a directory the user may enter
        return subprocess.run(self.command(*args, runtime=runtime), env=self.env, text=True,
                              timeout=timeout, **kw)

    def close(self):
        """Remove every container; rootless, end the user namespace's pause
        process that podman started and leaves running."""
        self("rm", "-a", "-f", "-t", "0")
        if self.user is not None:
            # in podman's tmp_dir (top/tmp), or its default under XDG_RUNTIME_DIR
            for path in (os.path.join(self.top, "tmp", "pause.pid"),
                         os.path.join(self.top, "run", "libpod", "tmp", "pause.pid")):
                try:
                    with open(path) as f:
                        os.kill(int(f.read()), 9)
                except (OSError, ValueError):
                    pass


def make(top, runtime, rootfs, user=None):
    """Configure podman in top (a new directory) and import rootfs as IMAGE;
    returns the Podman, or raises RuntimeError with podman's words.  With
    user, rootless podman as that uid (top must be a directory it can reach)."""
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(32768, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    with open(os.path.join(top, "containers.conf"), "w") as f:
        # root here lacks CAP_SYS_RESOURCE: podman's default rlimits for root
        # would make every runtime's create fail with EPERM
        f.write(f'[containers]\ndefault_ulimits = ["nofile={hard_nofile}:{hard_nofile}", "nproc={nproc}:{nproc}"]\n'
                'netns = "none"\nlog_driver = "k8s-file"\n'
                f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "{top}/tmp"\n'
                'runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "sentry"]\n')
    with open(os.path.join(top, "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{top}/graph"\nrunroot = "{top}/run/storage"\n')
        if user is not None:
            # no /etc/subuid range here: the image's files other than root's
            # cannot be owned by their ids in a one-id namespace
            f.write('[storage.options]\nignore_chown_errors = "true"\n')
    p = Podman(top, runtime, user)
    if user is not None:
        for d in ("home", "run", "tmp", "graph"):
            os.mkdir(os.path.join(top, d), 0o700)
            os.chown(os.path.join(top, d), user, user)
    tar = os.path.join(top, "image.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    os.chmod(tar, 0o644)
    r = p("import", "--change", 'CMD ["/bin/sh"]', tar, IMAGE)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return p


def busybox_rootfs(root):
    """A rootfs of busybox-static: /bin/busybox and one link per applet."""
    import shutil
    bb = shutil.which("busybox")
    if bb is None:
        raise RuntimeError("busybox is missing: scripts/setup installs busybox-static")
    for d in ("bin", "etc", "tmp", "dev", "proc", "sys", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(bb, os.path.join(root, "bin/busybox"))
    for a in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        if not os.path.exists(os.path.join(root, "bin", a)):
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    return root
