"""``tinykube apiserver``: kube-apiserver's flags mapped onto APIServerConfig.

Runs until SIGTERM or SIGINT, then stops cleanly (listeners, watches, store).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import signal

import click

from tinykube.apiserver.server import DEFAULT_ADMISSION_PLUGINS, APIServer, APIServerConfig


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("apiserver")
@click.option("--store", "store_url", default="memory://", show_default=True,
              help="sqlite://PATH, etcd://HOST:PORT[,HOST:PORT...] or memory://")
@click.option("--etcd-servers", default="", help="Same as --store etcd://..., as upstream "
              "spells it (comma-separated http://HOST:PORT).")
@click.option("--secure-port", default=6443, show_default=True, type=int,
              help="Port to serve on (0 picks a free one).")
@click.option("--bind-address", default="127.0.0.1", show_default=True)
@click.option("--advertise-address", default=None,
              help="Address published in the kubernetes Service's endpoints.")
@click.option("--write-kubeconfig", default=None, type=click.Path(dir_okay=False),
              help="Write a kubeconfig for this server to this path.")
@click.option("--token-file", "--token-auth-file", "token_file", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Static tokens: CSV token,user,uid,\"group1,group2\" (upstream's --token-auth-file).")
@click.option("--anonymous-auth/--no-anonymous-auth", default=True, show_default=True)
@click.option("--authorization-mode", default="AlwaysAllow", show_default=True,
              help="Comma-separated, in order: AlwaysAllow, AlwaysDeny, Node, RBAC.")
@click.option("--enable-admission-plugins", default=",".join(DEFAULT_ADMISSION_PLUGINS),
              show_default=True)
@click.option("--audit-policy-file", default=None, type=click.Path(dir_okay=False))
@click.option("--audit-log-path", default=None)
@click.option("--audit-log-maxage", default=0, type=int)
@click.option("--audit-log-maxbackup", default=0, type=int)
@click.option("--audit-log-maxsize", default=0, type=int)
@click.option("--service-cluster-ip-range", default="10.96.0.0/12", show_default=True)
@click.option("--service-node-port-range", default="30000-32767", show_default=True)
@click.option("--service-account-key-file", default=None, type=click.Path(dir_okay=False))
@click.option("--etcd-compaction-interval", default=300.0, type=float, show_default=True,
              help="Seconds between store compactions (0 disables).")
@click.option("--event-ttl", default="1h0m0s", show_default=True,
              help="How long Events are kept (Go duration, e.g. 1h0m0s, 30m, 90s).")
@click.option("--max-request-bytes", default=3 * 1024 * 1024, type=int, show_default=True)
@click.option("--tls-cert-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Serve HTTPS with this certificate (and --tls-private-key-file).")
@click.option("--tls-private-key-file", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--cert-dir", default=None, type=click.Path(file_okay=False),
              help="Serve HTTPS with a self-signed certificate made (once) in this directory.")
@click.option("-v", "--v", "verbosity", default=0, type=int, help="Log verbosity.")
def apiserver(store_url: str, etcd_servers: str, secure_port: int, bind_address: str,
              advertise_address: str | None, write_kubeconfig: str | None,
              token_file: str | None, anonymous_auth: bool, authorization_mode: str,
              enable_admission_plugins: str, audit_policy_file: str | None,
              audit_log_path: str | None, audit_log_maxage: int, audit_log_maxbackup: int,
              audit_log_maxsize: int, service_cluster_ip_range: str,
              service_node_port_range: str, service_account_key_file: str | None,
              etcd_compaction_interval: float, event_ttl: str, max_request_bytes: int,
              tls_cert_file: str | None, tls_private_key_file: str | None, cert_dir: str | None,
              verbosity: int) -> None:
    """Run the Kubernetes API server."""
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    if etcd_servers:
        hosts = [s.split("://", 1)[-1] for s in _split(etcd_servers)]
        store_url = "etcd://" + ",".join(hosts)
    config = APIServerConfig(
        store_url=store_url, bind_address=bind_address, secure_port=secure_port,
        token_file=token_file, anonymous_auth=anonymous_auth,
        audit_policy_file=audit_policy_file, audit_log_path=audit_log_path,
        audit_log_maxage=audit_log_maxage, audit_log_maxbackup=audit_log_maxbackup,
        audit_log_maxsize=audit_log_maxsize, service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        max_request_bytes=max_request_bytes,
        enable_admission_plugins=_split(enable_admission_plugins),
        authorization_mode=authorization_mode, write_kubeconfig=write_kubeconfig,
        service_account_key_file=service_account_key_file,
        advertise_address=advertise_address, etcd_compaction_interval=etcd_compaction_interval,
        event_ttl_seconds=_go_duration_seconds(event_ttl), tls_cert_file=tls_cert_file,
        tls_private_key_file=tls_private_key_file, cert_dir=cert_dir)
    if bool(tls_cert_file) != bool(tls_private_key_file):
        raise click.UsageError("--tls-cert-file and --tls-private-key-file go together")
    try:
        server = APIServer(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _install_uvloop()
    asyncio.run(_serve(server))


def _go_duration_seconds(text: str) -> int:
    """``1h0m0s`` / ``30m`` / ``90s`` / ``90`` -> seconds (a usage error otherwise)."""
    match = re.fullmatch(r"((\d+)h)?((\d+)m)?((\d+)s)?", text.strip())
    if text.strip().isdigit():
        return int(text)
    if not text.strip() or match is None:
        raise click.BadParameter(f"invalid duration {text!r}", param_hint="--event-ttl")
    hours, minutes, seconds = (int(g or 0) for g in match.group(2, 4, 6))
    return hours * 3600 + minutes * 60 + seconds


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(server: APIServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    gc.freeze()  # what start-up loaded lives as long as the process: keep it out of every collection
    click.echo(f"tinykube apiserver serving on {server.url}", err=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
