"""The tcp backend's frames (lib/proto/tcpwire.h), for the test tools that
speak them to a running ccm-early: hostile.py, keyless.py."""
import socket
import struct

MAGIC = 0x43434D54
CONN_REQ, CONN_REP, READ_REQ, READ_REP, WRITE_REQ, WRITE_REP, MSG, CONN_PROOF = range(1, 9)
EFAULT, EACCES, EINVAL = 14, 13, 22


def frame(ftype, body=b"", req_id=0, status=0, body_len=None):
    """A frame; body_len may lie about the body, to test the receiver."""
    n = len(body) if body_len is None else body_len
    return struct.pack(">IBBHII", MAGIC, 1, ftype, status, n, req_id) + body


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(s):
    """(type, status, body, req_id), or None once the peer closed."""
    try:
        hdr = recv_exact(s, 16)
        if hdr is None:
            return None
        _, _, ftype, status, n, req_id = struct.unpack(">IBBHII", hdr)
        body = recv_exact(s, n) if n else b""
    except (ConnectionResetError, socket.timeout):
        return None
    return ftype, status, body, req_id


def closed_by_peer(s):
    """True when the peer closes without sending one more byte."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
