"""Service account tokens: RS256 JWTs signed by the API server, and their authenticator.

The signing key is generated on first start and kept next to the SQLite database (or in
``service_account_key_file``), so tokens survive restarts; for other stores it lives in
memory. Claims follow upstream's bound tokens (``kubernetes.io`` with namespace,
serviceaccount and the bound object).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import time
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tinykube.apiserver.request import UserInfo

log = logging.getLogger(__name__)

KEY_BITS = 2048
SA_PREFIX = "system:serviceaccount:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_path(store_url: str, key_file: str | None) -> str | None:
    if key_file:
        return key_file
    if store_url.startswith("sqlite://"):
        path = store_url[len("sqlite://"):]
        if path and path != ":memory:":
            return path + ".sa.key"
    return None


@functools.cache
def _process_key() -> rsa.RSAPrivateKey:
    """One in-memory key per process for servers without a key file (tests start many)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


class TokenSigner:
    """Signs and verifies service account JWTs; also a bearer-token authenticator."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self._key: rsa.RSAPrivateKey | None = None
        self._key_id = ""
        self._pending: tuple[str | None] | None = None  # (key path,) until first use

    def load_or_create(self, key_file: str | None, store_url: str = "") -> None:
        """Load the signing key, or generate it (and keep it in its file, if it has one).

        A configured ``key_file`` is read at once (a bad file fails the start); the key the
        server keeps next to its SQLite store is read, or generated, when a token is first
        signed or checked: loading an RSA key costs about 70 ms of CPU and generating one
        more, and the control plane's own components use no service account tokens, so
        neither belongs in the API server's start-up.
        """
        path = _key_path(store_url, key_file)
        self._key, self._key_id = None, ""
        self._pending = (path,)
        if key_file:
            self._load_key()

    def _load_key(self) -> rsa.RSAPrivateKey | None:
        if self._key is not None or self._pending is None:
            return self._key
        (path,) = self._pending
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path}: not an RSA private key")
        elif path is None:
            key = _process_key()
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._key, self._key_id, self._pending = key, _b64(hashlib.sha256(public).digest()), None
        return key

    @property
    def key_id(self) -> str:
        self._load_key()
        return self._key_id

    def sign(self, claims: dict[str, Any]) -> str:
        key = self._load_key()
        if key is None:
            raise RuntimeError("token signer used before the API server started")
        header = _b64(orjson.dumps({"alg": "RS256", "kid": self.key_id}))
        payload = _b64(orjson.dumps(claims))
        signing_input = f"{header}.{payload}".encode()
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    def sign_service_account(self, *, namespace: str, name: str, uid: str,
                             audiences: list[str], issued_at: int, expires_at: int,
                             bound: dict | None = None) -> str:
        private: dict[str, Any] = {"namespace": namespace,
                                   "serviceaccount": {"name": name, "uid": uid}}
        if bound and bound.get("kind") and bound.get("name"):
            private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
        return self.sign({"aud": audiences, "exp": expires_at, "iat": issued_at,
                          "nbf": issued_at, "iss": self.issuer, "kubernetes.io": private,
                          "sub": f"{SA_PREFIX}{namespace}:{name}"})

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired token signed by this server; else None."""
        if token.count(".") != 2:
            return None
        key = self._load_key()
        if key is None:
            return None
        header, payload, signature = token.split(".")
        try:
            key.public_key().verify(_unb64(signature), f"{header}.{payload}".encode(),
                                    padding.PKCS1v15(), hashes.SHA256())
            claims = orjson.loads(_unb64(payload))
        except (InvalidSignature, ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        if int(claims.get("exp") or 0) < time.time():
            return None
        return claims

    def authenticate_token(self, token: str) -> UserInfo | None:
        claims = self.verify(token)
        if claims is None:
            return None
        subject = str(claims.get("sub") or "")
        if not subject.startswith(SA_PREFIX):
            return None
        namespace = subject[len(SA_PREFIX):].partition(":")[0]
        sa = (claims.get("kubernetes.io") or {}).get("serviceaccount") or {}
        return UserInfo(subject, ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
                        str(sa.get("uid") or ""))
