#!/usr/bin/env python3
"""Speak to a keeper, or pose as systemd's notify socket, for test_keeper.sh.

  ctl_probe.py status SOCKET      send CTL_STATUS, print the JSON reply
  ctl_probe.py notify PATH SECS   bind a notify socket at PATH and print every
                                  datagram that arrives within SECS seconds
"""
import json
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


if __name__ == "__main__":
    if sys.argv[1] == "status":
        status(sys.argv[2])
    else:
        notify(sys.argv[2], float(sys.argv[3]))
