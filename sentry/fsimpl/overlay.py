"""A copy-on-write overlay: a read-only lower directory under a writable upper one.

Guest fds are real host fds and getdents64 runs natively on them, so a merged
directory listing must exist as a real host directory.  The overlay therefore
never merges at read time.  Each directory of the sandbox is either

- *lower*: not copied up; the lower directory at the same path is the whole
  truth (it may have an upper twin: an empty *placeholder* directory), or
- *complete*: a real upper directory holding every name the guest sees: its
  own entries, and for each lower entry not removed a placeholder made when
  it was copied up.

A placeholder means "still the lower one at this very path".  A directory
placeholder carries the xattr MARK; any other is a hard link to one of a few
placeholder inodes the overlay keeps in its work directory (one per file type,
so that getdents64's d_type is right): making one costs a single link(2), and
recognising one a single fstat.  Hence:

- no whiteouts: removing a name is unlinking it in a complete directory, and a
  name the guest makes (`.wh.foo`, a char device 0/0) is only a name;
- `rm -rf d && mkdir d` leaves a new, unmarked (complete and empty) directory;
- a lookup walks the upper layer from its root: the first placeholder, or a
  directory not copied up, sends the rest of the path to the lower layer;
- a lower-backed object always lives at its own lower path (a placeholder is
  never renamed: rename copies up what it moves, subtree included), so a host
  path the kernel reports for a guest fd or cwd maps back into the sandbox by
  prefix, whichever layer it is in;
- a directory is copied up before the guest learns its identity through an
  open of it, so its st_dev/st_ino never change while the guest may hold
  them (fts, under GNU rm -rf, checks them on its way back up); a
  placeholder directory keeps its inode when it is completed, so a stat of
  a lower directory shows its placeholder's st_dev/st_ino (its twin in its
  parent, which is completed) with the lower directory's attributes, and
  copies nothing up (a compiler's stats of /usr/include and the library
  directories would copy up thousands of entries).

The guest can neither set, remove, read nor list an xattr under RESERVED
(syscalls/path.py, syscalls/file.py), and never holds an fd on a placeholder:
opening its path opens the lower file.
"""
import errno
import fcntl
import itertools
import logging
import os
import stat

from sentry._native import ffi, lib
from sentry.host import openat2
from sentry.vfs.mount import CREATE, CREATE_IN, MOVE, O_PATH, REMOVE, TRUNCATE, Mount, MountTable
from sentry.vfs.resolve import Resolved
from sentry.errors import SyscallError

MARK = "user.sentry.lower"         # on a placeholder directory
RESERVED = "user.sentry."          # xattr names that are the Sentry's, never the guest's
PLACEHOLDER = "placeholder"        # work/placeholder.<type>.<n>: the inodes file placeholders link to
MAX_LINKS = 60000                  # under ext4's 65000 links per inode

log = logging.getLogger("sentry")

_tmp_names = itertools.count()


def _proc(fd):
    return f"/proc/self/fd/{fd}"


def _dirname(rel):
    return rel.rpartition("/")[0] or "."


def _split(rel):
    parent, _, name = rel.rpartition("/")
    return parent or ".", name


def is_marked(fd):
    """Whether directory fd (O_PATH too) is a placeholder."""
    try:
        os.getxattr(_proc(fd), MARK)
        return True
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.EOPNOTSUPP, errno.EPERM):
            return False
        raise SyscallError(e.errno)


def _mark(fd):
    os.setxattr(_proc(fd), MARK, b"")


def _copy_attributes(src, dst, st):
    """Owner, mode, xattrs, then times, of src (stat st) onto dst: in this
    order, since a chown clears set-id bits and file capabilities."""
    try:
        os.chown(_proc(dst), st.st_uid, st.st_gid)
    except PermissionError:
        pass                        # an unprivileged Sentry keeps its own
    os.chmod(_proc(dst), stat.S_IMODE(st.st_mode))
    _copy_xattrs(src, dst)
    os.utime(_proc(dst), ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src, dst):
    """Every xattr of src the Sentry may read, but its own marks."""
    try:
        names = os.listxattr(_proc(src))
    except OSError:
        return
    for name in names:
        if name.startswith(RESERVED):
            continue
        try:
            os.setxattr(_proc(dst), name, os.getxattr(_proc(src), name))
        except OSError:
            pass                    # security.* without privilege: as cp -a


def _copy_data(src, dst, size):
    """Copy src's data to dst in the kernel, holes kept: copy_file_range
    (a reflink where the file system offers one), or sendfile between file
    systems, where copy_file_range answers EXDEV."""
    pos, cross = 0, False
    while pos < size:
        try:
            start = os.lseek(src, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break               # only a hole is left
            raise
        end = os.lseek(src, start, os.SEEK_HOLE)
        while start < end:
            if not cross:
                try:
                    n = os.copy_file_range(src, dst, end - start, start, start)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    cross = True
                    continue
            else:
                os.lseek(dst, start, os.SEEK_SET)
                n = os.sendfile(dst, src, start, end - start)
            if n == 0:
                break
            start += n
        pos = end
    os.ftruncate(dst, size)


class LayersInUse(Exception):
    """Another sandbox runs on these layers."""


class Placeholders:
    """The inodes every file placeholder is a hard link to, in the work
    directory (out of the guest's reach): one per file type, a new one when
    the link count nears the file system's limit."""

    TYPES = {stat.S_IFREG: "reg", stat.S_IFLNK: "lnk", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock"}

    def __init__(self, work):
        self.work = work
        self.ids = set()             # (st_dev, st_ino) of every placeholder inode
        self.current = {}            # type -> [name of the one new links go to, its link count]
        for name in sorted(os.listdir(work), key=lambda n: int(n.rsplit(".", 1)[-1]) if n.startswith(PLACEHOLDER + ".") else 0):
            if name.startswith(PLACEHOLDER + "."):
                st = os.stat(name, dir_fd=work, follow_symlinks=False)
                self._add(st)
                self.current[name.split(".")[1]] = [name, st.st_nlink]

    def _add(self, st):
        self.ids.add((st.st_dev, st.st_ino))
        lib.sn_add_placeholder(st.st_dev, st.st_ino)     # the native fast path's copy
        for table in list(MountTable.tables):             # and the guests' mount namespaces'
            if table.private:
                lib.sn_table_add_placeholder(table.table, st.st_dev, st.st_ino)

    def __contains__(self, st):
        return (st.st_dev, st.st_ino) in self.ids

    def link(self, kind, dirfd, name):
        """Make dirfd/name a placeholder for a lower file of type `kind`."""
        tname = self.TYPES.get(kind, "reg")      # device nodes: d_type aside, a file
        for _ in range(2):
            current = self.current.get(tname)
            if current is None or current[1] >= MAX_LINKS:
                current = self._new(tname)
            try:
                os.link(current[0], name, src_dir_fd=self.work, dst_dir_fd=dirfd, follow_symlinks=False)
                current[1] += 1      # an upper-bound: unlinks of placeholders are not counted
                return
            except OSError as e:
                if e.errno != errno.EMLINK:
                    raise
                current[1] = MAX_LINKS
        raise SyscallError(errno.EMLINK)

    def _new(self, tname):
        name = f"{PLACEHOLDER}.{tname}.{len(self.ids)}"
        if tname == "lnk":
            os.symlink("(lower)", name, dir_fd=self.work)
        elif tname in ("fifo", "sock"):
            os.mknod(name, (stat.S_IFIFO if tname == "fifo" else stat.S_IFSOCK) | 0o600, dir_fd=self.work)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=self.work))
        self._add(os.stat(name, dir_fd=self.work, follow_symlinks=False))
        self.current[tname] = [name, 1]
        return self.current[tname]


class Layer(Mount):
    """One host directory of an overlay; resolved locations name it."""

    kind = "layer"

    def __init__(self, overlay, host_root, readonly):
        self.overlay = overlay
        super().__init__(overlay.path, host_root, readonly)

    @property
    def owner(self):
        return self.overlay

    def prepare_change(self, loc, what):
        return self.overlay.prepare_change(loc, what)

    def check_content_writable(self, rel):
        """access(W_OK): any file may be written, once copied up, unless the
        overlay was made read-only (an fd's own attributes are checked with
        check_writable: EROFS in the lower layer, whose files the guest
        never changes)."""
        self.overlay.check_content_writable(rel)


class OverlayMount(Mount):
    """`lower` (never written) under `upper`; copy-ups are built in `work`
    and renamed into place, so none is ever seen half made."""

    kind = "overlay"
    readonly = False
    allows_exec = True

    def __init__(self, path, lower_root, upper_root, work_root):
        self.path = path
        os.makedirs(upper_root, exist_ok=True)
        os.makedirs(work_root, exist_ok=True)
        self.lower = Layer(self, lower_root, readonly=True)
        self.upper = Layer(self, upper_root, readonly=False)
        self.work = os.open(work_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # one Sentry per upper layer: its caches are its own
            fcntl.flock(self.work, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.work)
            raise LayersInUse(os.path.dirname(work_root))
        for name in os.listdir(self.work):   # a copy-up cut short by a crash
            if not name.startswith(PLACEHOLDER + "."):
                os.unlink(name, dir_fd=self.work)
        self.placeholders = Placeholders(self.work)
        if not self.placeholders.ids and not os.listdir(upper_root):
            # never used (no copy-up has made a placeholder): the whole tree
            # is the lower one
            fd = os.open(upper_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _mark(fd)
            finally:
                os.close(fd)

    @property
    def host_root(self):
        return self.upper.host_root

    def backings(self):
        return [self.upper, self.lower]

    def check_writable(self):
        if self.readonly:               # a guest's remount (syscalls/mount.py)
            raise SyscallError(errno.EROFS)

    def check_content_writable(self, rel):
        self.check_writable()

    def open_parent(self, rel):
        # only a location not yet prepared for its change names the overlay
        # itself: creating there would bypass copy-up
        raise SyscallError(errno.EROFS)

    # ---- lookup --------------------------------------------------------

    def find(self, rel):
        """(layer holding rel, its lstat): the walk's rules (native/resolve.c,
        overlay_find) -- a placeholder, or a name in a directory not copied
        up, is the lower layer's."""
        up = self.upper
        backing = ffi.new("int *")
        fd = lib.sn_table_find(up.walk_table, up.walk_index, os.fsencode(rel), backing)
        if fd < 0:
            raise SyscallError(-fd)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return (up if backing[0] == up.walk_index else self.lower), st

    def _changed(self):
        """A directory may have changed layer or gone: the walk's cache of
        directory states starts anew."""
        table = getattr(self.upper, "walk_table", None)
        if table is not None:
            lib.sn_table_overlay_changed(table)

    def lstat(self, rel):
        return self.find(rel)[1]

    def lstat_direct(self, rel):
        return self.find(rel)[1]

    def readlink(self, rel):
        return self.find(rel)[0].readlink(rel)

    def expose(self, loc, stat_only=False):
        if loc.mount is not self.lower or not loc.is_dir:
            return loc
        try:
            if stat_only and loc.rel != ".":
                # A stat shows the identity of the directory's twin in its
                # complete parent (a placeholder keeps its inode when it is
                # completed) and the lower directory's attributes: nothing
                # is copied up until the guest opens or changes it.
                self._complete(_dirname(loc.rel))
                twin = self._upper_twin(loc)
                if twin.is_dir:
                    loc.twin = twin
                    return loc
            self._complete(loc.rel)
        except OSError as e:
            raise SyscallError(e.errno)
        finally:
            self._changed()
        return self._upper_twin(loc)

    # ---- copy-up -------------------------------------------------------

    def prepare_change(self, loc, what):
        self.check_writable()
        self.check_move(loc.rel, what)      # before a copy-up of the tree reads the lower layer
        self._changed()
        try:
            return self._prepare(loc, what)
        except OSError as e:
            if isinstance(e, SyscallError):
                raise
            raise SyscallError(e.errno)
        finally:
            self._changed()

    def _prepare(self, loc, what):
        rel = loc.rel
        if what == CREATE:
            self._complete(_dirname(rel))
            return Resolved(loc.spath, self.upper, rel, None)
        if rel == ".":
            self._complete(".")
            return self._upper_twin(loc)
        self._complete(_dirname(rel))
        if what == CREATE_IN:
            self._complete(rel)
        elif what == REMOVE:
            if loc.mount is self.lower and stat.S_ISDIR(loc.st.st_mode):
                self._complete(rel)          # so that rmdir sees what is in it
            self._changed()         # maybe a directory the native path knows
        elif what == MOVE:
            self._changed()
            self._copy_up_tree(rel)
        elif loc.mount is self.lower:       # WRITE, TRUNCATE, ATTRS
            if stat.S_ISDIR(loc.st.st_mode):
                self._complete(rel)
            else:
                self._copy_up(rel, keep_data=what != TRUNCATE)
        return self._upper_twin(loc)

    def _upper_twin(self, loc):
        st = os.fstat(self.upper.fd) if loc.rel == "." else self.upper.lstat(loc.rel)
        return Resolved(loc.spath, self.upper, loc.rel, st)

    def _complete(self, drel):
        """Copy up directory drel (its ancestors first): give it a
        placeholder for every lower entry, then unmark it."""
        if drel != ".":
            self._complete(_dirname(drel))
        fd = openat2(self.upper.fd, drel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if is_marked(fd):
                self._populate(fd, drel)
        finally:
            os.close(fd)

    def _populate(self, ufd, drel):
        try:
            lfd = openat2(self.lower.fd, drel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
            lfd = None                   # gone from the lower layer meanwhile: empty
        n = 0
        try:
            if lfd is not None:
                with os.scandir(lfd) as entries:
                    for entry in entries:
                        self._placeholder(lfd, ufd, entry)
                        n += 1
                _copy_attributes(lfd, ufd, os.fstat(lfd))
            os.removexattr(_proc(ufd), MARK)
            self._changed()         # a directory the native path may know as lower
        finally:
            if lfd is not None:
                os.close(lfd)
        log.debug("overlay: copied up directory %s (%d entries)", drel, n)

    def _placeholder(self, lfd, ufd, entry):
        try:
            if entry.is_dir(follow_symlinks=False):
                os.mkdir(entry.name, 0o700, dir_fd=ufd)
                # only the Sentry writes the upper layer: the name is still that directory
                os.setxattr(f"{_proc(ufd)}/{entry.name}", MARK, b"", follow_symlinks=False)
            else:
                # the entry's d_type tells the common kinds without an lstat
                kind = stat.S_IFREG if entry.is_file(follow_symlinks=False) else \
                    stat.S_IFLNK if entry.is_symlink() else stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode)
                self.placeholders.link(kind, ufd, entry.name)
        except FileExistsError:
            # made by a copy-up cut short (the directory is still marked, so
            # nothing in it can be the guest's): a directory may lack its mark
            if entry.is_dir(follow_symlinks=False):
                fd = os.open(entry.name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ufd)
                try:
                    _mark(fd)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            pass                         # gone from the lower layer meanwhile

    def _copy_up(self, rel, keep_data=True):
        """Replace rel's placeholder by a copy of the lower file, made in the
        work directory and renamed over it: once, and never seen half done."""
        parent, name = _split(rel)
        st = self.lower.lstat_direct(rel)
        tmp = f"{os.getpid()}.{next(_tmp_names)}"
        pfd = None
        try:
            if stat.S_ISREG(st.st_mode):
                self._copy_regular(rel, tmp, keep_data)
            else:
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(self.lower.readlink(rel), tmp, dir_fd=self.work)
                else:
                    os.mknod(tmp, st.st_mode, st.st_rdev, dir_fd=self.work)
                try:
                    os.chown(tmp, st.st_uid, st.st_gid, dir_fd=self.work, follow_symlinks=False)
                except PermissionError:
                    pass
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=self.work, follow_symlinks=False)
            pfd = openat2(self.upper.fd, parent, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            os.rename(tmp, name, src_dir_fd=self.work, dst_dir_fd=pfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=self.work)
            except OSError:
                pass
            raise
        finally:
            if pfd is not None:
                os.close(pfd)
        log.debug("overlay: copied up %s (%d bytes%s)", rel, st.st_size, "" if keep_data else ", truncated")

    def _copy_regular(self, rel, tmp, keep_data):
        src = openat2(self.lower.fd, rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            dst = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=self.work)
            try:
                if keep_data:
                    _copy_data(src, dst, st.st_size)
                _copy_attributes(src, dst, st)
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def _copy_up_tree(self, rel):
        """Copy up rel and everything beneath it (what a rename moves)."""
        layer, st = self.find(rel)
        if stat.S_ISDIR(st.st_mode):
            self._complete(rel)
            self._changed()
            fd = openat2(self.upper.fd, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                names = os.listdir(fd)
            finally:
                os.close(fd)
            for name in names:
                self._copy_up_tree(f"{rel}/{name}")
        elif layer is self.lower:
            self._copy_up(rel)
