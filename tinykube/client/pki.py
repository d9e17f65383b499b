"""Certificates for the cluster: a CA, and serving certificates for components.

Every component that serves HTTPS (kubelet :10250, scheduler :10259, controller manager
:10257) needs a key pair; a cluster needs a CA whose certificate is published to every
namespace as ``kube-root-ca.crt``. One place makes them all: ECDSA P-256 keys (kubeadm's
``ECDSA-P256`` choice; generating one takes about a millisecond, so components that make a
serving certificate at start-up stay fast), SHA-256, SANs for every name and address the
server answers on.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# cryptography (about 70 ms of CPU to import) is imported by the functions that make
# certificates: a component that only loads existing ones (or talks plain HTTP through
# tinykube.client.rest, which imports this module) never pays for it.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)

    @classmethod
    def read(cls, cert_path: Path, key_path: Path) -> "KeyPair":
        return cls(cert_path.read_bytes(), key_path.read_bytes())

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        load_cert_chain(context, self.cert_pem, self.key_pem)
        return context


def load_cert_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load an in-memory certificate and key; the ssl module only reads them from a file,
    so they go through a private temporary one."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def _key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, validity: datetime.timedelta
             ) -> x509.CertificateBuilder:
    from cryptography import x509

    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + validity))


def new_ca(common_name: str = "kubernetes") -> KeyPair:
    """A self-signed CA, as kubeadm's ``ca.crt`` (CN kubernetes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key.public_key(), CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def serving_cert(common_name: str, hosts: list[str], ca: KeyPair | None = None, *,
                 client_auth: bool = False) -> KeyPair:
    """A server certificate for ``hosts``, signed by ``ca`` or self-signed without one.

    ``client_auth`` makes it a client certificate too, for servers such as etcd whose
    clients present the same certificate the server serves.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if ca is None:
        issuer, signer = subject, key
    else:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        issuer = ca_cert.subject
        signer = serialization.load_pem_private_key(ca.key_pem, password=None)
    usages = [x509.ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(x509.ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = (_builder(subject, issuer, key.public_key(), CERT_VALIDITY)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(signer, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def ensure_ca(directory: Path) -> Path:
    """``<directory>/ca.crt`` (and ``ca.key``), created on first use; returns the cert path."""
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        new_ca().write(cert_path, key_path)
    return cert_path
