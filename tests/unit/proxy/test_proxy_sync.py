"""The change tracker and partial syncs: a sync rewrites only what changed."""

from __future__ import annotations

from tinykube.testing.services import endpoint_slice, service
from tinykube.proxy.iptables.proxier import IptablesProxier
from tinykube.proxy.iptables.restore import parse_chains
from tinykube.proxy.iptables.rules import RuleConfig, svc_chain
from tinykube.proxy.model import service_ports

CFG = RuleConfig(cluster_cidr="10.244.0.0/16")


def chains_in(text: str) -> set[str]:
    return {line[1:].split()[0] for line in text.splitlines() if line.startswith(":")}


def deleted_in(text: str) -> set[str]:
    return {line.split()[1] for line in text.splitlines() if line.startswith("-X ")}


def populated(n: int) -> IptablesProxier:
    proxier = IptablesProxier(CFG)
    for i in range(n):
        proxier.tracker.service_updated(service(f"s{i}", f"10.96.1.{i + 1}"))
        proxier.tracker.slice_updated(endpoint_slice(f"s{i}", [f"10.244.1.{i + 1}"]))
    return proxier


async def test_first_sync_is_full_and_writes_every_chain() -> None:
    proxier = populated(5)
    result = await proxier.sync()
    assert result.full
    declared = [line for line in result.text.splitlines() if line.startswith(":")]
    # 5 SVC + 5 SEP + base/top-level (nat: SERVICES, NODEPORTS, MARK-MASQ, POSTROUTING,
    # PROXY-CANARY; filter: SERVICES, EXTERNAL-SERVICES, FORWARD, PROXY-CANARY)
    assert len(declared) == 10 + 9


async def test_endpoint_change_rewrites_only_that_services_chains() -> None:
    proxier = populated(5)
    await proxier.sync()
    proxier.tracker.slice_updated(endpoint_slice("s2", ["10.244.1.3", "10.244.9.9"]))
    result = await proxier.sync()
    assert not result.full
    target = svc_chain(CFG, service_ports(service("s2", "10.96.1.3"))[0])
    written = chains_in(result.text)
    assert target in written
    assert {c for c in written if c.startswith("KUBE-SVC-")} == {target}
    assert len([c for c in written if c.startswith("KUBE-SEP-")]) == 1  # the new endpoint only
    assert "KUBE-SERVICES" not in written  # unchanged top-level chains are not rewritten


async def test_removed_endpoint_chain_is_deleted() -> None:
    proxier = populated(1)
    proxier.tracker.slice_updated(endpoint_slice("s0", ["10.244.1.1", "10.244.1.2"]))
    await proxier.sync()
    proxier.tracker.slice_updated(endpoint_slice("s0", ["10.244.1.1"]))
    result = await proxier.sync()
    assert len(deleted_in(result.text)) == 1
    assert all(c.startswith("KUBE-SEP-") for c in deleted_in(result.text))


async def test_deleting_a_service_deletes_its_chains_and_its_jump() -> None:
    proxier = populated(3)
    await proxier.sync()
    proxier.tracker.service_updated(None, key="default/s1")
    result = await proxier.sync()
    gone = deleted_in(result.text)
    assert len(gone) == 2 and svc_chain(CFG, service_ports(service("s1", "10.96.1.2"))[0]) in gone
    assert "KUBE-SERVICES" in chains_in(result.text)  # its jump leaves KUBE-SERVICES
    assert "10.96.1.2" not in result.text.split("-X")[0]


async def test_sync_without_changes_writes_nothing() -> None:
    proxier = populated(3)
    await proxier.sync()
    result = await proxier.sync()
    assert result.text == "" and result.chains_written == 0


async def test_endpoints_before_service_are_used_when_the_service_arrives() -> None:
    proxier = IptablesProxier(CFG)
    proxier.tracker.slice_updated(endpoint_slice("late", ["10.244.3.3"]))
    await proxier.sync()
    proxier.tracker.service_updated(service("late", "10.96.3.3"))
    result = await proxier.sync()
    assert "--to-destination 10.244.3.3:8080" in result.text


async def test_slice_moving_between_services_updates_both() -> None:
    proxier = populated(2)
    await proxier.sync()
    moved = endpoint_slice("s1", ["10.244.1.1"], name="s0-abcde")  # s0's slice relabelled to s1
    proxier.tracker.slice_updated(moved)
    applied = proxier.tracker.apply(proxier.snapshot)
    assert applied.port_keys == {"default/s0:http", "default/s1:http"}
    assert proxier.snapshot.endpoints["default/s0:http"] == ()


async def test_failed_restore_forces_a_full_sync_next() -> None:
    class Failing:
        calls = 0

        async def restore(self, text: str) -> None:
            from tinykube.proxy.iptables.runner import IptablesError
            Failing.calls += 1
            raise IptablesError("boom")

        async def save(self, table: str) -> str:
            return ""

        async def ensure_rule(self, *args: object) -> bool:
            return False

    proxier = IptablesProxier(CFG, Failing(), clear_conntrack=False)  # type: ignore[arg-type]
    proxier.tracker.service_updated(service("a", "10.96.0.1"))
    try:
        await proxier.sync()
    except RuntimeError:
        pass
    assert proxier.applied is None
    proxier.iptables = None
    assert (await proxier.sync()).full


def test_parse_chains_keeps_only_prefixed_ones() -> None:
    save = "*nat\n:PREROUTING ACCEPT [0:0]\n:TKA-SERVICES - [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"
    assert parse_chains(save, "TKA-") == {"TKA-SERVICES"}


def test_stale_udp_flows_when_endpoints_go_and_when_a_service_gains_its_first() -> None:
    from tinykube.proxy.conntrack import stale_flows
    from tinykube.proxy.model import Endpoint

    udp = service_ports(service("dns", "10.96.0.10", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))[0]
    a, b = Endpoint("10.244.0.2", 53), Endpoint("10.244.0.3", 53)
    flows = stale_flows(udp, (a, b), (b,))
    assert flows.endpoints == {("10.96.0.10", "10.244.0.2")} and not flows.services
    assert stale_flows(udp, (), (a,)).services == {"10.96.0.10"}
    assert stale_flows(None, (a,), (), old_port=udp).endpoints == {("10.96.0.10", "10.244.0.2")}
    tcp = service_ports(service("web", "10.96.0.11"))[0]
    assert not stale_flows(tcp, (a, b), ())


class RecordingIptables:
    """Stands in for the iptables binaries: records restores, answers chain checks."""

    def __init__(self) -> None:
        self.restores: list[str] = []
        self.canary_present = True

    async def restore(self, text: str) -> None:
        self.restores.append(text)

    async def save(self, table: str) -> str:
        return ""

    async def ensure_rule(self, *args: object) -> bool:
        return False

    async def chain_exists(self, table: str, chain: str) -> bool:
        return self.canary_present


async def test_flushed_tables_are_noticed_by_the_canary_and_resynced_in_full() -> None:
    fake = RecordingIptables()
    proxier = IptablesProxier(CFG, fake, clear_conntrack=False)  # type: ignore[arg-type]
    proxier.tracker.service_updated(service("a", "10.96.0.1"))
    assert (await proxier.sync()).full
    assert not (await proxier.sync()).full  # canary there: nothing to do
    fake.canary_present = False
    result = await proxier.sync()
    assert result.full and "KUBE-PROXY-CANARY" in result.text


async def test_a_full_sync_happens_at_least_hourly() -> None:
    proxier = populated(1)
    assert (await proxier.sync()).full
    proxier.last_full_sync -= 3601
    assert (await proxier.sync()).full
