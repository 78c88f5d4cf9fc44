#!/usr/bin/env python3
"""Run under `ccm-early exec CLIENT -- python3 listenfds_probe.py`: describe
the fds handed over as LISTEN_FDS, one line each, for test_keeper.sh.

  LISTEN_FDS=N LISTEN_FDNAMES=...
  pid ok | pid mismatch LISTEN_PID=X getpid=Y
  fd 3 ccm.control socket seqpacket inheritable
  fd 4 ccm.window.0 memfd 4096 inheritable
  fd 5 ccm.event.0 pipe read-only inheritable
  fd 6 closed                          (the first fd after the hand-over)
  fds 0 1 2 3 4 5                      (every fd open)

With --fds, only the last line (what a command gets without exec).

Exit status 0 when the environment is there at all; the test judges the
lines.  Only the standard library, and nothing opened before the fds are
looked at, so no fd of ours can be mistaken for one handed over."""
import fcntl
import os
import socket
import stat
import sys


def describe(fd, name):
    try:
        st = os.fstat(fd)
    except OSError as e:
        return f"fd {fd} closed" if name is None else f"fd {fd} {name} error {e.strerror}"
    inh = "inheritable" if os.get_inheritable(fd) else "cloexec"
    target = os.readlink(f"/proc/self/fd/{fd}")
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=fd)
        try:
            kind = {socket.SOCK_SEQPACKET: "seqpacket", socket.SOCK_STREAM: "stream",
                    socket.SOCK_DGRAM: "dgram"}.get(s.type, str(s.type))
        finally:
            s.detach()
        what = f"socket {kind}"
    elif target.startswith("/memfd:"):
        what = f"memfd {st.st_size}"
    elif target == "anon_inode:[eventfd]":
        what = "eventfd"
    elif target.startswith("pipe:"):
        acc = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        what = "pipe " + ("read-only" if acc == os.O_RDONLY else "writable")
    else:
        what = f"other {target} {st.st_size}"
    return f"fd {fd} {name or '?'} {what} {inh}"


def open_fds():
    """Every open fd, found by fstat alone: listing /proc/self/fd would
    open one more."""
    fds = []
    for fd in range(0, 1024):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(str(fd))
    return "fds " + " ".join(fds)


def main():
    if sys.argv[1:] == ["--fds"]:
        print(open_fds())
        return 0
    fds = open_fds()
    n = os.environ.get("LISTEN_FDS")
    names = os.environ.get("LISTEN_FDNAMES", "")
    lpid = os.environ.get("LISTEN_PID")
    if n is None or lpid is None:
        print("no LISTEN_FDS or LISTEN_PID")
        return 1
    lines = [f"LISTEN_FDS={n} LISTEN_FDNAMES={names}"]
    lines.append("pid ok" if lpid == str(os.getpid())
                 else f"pid mismatch LISTEN_PID={lpid} getpid={os.getpid()}")
    split = names.split(":")
    count = int(n)
    for i in range(count):
        lines.append(describe(3 + i, split[i] if i < len(split) else "?"))
    lines.append(describe(3 + count, None))
    lines.append(fds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
