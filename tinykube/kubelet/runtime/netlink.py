"""Just enough rtnetlink for the pod network's per-pod work, without running ``ip``.

Starting ``ip`` costs a fork and an exec of the kubelet (a large process, so the fork
alone is milliseconds of CPU) plus a child-watcher thread, once per pod; under a burst of
pods those dominate the kubelet's event loop. The same requests sent on a NETLINK_ROUTE
socket cost microseconds of Python and the kernel's own time. The calls block (the kernel
serializes link changes on its rtnl lock anyway), so :func:`run` hands them to one
dedicated thread, keeping the event loop free while the kernel works.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 3, 4, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF = 1, 4
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST = 254, 3, 253, 1
IFF_UP = 0x1

_NLMSGHDR = struct.Struct("=LHHLL")
_IFINFOMSG = struct.Struct("=BxHiII")
_RTATTR = struct.Struct("=HH")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


class NetlinkError(OSError):
    """The kernel refused a request (``errno`` and ``strerror`` as for any OSError)."""


def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    """A NETLINK_ROUTE socket sending one request at a time and waiting for its ack."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> None:
        self.seq += 1
        seq = self.seq
        self.sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK,
                                      seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if length < _NLMSGHDR.size:
                    break
                if kind == NLMSG_ERROR and got_seq == seq:
                    code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return
                offset += (length + 3) & ~3

    def request_unless(self, benign: tuple[int, ...], msg_type: int, flags: int, body: bytes) -> bool:
        """`request`, returning False instead of raising when the kernel answers with one
        of the `benign` errnos (the object exists already, or is gone already)."""
        try:
            self.request(msg_type, flags, body)
        except NetlinkError as exc:
            if exc.errno in benign:
                return False
            raise
        return True

    def add_veth(self, name: str, peer: str, peer_netns_pid: int, *, mtu: int, master: int = 0,
                 up: bool = True) -> None:
        """``ip link add NAME mtu M [master M] [up] type veth peer name PEER mtu M netns PID``."""
        peer_info = _ifinfo() + _attr(IFLA_IFNAME, _name(peer)) + _attr(IFLA_MTU, _u32(mtu)) \
            + _attr(IFLA_NET_NS_PID, _u32(peer_netns_pid))
        linkinfo = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        attrs = _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MTU, _u32(mtu)) + _attr(IFLA_LINKINFO, linkinfo)
        if master:
            attrs += _attr(IFLA_MASTER, _u32(master))
        body = _ifinfo(flags=IFF_UP if up else 0, change=IFF_UP if up else 0) + attrs
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_bridge(self, name: str) -> bool:
        """``ip link add NAME type bridge``; False when it exists already."""
        linkinfo = _attr(IFLA_INFO_KIND, b"bridge")
        return self.request_unless((errno.EEXIST,), RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                   _ifinfo() + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_LINKINFO, linkinfo))

    def set_up(self, index: int) -> None:
        """``ip link set DEV up``."""
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP))

    def replace_address(self, index: int, ip: str, prefix: int) -> None:
        """``ip addr replace IP/PREFIX dev DEV`` (IPv4)."""
        packed = socket.inet_aton(ip)
        body = _IFADDRMSG.pack(socket.AF_INET, prefix, 0, 0, index) + _attr(IFA_LOCAL, packed) \
            + _attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body)

    def add_route(self, network: str, prefix: int, index: int) -> bool:
        """``ip route add NETWORK/PREFIX dev DEV`` (IPv4, scope link); False when a route to
        that destination exists already (it is left alone)."""
        body = _RTMSG.pack(socket.AF_INET, prefix, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST, 0) \
            + _attr(RTA_DST, socket.inet_aton(network)) + _attr(RTA_OIF, _u32(index))
        return self.request_unless((errno.EEXIST,), RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_link(self, name: str) -> bool:
        """``ip link del NAME``; False when there is no such link."""
        return self.request_unless((errno.ENODEV, errno.ENOENT), RTM_DELLINK, 0,
                                   _ifinfo() + _attr(IFLA_IFNAME, _name(name)))


_local = threading.local()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _socket() -> Netlink:
    nl = getattr(_local, "netlink", None)
    if nl is None:
        nl = _local.netlink = Netlink()
    return nl


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(_socket(), *args)


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(netlink, *args)`` on the netlink thread (one for the process: the kernel
    serializes link changes anyway, and one socket then serves every request)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinykube-netlink")
    return await asyncio.get_running_loop().run_in_executor(_executor, _call, fn, args)
