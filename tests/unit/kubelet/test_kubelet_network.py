"""The pod network's host-local IPAM and the rtnetlink requests it sends instead of ``ip``."""

from __future__ import annotations

import ipaddress
import socket
import struct

from tinykube.kubelet.runtime import netlink
from tinykube.kubelet.runtime.network import IPAM


def test_ipam_hands_out_the_lowest_free_address_but_the_gateway(tmp_path):
    ipam = IPAM(ipaddress.ip_network("10.9.0.0/29"), directory=str(tmp_path / "ipam"))
    got = [ipam.allocate(f"sb{i}") for i in range(3)]
    assert got == ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
    ipam.release("10.9.0.3")
    assert ipam.allocate("again") == "10.9.0.3"
    (tmp_path / "ipam" / "10.9.0.5").write_text("other-kubelet 1\n")  # reserved by a live process (init)
    assert ipam.allocate("next") == "10.9.0.6"


def test_ipam_of_a_large_subnet_does_not_list_it(tmp_path):
    ipam = IPAM(ipaddress.ip_network("10.0.0.0/8"), directory=str(tmp_path / "ipam"))
    assert ipam.allocate("a") == "10.0.0.2"


def _attrs(data: bytes) -> dict[int, bytes]:
    out, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        out[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def test_veth_request_carries_peer_namespace_master_and_up(monkeypatch):
    sent: list[tuple[int, int, bytes]] = []
    nl = netlink.Netlink.__new__(netlink.Netlink)
    monkeypatch.setattr(nl, "request", lambda kind, flags, body: sent.append((kind, flags, body)), raising=False)
    nl.add_veth("vethabc", "eth0", 4242, mtu=1400, master=7)
    kind, flags, body = sent[0]
    assert kind == netlink.RTM_NEWLINK and flags & netlink.NLM_F_CREATE and flags & netlink.NLM_F_EXCL
    _family, _type, _index, ifi_flags, change = struct.unpack_from("=BxHiII", body)
    assert ifi_flags & netlink.IFF_UP and change & netlink.IFF_UP
    attrs = _attrs(body[16:])
    assert attrs[netlink.IFLA_IFNAME] == b"vethabc\0"
    assert struct.unpack("=I", attrs[netlink.IFLA_MTU])[0] == 1400
    assert struct.unpack("=I", attrs[netlink.IFLA_MASTER])[0] == 7
    info = _attrs(attrs[netlink.IFLA_LINKINFO])
    assert info[netlink.IFLA_INFO_KIND] == b"veth"
    peer = _attrs(_attrs(info[netlink.IFLA_INFO_DATA])[netlink.VETH_INFO_PEER][16:])
    assert peer[netlink.IFLA_IFNAME] == b"eth0\0"
    assert struct.unpack("=I", peer[netlink.IFLA_NET_NS_PID])[0] == 4242


def test_route_and_address_requests(monkeypatch):
    sent: list[tuple[int, int, bytes]] = []
    nl = netlink.Netlink.__new__(netlink.Netlink)
    monkeypatch.setattr(nl, "request", lambda kind, flags, body: sent.append((kind, flags, body)), raising=False)
    nl.replace_address(3, "10.9.0.1", 24)
    nl.add_route("10.96.0.0", 12, 3)
    (akind, aflags, abody), (rkind, rflags, rbody) = sent
    assert akind == netlink.RTM_NEWADDR and aflags & netlink.NLM_F_REPLACE
    assert struct.unpack_from("=BBBBI", abody) == (socket.AF_INET, 24, 0, 0, 3)
    assert _attrs(abody[8:])[netlink.IFA_LOCAL] == socket.inet_aton("10.9.0.1")
    assert rkind == netlink.RTM_NEWROUTE and rflags & netlink.NLM_F_EXCL
    assert struct.unpack_from("=BBBBBBBBI", rbody)[:2] == (socket.AF_INET, 12)
    rattrs = _attrs(rbody[12:])
    assert rattrs[netlink.RTA_DST] == socket.inet_aton("10.96.0.0")
    assert struct.unpack("=I", rattrs[netlink.RTA_OIF])[0] == 3
