from tinykube.kubelet.runtime.dnsfiles import hosts_file, resolv_conf
from tinykube.kubelet.runtime.interface import PodSandboxConfig
from tinykube.kubelet.runtime.logs import LogOptions, parse_line, read_log, select_records
from tinykube.kubelet.runtime.shim import CRILogWriter, rfc3339nano


def test_cri_writer_full_and_partial_lines(tmp_path):
    path = tmp_path / "0.log"
    w = CRILogWriter(str(path))
    w.feed("stdout", b"one\ntw")
    w.feed("stdout", b"o\n")
    w.feed("stderr", b"x" * (16 * 1024 + 3))
    w.flush("stderr")
    lines = path.read_bytes().split(b"\n")[:-1]
    records = [parse_line(line) for line in lines]
    assert [(r.stream, r.partial, r.content[:3]) for r in records] == [
        ("stdout", False, b"one"), ("stdout", False, b"two"), ("stderr", True, b"xxx"), ("stderr", False, b"xxx")]
    assert records[0].timestamp.endswith("Z") and len(records[0].timestamp.split(".")[1]) == 10


def test_rfc3339nano():
    assert rfc3339nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"


def write_log(path, lines):
    path.write_text("".join(f"2024-01-01T00:00:{i:02d}.000000000Z stdout F {text}\n" for i, text in enumerate(lines)))


async def collect(path, opts):
    return b"".join([chunk async for chunk in read_log(str(path), opts)])


async def test_read_options(tmp_path):
    path = tmp_path / "0.log"
    write_log(path, ["a", "b", "c", "d"])
    assert await collect(path, LogOptions()) == b"a\nb\nc\nd\n"
    assert await collect(path, LogOptions(tail_lines=2)) == b"c\nd\n"
    assert await collect(path, LogOptions(tail_lines=0)) == b""
    assert await collect(path, LogOptions(limit_bytes=3)) == b"a\nb"
    stamped = await collect(path, LogOptions(tail_lines=1, timestamps=True))
    assert stamped == b"2024-01-01T00:00:03.000000000Z d\n"
    from tinykube.kubelet.runtime.logs import parse_rfc3339nano
    since = parse_rfc3339nano("2024-01-01T00:00:02Z")
    assert await collect(path, LogOptions(since_time=since)) == b"c\nd\n"


def test_tail_counts_partial_runs_as_one_line():
    lines = [b"t stdout P par", b"t stdout F tial", b"t stdout F last"]
    assert [r.content for r in select_records(lines, LogOptions(tail_lines=2))] == [b"par", b"tial", b"last"]


def test_pod_files():
    cfg = PodSandboxConfig(name="web-0", namespace="shop", uid="u", hostname="web-0", subdomain="web",
                           dns_servers=["10.96.0.10"],
                           dns_searches=["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                           dns_options=["ndots:5"], host_aliases=[("10.1.2.3", ["foo.local", "bar.local"])])
    hosts = hosts_file(cfg, "10.244.0.5")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.244.0.5\tweb-0.web.shop.svc.cluster.local\tweb-0\n" in hosts
    assert "# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n" in hosts
    assert resolv_conf(cfg) == ("nameserver 10.96.0.10\n"
                                "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                                "options ndots:5\n")
