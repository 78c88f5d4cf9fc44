#!/usr/bin/env python3
"""A hostile partner for the tcp backend: connects to a running ccm-early
and sends it malformed and out-of-bounds frames.  Exits 0 when every
answer was the one a careful NIC would give (an error status, or the
connection dropped), 1 otherwise.  Usage: hostile.py HOST PORT"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tcpframes import (CONN_REP, CONN_REQ, EFAULT, EINVAL, MSG, READ_REP,  # noqa: E402
                       READ_REQ, WRITE_REP, WRITE_REQ, closed_by_peer, frame, recv_frame)


def dial(host, port):
    s = socket.create_connection((host, port), timeout=5)
    return s


def greet(s):
    s.sendall(frame(CONN_REQ, struct.pack(">HHI", 1, 1, 99), req_id=1))
    ftype, status, body, _ = recv_frame(s)
    assert ftype == CONN_REP and status == 0, (ftype, status)
    proto, node, addr, rkey, length = struct.unpack(">HIQII", body)
    return addr, rkey, length


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    results = []

    def check(name, ok):
        results.append(ok)
        print(("ok" if ok else "FAIL") + " - " + name)

    s = dial(host, port)
    s.sendall(b"\xde\xad\xbe\xef" * 16)
    check("garbage bytes: connection dropped", closed_by_peer(s))
    s.close()

    s = dial(host, port)
    s.sendall(frame(MSG, body_len=0xFFFFFFFF))
    check("4 GiB body length: connection dropped", closed_by_peer(s))
    s.close()

    s = dial(host, port)
    s.sendall(frame(READ_REQ, struct.pack(">IIQ", 0, 32, 0), req_id=5))
    check("READ before CONN_REQ: connection dropped", closed_by_peer(s))
    s.close()

    s = dial(host, port)
    addr, rkey, length = greet(s)
    s.sendall(frame(READ_REQ, struct.pack(">IIQ", rkey, 64, addr + length - 8), req_id=2))
    ftype, status, body, req = recv_frame(s)
    check("READ past the window: EFAULT, no data", ftype == READ_REP and status == EFAULT
          and body == b"" and req == 2)
    s.sendall(frame(READ_REQ, struct.pack(">IIQ", rkey + 1000, 8, 0), req_id=3))
    ftype, status, body, req = recv_frame(s)
    check("READ with an unknown rkey: EINVAL", ftype == READ_REP and status == EINVAL)
    s.sendall(frame(READ_REQ, struct.pack(">IIQ", rkey, 8, 2**64 - 4), req_id=4))
    ftype, status, body, req = recv_frame(s)
    check("READ at an address that wraps: EFAULT", ftype == READ_REP and status == EFAULT)
    junk = b"\x43\x43\x4d\x4d" + b"\x07" * 28
    s.sendall(frame(WRITE_REQ, struct.pack(">IIQ", rkey, 32, addr + 32) + junk, req_id=5))
    ftype, status, body, req = recv_frame(s)
    check("WRITE of a corrupt mailbox is accepted like a NIC would",
          ftype == WRITE_REP and status == 0)
    s.sendall(frame(MSG, b"not a message at all"))
    s.sendall(frame(CONN_REQ, struct.pack(">HHI", 1, 1, 99), req_id=6))
    check("a second CONN_REQ: connection dropped", closed_by_peer(s))
    s.close()

    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
