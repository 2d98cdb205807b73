"""/sys: a small read-only tree of what programs actually read, built once.

Nothing of the host's devices: the CPU topology files (nproc, libgomp, Python's
os.cpu_count fallbacks read them), transparent huge pages and KSM switches, an
empty /sys/fs/cgroup, and the mount points of the sandbox's network
interfaces' directories (fsimpl/kernelfs.py SysfsNetView).
"""
import os

COPIED = [
    "devices/system/cpu/online", "devices/system/cpu/possible", "devices/system/cpu/present",
    "kernel/mm/transparent_hugepage/enabled", "kernel/mm/transparent_hugepage/defrag",
    "kernel/mm/ksm/run",
]


def build(root, limits, mount_points=()):
    """Fill the directory `root` (the /sys mount's backing) from the host's /sys,
    with the CPUs of --cpus (sentry/kernel/limits.py) where given, and the
    empty directories `mount_points` (relative) that other mounts cover."""
    for rel in COPIED:
        try:
            with open("/sys/" + rel, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if limits.cpus and rel.startswith("devices/system/cpu/"):
            data = limits.cpu_range().encode()
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    cpus = os.path.join(root, "devices/system/cpu")
    for name in os.listdir("/sys/devices/system/cpu"):
        if name.startswith("cpu") and name[3:].isdigit():
            n = int(name[3:])
            if limits.cpus:
                if n not in limits.cpus:
                    continue
                name = f"cpu{limits.cpus.index(n)}"
            os.makedirs(os.path.join(cpus, name), exist_ok=True)
    os.makedirs(os.path.join(root, "fs/cgroup"), exist_ok=True)
    for rel in mount_points:
        os.makedirs(os.path.join(root, rel), exist_ok=True)
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), 0o555)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o444)
