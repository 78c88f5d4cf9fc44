#!/usr/bin/env python3
"""A READ flood on one tcp connection to a running ccm-early: greet as node
NODE (no key), then keep DEPTH READs of the whole status window in flight
for SECONDS, as fast as they are answered.  Prints one line:
"greeted=0|1 served=N refused=M closed=0|1".  Exits 0 whatever happened:
the test judges what the pair went through meanwhile.  LEN bytes a READ
(default: the whole window).
Usage: readflood.py HOST PORT NODE SECONDS [DEPTH [LEN]]"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tcpframes import CONN_REP, CONN_REQ, READ_REP, READ_REQ, frame, recv_frame  # noqa: E402


def main():
    host, port, node, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    depth = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    want = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    served = refused = 0
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(frame(CONN_REQ, struct.pack(">HHI", 1, 1, node), req_id=1))
    rep = recv_frame(s)
    if rep is None or rep[0] != CONN_REP or rep[1] != 0:
        print("greeted=0 served=0 refused=0 closed=1")
        return 0
    _, _, addr, rkey, length = struct.unpack(">HIQII", rep[2])
    req = frame(READ_REQ, struct.pack(">IIQ", rkey, want or length, addr), req_id=7)
    end = time.monotonic() + secs
    closed = 0
    try:
        s.sendall(req * depth)
        while time.monotonic() < end:
            r = recv_frame(s)
            if r is None:
                closed = 1
                break
            if r[0] == READ_REP and r[1] == 0:
                served += 1
            else:
                refused += 1
            s.sendall(req)
    except OSError:
        closed = 1
    print("greeted=1 served=%d refused=%d closed=%d" % (served, refused, closed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
