"""Client TLS: the cluster CA is verified and a client certificate is presented."""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tinykube.client.kubeconfig import write_kubeconfig
from tinykube.client.rest import Client


def _cert(subject: str, issuer_key=None, issuer_name=None, ca=False, server=False):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_name or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _pem(key, cert) -> tuple[bytes, bytes]:
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture
async def tls_server(tmp_path):
    ca_key, ca = _cert("test-ca", ca=True)
    srv_key, srv = _cert("127.0.0.1", ca_key, ca.subject, server=True)
    cli_key, cli = _cert("admin", ca_key, ca.subject)
    ca_pem, _ = _pem(ca_key, ca)
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    srv_pem, srv_key_pem = _pem(srv_key, srv)
    (tmp_path / "srv.crt").write_bytes(srv_pem)
    (tmp_path / "srv.key").write_bytes(srv_key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    ctx.load_verify_locations(tmp_path / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def version(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert")
        user = dict(x[0] for x in peer["subject"])["commonName"]
        return web.json_response({"user": user})

    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", ca_pem, _pem(cli_key, cli)
    await runner.cleanup()


async def test_client_certificate_from_kubeconfig_data(tls_server, tmp_path):
    url, ca_pem, (cert_pem, key_pem) = tls_server
    path = write_kubeconfig(tmp_path / "kc", url, ca=ca_pem, client_cert=cert_pem,
                            client_key=key_pem)
    async with Client.from_kubeconfig(str(path)) as client:
        assert await client.request("GET", "/version") == {"user": "admin"}


async def test_unknown_ca_is_rejected(tls_server):
    url, _, (cert_pem, key_pem) = tls_server
    async with Client(url, cert_data=cert_pem, key_data=key_pem) as client:
        with pytest.raises(ConnectionError):
            await client.request("GET", "/version")
