"""Which user namespace this process runs in, read from /proc/self/*_map (a
leaf: the short OCI commands use it and import nothing else of the project).

Root of a user namespace that is not the host's (rootless podman runs its
runtime as uid 0 of its own) holds capabilities over that namespace only:
no CAP_MKNOD for device nodes, and ids outside its maps do not exist."""

def _map(kind):
    """[(first id inside, first id outside, count)] of /proc/self/{kind}_map."""
    try:
        with open(f"/proc/self/{kind}_map") as f:
            words = f.read().split()
    except OSError:
        return [(0, 0, 1 << 32)]      # a kernel without user namespaces
    return [tuple(int(w) for w in words[i:i + 3]) for i in range(0, len(words) - 2, 3)]


def in_initial_namespace():
    """Whether this process's ids are the host's own (the initial user
    namespace maps all 2^32 ids to themselves)."""
    return _map("uid") == [(0, 0, 1 << 32)]


def mapped(kind, n):
    """Whether id n ("uid" or "gid") exists in this process's namespace."""
    return any(inside <= n < inside + count for inside, _, count in _map(kind))
