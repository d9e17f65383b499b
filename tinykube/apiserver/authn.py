"""Authentication: who is calling, from the request's credentials.

Authenticators are tried in order; the first that recognises the credentials wins. A bearer
token nobody recognises is a 401 (as kube-apiserver answers), no credentials at all is the
anonymous user when anonymous access is enabled.
"""

from __future__ import annotations

import csv
from typing import Protocol

from aiohttp import web

from tinykube.apiserver.request import ANONYMOUS, UserInfo

AUTHENTICATED_GROUP = "system:authenticated"


class Unauthorized(Exception):
    """The request carried credentials that no authenticator accepts."""


class TokenAuthenticator(Protocol):
    """Maps a bearer token to a user, or None when the token is not its kind."""

    def authenticate_token(self, token: str) -> UserInfo | None: ...


class StaticTokenFile:
    """``--token-file``: CSV lines ``token,user,uid,"group1,group2"`` as upstream reads them."""

    def __init__(self, users: dict[str, UserInfo]):
        self._users = users

    @classmethod
    def load(cls, path: str) -> "StaticTokenFile":
        users: dict[str, UserInfo] = {}
        with open(path, newline="") as f:
            for lineno, row in enumerate(csv.reader(f), start=1):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 3:
                    raise ValueError(f"token file {path}, line {lineno}: "
                                     "need at least 3 columns (token,user,uid)")
                groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) \
                    if len(row) > 3 else ()
                users[row[0].strip()] = UserInfo(row[1].strip(), groups, row[2].strip())
        return cls(users)

    def authenticate_token(self, token: str) -> UserInfo | None:
        return self._users.get(token)


class Authenticator:
    """The authentication stage: bearer tokens through a chain, else anonymous."""

    def __init__(self, token_authenticators: list[TokenAuthenticator] | None = None,
                 anonymous: bool = True):
        self.token_authenticators: list[TokenAuthenticator] = list(token_authenticators or [])
        self.anonymous = anonymous

    def authenticate(self, request: web.Request) -> UserInfo:
        """The caller; raises Unauthorized for bad or (without anonymous) missing credentials."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            user = self.authenticate_bearer(token.strip())
            if user is None:
                raise Unauthorized()
            return user
        if self.anonymous:
            return ANONYMOUS
        raise Unauthorized()

    def authenticate_bearer(self, token: str) -> UserInfo | None:
        for authenticator in self.token_authenticators:
            user = authenticator.authenticate_token(token)
            if user is not None:
                if AUTHENTICATED_GROUP not in user.groups:
                    user = UserInfo(user.name, (*user.groups, AUTHENTICATED_GROUP),
                                    user.uid, user.extra)
                return user
        return None
