"""sentry as an OCI runtime (runc's command line): podman and containerd run
containers in sentry sandboxes through it.

  state.py     the state store: one directory per container under --root,
               written atomically under a lock, status read from liveness
  spec.py      config.json -> the sandbox's Config; entrypoint check; `spec`
  console.py   --console-socket: a pty whose master is sent over SCM_RIGHTS
  commands.py  create, start, state, kill, delete, run, list, ps, spec,
               features (and the ones not supported yet, with a clear error)
  hooks.py     config.json's hooks: where each kind runs, its state on stdin
  seccomp.py   linux.seccomp -> the guest's own filter, under the Sentry's
  log.py       --log / --log-format json: error lines podman reads back

The container process (the pid in --pid-file, the one conmon reaps) is the
Sentry itself: it sets the sandbox up during `create`; the guest's first
process waits on exec.fifo for `start`; the Sentry exits with the guest's
status.
"""
OCI_VERSION = "1.0.2"
