"""Which user namespace this process runs in, read from /proc/self/*_map (a
leaf: the short OCI commands use it and import nothing else of the project).

Root of a user namespace that is not the host's (rootless podman runs its
runtime as uid 0 of its own) holds capabilities over that namespace only:
no CAP_MKNOD for device nodes, and ids outside its maps do not exist."""

# the initial user namespace's map: all ids, each to itself
INITIAL = [(0, 0, 4294967295)]


def _map(kind):
    """[(first id inside, first id outside, count)] of /proc/self/{kind}_map."""
    try:
        with open(f"/proc/self/{kind}_map") as f:
            words = f.read().split()
    except OSError:
        return INITIAL                # a kernel without user namespaces
    return [tuple(int(w) for w in words[i:i + 3]) for i in range(0, len(words) - 2, 3)]


def in_initial_namespace():
    """Whether this process's ids are the host's own (the initial user
    namespace maps every id but (uid_t)-1 to itself)."""
    return _map("uid") == INITIAL


def mapped(kind, n):
    """Whether id n ("uid" or "gid") exists in this process's namespace."""
    return any(inside <= n < inside + count for inside, _, count in _map(kind))
