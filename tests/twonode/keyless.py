#!/usr/bin/env python3
"""A host without the pre-shared key, speaking the real tcp wire format
(tcpwire.h, wire.h, status.h) against keepers that hold one.

  keyless.py attack HOST PORT NODE KEY_ID
      Connect to the keeper at HOST:PORT claiming to be NODE, its partner,
      and try everything that worked before the transport was authenticated:
      a plain greeting; a keyed greeting naming the real key id (no secret:
      status prints it) and then, without a proof, READ the status window,
      WRITE its mailbox, send BYE, DECLINE, LINK_JOIN and a client message
      (a monitor's heartbeat is one); a forged proof; a forged sealed frame.  Each must be refused before it touches
      anything: the connection answers EACCES or is dropped, and not one
      byte of the node's memory comes back.  Exit 0 if every answer was so.

  keyless.py impostor HOST PORT NODE EPOCH SECONDS
      Listen at HOST:PORT (a dead partner's address) for SECONDS and pose as
      NODE with EPOCH: answer every greeting, and serve READs of a status
      block whose heartbeat keeps counting -- forged heartbeats that would
      hide the partner's death.  Prints how many READs it served.
"""
import os
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tcpframes import (CONN_PROOF, CONN_REP, CONN_REQ, EACCES, MSG,  # noqa: E402
                       READ_REP, READ_REQ, WRITE_REP, WRITE_REQ, closed_by_peer, frame,
                       recv_frame)

WIRE_MAGIC, WIRE_FORMAT = 0x43434D58, 2
WIRE_DECLINE, WIRE_BYE, WIRE_PORT_MSG, WIRE_LINK_JOIN = 5, 6, 7, 9
DECLINE_AUTH_FAILED = 3


def wire(mtype, body):
    return struct.pack(">IBBHIII", WIRE_MAGIC, WIRE_FORMAT, mtype, 0, len(body), 1, 1) + body


def wstr(s):
    return bytes([len(s)]) + s.encode()


def dropped_after(s, *frames):
    """Send frames; True when the peer drops the connection without one
    byte in answer (a reset while we still send counts: it is the drop)."""
    try:
        for f in frames:
            s.sendall(f)
    except (BrokenPipeError, ConnectionResetError):
        return True
    return closed_by_peer(s)


def conn_req(node, key_id=None):
    body = struct.pack(">HHI", 1, 1, node)
    if key_id is not None:
        body += key_id + os.urandom(32)
    return frame(CONN_REQ, body, req_id=1)


def attack(host, port, node, key_id):
    results = []

    def check(name, ok):
        results.append(ok)
        print(("held" if ok else "FAIL") + " - " + name, flush=True)

    def dial():
        return socket.create_connection((host, port), timeout=5)

    def keyed_greeting():
        """A keyed greeting naming the real key: the node answers with its
        proof and status window, which the attacker cannot use."""
        s = dial()
        s.sendall(conn_req(node, key_id))
        rep = recv_frame(s)
        ok = rep is not None and rep[0] == CONN_REP and rep[1] == 0 and len(rep[2]) == 86
        rkey = struct.unpack(">I", rep[2][14:18])[0] if ok else 0
        return s, ok, rkey

    s = dial()
    s.sendall(conn_req(node))
    rep = recv_frame(s)
    check("a greeting without a key: answered EACCES",
          rep is not None and rep[0] == CONN_REP and rep[1] == EACCES and rep[2] == b"")
    check("... and dropped", closed_by_peer(s))
    s.close()

    s = dial()
    s.sendall(conn_req(node, b"\x01" * 8))
    rep = recv_frame(s)
    check("a greeting naming a key the node does not hold: EACCES",
          rep is not None and rep[1] == EACCES)
    s.close()

    mbox = struct.pack(">IBBHQQI", 0x43434D4D, 6, 4, 0, 1, 1, node)
    mbox += struct.pack(">I", zlib.crc32(mbox))
    bye = wire(WIRE_BYE, struct.pack(">H", 0))
    join = wire(WIRE_LINK_JOIN, bytes([1]) + struct.pack(">H", 1) + wstr("alpha") +
                struct.pack(">HQII", 0, 0, 1, 4096))
    decline = wire(WIRE_DECLINE, struct.pack(">H", DECLINE_AUTH_FAILED) + wstr("forged"))
    pmsg = wire(WIRE_PORT_MSG, wstr("fmon") + struct.pack(">HQH", 0, 1, 5) + b"forge")
    unproven = [
        ("READ of the status window", lambda k: frame(READ_REQ, struct.pack(">IIQ", k, 64, 0), 2)),
        ("WRITE of the mailbox", lambda k: frame(WRITE_REQ, struct.pack(">IIQ", k, 32, 32) + mbox, 3)),
        ("BYE", lambda k: frame(MSG, bye)),
        ("DECLINE (authentication failed)", lambda k: frame(MSG, decline)),
        ("LINK_JOIN", lambda k: frame(MSG, join)),
        ("a client message", lambda k: frame(MSG, pmsg)),
    ]
    for name, make in unproven:
        s, ok, rkey = keyed_greeting()
        check("keyed greeting naming the real key id: the node proves itself", ok)
        check(name + " without a proof: dropped, nothing answered", dropped_after(s, make(rkey)))
        s.close()

    s, ok, rkey = keyed_greeting()
    check("a forged proof, then a READ with a made-up tag: dropped, nothing read",
          dropped_after(s, frame(CONN_PROOF, os.urandom(32)),
                        frame(READ_REQ, struct.pack(">IIQ", rkey, 64, 0), 4) + os.urandom(16)))
    s.close()

    s, ok, rkey = keyed_greeting()
    check("a forged proof, then a sealed-looking BYE: dropped",
          dropped_after(s, frame(CONN_PROOF, os.urandom(32)), frame(MSG, bye) + os.urandom(16)))
    s.close()
    sys.exit(0 if all(results) else 1)


def status_block(node, epoch, heartbeat):
    own = struct.pack(">IHBBIIQI", 0x43434D53, 1, 6, 3, node, 0, epoch, heartbeat)
    own += struct.pack(">I", zlib.crc32(own))
    return own + b"\0" * 32


def impostor(host, port, node, epoch, seconds):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(8)
    ls.settimeout(0.2)
    conns, reads, heartbeat = [], 0, 1000
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
            c.settimeout(0.05)
            conns.append(c)
        except socket.timeout:
            pass
        for c in list(conns):
            try:
                f = recv_frame(c)
            except (OSError, struct.error):
                f = None
            if f is None:
                continue
            ftype, _, body, req = f
            try:
                if ftype == CONN_REQ:
                    rep = struct.pack(">HIQII", 1, node, 0, 0, 4096)
                    if len(body) == 48:       # keyed: a proof we cannot make
                        rep += os.urandom(64)
                    c.sendall(frame(CONN_REP, rep, req))
                elif ftype == READ_REQ:
                    _, n, addr = struct.unpack(">IIQ", body)
                    heartbeat += 1
                    blk = (status_block(node, epoch, heartbeat) + b"\0" * 4096)[addr:addr + n]
                    c.sendall(frame(READ_REP, blk, req))
                    reads += 1
                elif ftype == WRITE_REQ:
                    c.sendall(frame(WRITE_REP, b"", req))
            except OSError:
                conns.remove(c)
    print("impostor served %d READs" % reads, flush=True)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "attack":
        attack(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), bytes.fromhex(sys.argv[5]))
    elif len(sys.argv) == 7 and sys.argv[1] == "impostor":
        impostor(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                 float(sys.argv[6]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
