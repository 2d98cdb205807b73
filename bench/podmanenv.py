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
    """`podman --runtime R ...` with the private configuration of `top`."""

    def __init__(self, top, runtime):
        self.top = top
        self.runtime = runtime
        self.env = {**os.environ, "CONTAINERS_CONF": os.path.join(top, "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": os.path.join(top, "storage.conf")}

    def __call__(self, *args, runtime=None, timeout=120, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(["podman", "--runtime", runtime or self.runtime, *args], env=self.env,
                              text=True, timeout=timeout, **kw)


def make(top, runtime, rootfs):
    """Configure podman in top (a new directory) and import rootfs as IMAGE;
    returns the Podman, or raises RuntimeError with podman's words."""
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
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{top}/graph"\nrunroot = "{top}/run"\n')
    p = Podman(top, runtime)
    tar = os.path.join(top, "image.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
    r = subprocess.run(["podman", "import", "--change", 'CMD ["/bin/sh"]', tar, IMAGE], env=p.env,
                       capture_output=True, text=True, timeout=120)
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
