"""`tinykube dns` as its own process: answers, creates kube-dns, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

from dnslib import QTYPE

from tinykube.dns.client import query


async def test_dns_process_answers_and_creates_the_kube_dns_service(apiserver) -> None:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube", "dns", "--kubeconfig", apiserver.kubeconfig, "--port", "0",
        "--health-port", "0", "--ready-port", "0", "--metrics-port", "0",
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"on 127\.0\.0\.1:(\d+) \(udp\+tcp\)", line)
        assert match, line
        port = int(match.group(1))
        client = apiserver.client()
        try:
            svc = await client.resource("services").get("kube-dns", namespace="kube-system")
        finally:
            await client.close()
        assert svc["spec"]["clusterIP"] == "10.96.0.10"
        # the Service is created before the informers' first list, so it is answered at once
        reply = await query("127.0.0.1", port, "kube-dns.kube-system.svc.cluster.local", "A")
        assert [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A] == ["10.96.0.10"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
