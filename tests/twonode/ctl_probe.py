#!/usr/bin/env python3
"""Speak to a keeper, or pose as systemd's notify socket, for test_keeper.sh.

  ctl_probe.py status SOCKET      send CTL_STATUS, print the JSON reply
  ctl_probe.py notify PATH SECS   bind a notify socket at PATH and print every
                                  datagram that arrives within SECS seconds
  ctl_probe.py flood SOCKET N SECS
                                  open N idle connections, print "opened
                                  held=K" (K: those the keeper kept open)
                                  and hold them for SECS seconds
  ctl_probe.py sendflood SECS     under `ccm-early exec`: send CTL_SEND on
                                  port 0 as fast as the socket takes them,
                                  ignoring the window, never reading, for
                                  SECS seconds or until the keeper closes
                                  us; print "sent=N closed=0|1".  Message n
                                  is what ccm-msgflow sends as its nth
  ctl_probe.py saturate           under `ccm-early exec`: make every port's
                                  event fd as hostile as a client can (an
                                  eventfd's counter saturated, a pipe shrunk
                                  to one page, O_NONBLOCK cleared on our
                                  copy), print "saturated KIND..." and sleep
"""
import errno
import fcntl
import json
import os
import socket
import struct
import sys
import time

CTL_STATUS, CTL_STATUS_REPLY = 5, 69


def status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.send(struct.pack("=HHI", CTL_STATUS, 0, 0))
    data = s.recv(8 + 4096)
    typ, flags, length = struct.unpack("=HHI", data[:8])
    if typ != CTL_STATUS_REPLY or flags or length != len(data) - 8:
        sys.exit("bad reply: type %d flags %d length %d of %d" % (typ, flags, length, len(data) - 8))
    print(json.dumps(json.loads(data[8:].decode()), sort_keys=True))


def notify(path, secs):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    print("listening", flush=True)
    end = time.time() + secs
    while time.time() < end:
        try:
            print(s.recv(4096).decode().replace("\n", "|"), flush=True)
        except socket.timeout:
            pass


def flood(path, n, secs):
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        conns.append(s)
    time.sleep(0.5)
    held = 0
    for s in conns:
        try:
            s.recv(8 + 4096, socket.MSG_DONTWAIT)  # CTL_ERROR or EOF: refused
        except BlockingIOError:
            held += 1
        except OSError:
            pass
    print("opened held=%d" % held, flush=True)
    time.sleep(secs)


CTL_SEND = 4


def sendflood(secs):
    names = os.environ["LISTEN_FDNAMES"].split(":")
    s = socket.socket(fileno=3 + names.index("ccm.control"))
    s.setblocking(False)
    sent, closed = 0, 0
    end = time.time() + secs
    while time.time() < end:
        n = sent + 1
        body = n.to_bytes(8, "big") + bytes((n * 31 + i) & 0xff for i in range(8, 64))
        payload = struct.pack("=IHH", n, 0, 0) + body
        try:
            s.send(struct.pack("=HHI", CTL_SEND, 0, len(payload)) + payload)
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:       # EPIPE, ECONNRESET: the keeper closed us
            closed = 1
            break
    print("sent=%d closed=%d" % (sent, closed), flush=True)


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def saturate():
    names = os.environ["LISTEN_FDNAMES"].split(":")
    kinds = []
    for i, name in enumerate(names):
        if not name.startswith("ccm.event."):
            continue
        fd = 3 + i
        try:
            os.write(fd, struct.pack("=Q", 0xfffffffffffffffe))
            kinds.append("eventfd")
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
            fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)  # a read end: as small as it goes
            kinds.append("pipe")
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
    print("saturated " + " ".join(kinds), flush=True)
    time.sleep(3600)   # attached, never reading


if __name__ == "__main__":
    if sys.argv[1] == "status":
        status(sys.argv[2])
    elif sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "sendflood":
        sendflood(float(sys.argv[2]))
    elif sys.argv[1] == "saturate":
        saturate()
    else:
        notify(sys.argv[2], float(sys.argv[3]))
