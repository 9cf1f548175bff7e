#!/usr/bin/env python3
"""WAN delay line of the two-site lab (tests/lab/sites.ts), for kernels without tc netem.

Runs inside the lab's router namespace: it creates two tun devices, reads every packet the router
sends into `wanin` (policy routing sends everything it forwards between locations there) and
writes it back into `wanout` DELAY_MS later, in order; the kernel then routes it to its
destination leg. So traffic between two locations is delayed once each way, and traffic within a
site (which never reaches the router) not at all. At most MAX_QUEUED packets wait: beyond, new
ones are dropped, as a full link would.

Usage: wan_delay.py DELAY_MS PID_FILE   (the PID file is written once both devices exist)
"""
import collections
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_QUEUED = 50_000


def tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def main() -> None:
    # Whatever the starter held open (flock(1)'s lock of a test run, its pipes) is not ours: a
    # leftover delay line must not keep another run waiting on a lock.
    os.closerange(3, 1024)
    delay = float(sys.argv[1]) / 1000.0
    pid_file = sys.argv[2]
    wanin = tun("wanin")
    wanout = tun("wanout")
    with open(pid_file + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(pid_file + ".tmp", pid_file)
    queue: collections.deque = collections.deque()
    while True:
        timeout = None if not queue else max(0.0, queue[0][0] - time.monotonic())
        ready, _, _ = select.select([wanin], [], [], timeout)
        if ready:
            while True:
                try:
                    packet = os.read(wanin, 65535)
                except BlockingIOError:
                    break
                if len(queue) < MAX_QUEUED:
                    queue.append((time.monotonic() + delay, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            try:
                os.write(wanout, queue.popleft()[1])
            except OSError:
                pass  # The device is going down with the lab.


if __name__ == "__main__":
    main()
