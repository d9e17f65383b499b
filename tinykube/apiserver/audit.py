"""The audit log: who did what, when, decided by an ``audit.k8s.io/v1`` Policy.

Three pieces, as in kube-apiserver:

- :class:`Policy` — the rules of ``--audit-policy-file``; the first matching rule decides
  the level (None, Metadata, Request, RequestResponse) and which stages are omitted.
- the stages of one request — RequestReceived (before the handler), ResponseStarted (when
  a watch's headers are sent), ResponseComplete (when the pipeline's request observer
  fires, so 401/403 answers are logged too) or Panic.
- :class:`AuditLogWriter` — JSON lines to ``--audit-log-path`` on one writer thread fed
  in order, rotated by ``--audit-log-maxsize`` (MB) and pruned by ``--audit-log-maxbackup``
  and ``--audit-log-maxage`` (days) the way upstream's lumberjack logger names backups.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
import yaml
from aiohttp import web
from aiohttp.streams import StreamReader

from tinykube.api.errors import ApiError
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo

log = logging.getLogger(__name__)

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S.%f"  # lumberjack's, trimmed to milliseconds below
DEFAULT_MAX_SIZE_MB = 100  # lumberjack's default when --audit-log-maxsize is 0


class PolicyError(ValueError):
    """The audit configuration is unusable: an invalid Policy or an unwritable log."""


# -- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, group: str, resource: str, subresource: str, name: str) -> bool:
        if self.group != group:
            return False
        if not self.resources:
            return True
        if self.resource_names and name not in self.resource_names:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        for spec in self.resources:
            if spec in (combined, "*"):
                return True
            if subresource and spec.startswith("*/") and spec[2:] == subresource:
                return True
            if spec.endswith("/*") and spec[:-2] == resource:
                return True
        return False


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    def matches(self, info: RequestInfo) -> bool:
        """Upstream's ruleMatches: every non-empty field of the rule must match."""
        if self.users and info.user.name not in self.users:
            return False
        if self.user_groups and not set(info.user.groups) & set(self.user_groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            return self._matches_resource(info)
        if self.non_resource_urls:
            return not info.is_resource_request and any(
                _path_matches(info.path, spec) for spec in self.non_resource_urls)
        return True

    def _matches_resource(self, info: RequestInfo) -> bool:
        if not info.is_resource_request:
            return False
        if self.namespaces and info.namespace not in self.namespaces:
            return False
        if not self.resources:
            return True
        return any(gr.matches(info.api_group, info.resource, info.subresource, info.name)
                   for gr in self.resources)


@dataclass(frozen=True)
class Decision:
    """What the policy says about one request."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    @property
    def enabled(self) -> bool:
        return self.level != "None"

    def at_least(self, level: str) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(level)


NO_AUDIT = Decision("None")


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(raw)


def _stages(raw: Any, where: str) -> tuple[str, ...]:
    stages = _strings(raw, where)
    for stage in stages:
        if stage not in STAGES:
            raise PolicyError(f'{where}: Unsupported value: "{stage}": supported values: '
                              + ", ".join(f'"{s}"' for s in STAGES))
    return stages


def _rule(raw: Any, index: int) -> PolicyRule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be an object")
    level = raw.get("level")
    if level not in LEVELS:
        raise PolicyError(f'{where}.level: Unsupported value: "{level}": supported values: '
                          + ", ".join(f'"{lv}"' for lv in LEVELS))
    resources = []
    for j, gr in enumerate(raw.get("resources") or []):
        if not isinstance(gr, dict):
            raise PolicyError(f"{where}.resources[{j}]: must be an object")
        resources.append(GroupResources(
            group=gr.get("group") or "",
            resources=_strings(gr.get("resources"), f"{where}.resources[{j}].resources"),
            resource_names=_strings(gr.get("resourceNames"),
                                    f"{where}.resources[{j}].resourceNames")))
    rule = PolicyRule(
        level=level,
        users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        resources=tuple(resources),
        namespaces=_strings(raw.get("namespaces"), f"{where}.namespaces"),
        non_resource_urls=_strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
        omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
        omit_managed_fields=raw.get("omitManagedFields"),
    )
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        raise PolicyError(f"{where}.nonResourceURLs: Invalid value: rules cannot apply to "
                          "both regular resources and non-resource URLs")
    return rule


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    @classmethod
    def from_dict(cls, doc: Any) -> "Policy":
        if not isinstance(doc, dict) or doc.get("kind") != "Policy":
            raise PolicyError("not an audit Policy (kind must be Policy)")
        api_version = doc.get("apiVersion")
        if api_version not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
            raise PolicyError(f'unsupported apiVersion "{api_version}" (use audit.k8s.io/v1)')
        rules = doc.get("rules") or []
        if not isinstance(rules, list):
            raise PolicyError("rules: must be a list")
        return cls(
            rules=tuple(_rule(r, i) for i, r in enumerate(rules)),
            omit_stages=frozenset(_stages(doc.get("omitStages"), "omitStages")),
            omit_managed_fields=bool(doc.get("omitManagedFields", False)),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Policy":
        try:
            return cls.from_dict(yaml.safe_load(Path(path).read_text()))
        except (OSError, yaml.YAMLError, PolicyError) as err:
            raise PolicyError(f"loading audit policy file {path}: {err}") from err

    def evaluate(self, info: RequestInfo) -> Decision:
        """The first matching rule's level; no match means level None."""
        for rule in self.rules:
            if rule.matches(info):
                omit_mf = (self.omit_managed_fields if rule.omit_managed_fields is None
                           else rule.omit_managed_fields)
                return Decision(rule.level, self.omit_stages | set(rule.omit_stages), omit_mf)
        return NO_AUDIT


# -- events --------------------------------------------------------------------------------


def micro_time(ts: float) -> str:
    """RFC 3339 with microseconds, as metav1.MicroTime marshals."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_ref(info: RequestInfo) -> dict | None:
    if not info.is_resource_request:
        return None
    ref: dict[str, str] = {"resource": info.resource}
    if info.namespace:
        ref["namespace"] = info.namespace
    if info.name:
        ref["name"] = info.name
    if info.api_group:
        ref["apiGroup"] = info.api_group
    ref["apiVersion"] = info.api_version
    if info.subresource:
        ref["subresource"] = info.subresource
    return ref


def user_info(info: RequestInfo) -> dict:
    user: dict[str, Any] = {"username": info.user.name}
    if info.user.uid:
        user["uid"] = info.user.uid
    if info.user.groups:
        user["groups"] = list(info.user.groups)
    if info.user.extra:
        user["extra"] = {k: list(v) for k, v in info.user.extra.items()}
    return user


def response_status(code: int, status: dict | None) -> dict:
    """``responseStatus``: just the code on success, the Status' fields on failure."""
    out: dict[str, Any] = {"metadata": {}}
    if status and status.get("kind") == "Status" and code >= 300:
        for key in ("status", "message", "reason", "details"):
            if status.get(key):
                out[key] = status[key]
    out["code"] = code
    return out


def _without_managed_fields(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) \
            and "managedFields" in obj["metadata"]:
        obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                   if k != "managedFields"}}
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        obj = {**obj, "items": [_without_managed_fields(i) for i in obj["items"]]}
    return obj


@dataclass
class RequestAudit:
    """The audit state of one request, kept from RequestReceived to its last stage."""

    info: RequestInfo
    decision: Decision
    request_object: Any = None
    response_object: Any = None
    status_object: dict | None = None
    finished: bool = False
    annotations: dict[str, str] = field(default_factory=dict)

    def event(self, stage: str, code: int | None = None, now: float | None = None) -> dict:
        info, decision = self.info, self.decision
        ev: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": decision.level,
            "auditID": info.audit_id,
            "stage": stage,
            "requestURI": info.request_uri or info.path,
            "verb": info.verb,
            "user": user_info(info),
            "sourceIPs": [info.source_ip] if info.source_ip else [],
            "userAgent": info.user_agent,
        }
        ref = object_ref(info)
        if ref is not None:
            ev["objectRef"] = self._fill_ref(ref)
        if code is not None:
            ev["responseStatus"] = response_status(code, self.status_object)
        if decision.at_least("Request") and self.request_object is not None:
            ev["requestObject"] = self._clean(self.request_object)
        if (stage in ("ResponseComplete", "Panic") and decision.at_least("RequestResponse")
                and self.response_object is not None):
            ev["responseObject"] = self._clean(self.response_object)
        ev["requestReceivedTimestamp"] = micro_time(info.started)
        ev["stageTimestamp"] = micro_time(now if now is not None else dt.datetime.now(
            dt.timezone.utc).timestamp())
        if self.annotations:
            ev["annotations"] = dict(self.annotations)
        return ev

    def _fill_ref(self, ref: dict) -> dict:
        """Upstream takes a created object's name from its body (the URL has none)."""
        meta = self.request_object.get("metadata") if isinstance(self.request_object,
                                                                  dict) else None
        if isinstance(meta, dict) and self.decision.at_least("Request"):
            if "name" not in ref and meta.get("name"):
                ref = {**ref, "name": meta["name"]}
        return ref

    def _clean(self, obj: Any) -> Any:
        return _without_managed_fields(obj) if self.decision.omit_managed_fields else obj


# -- the log file ------------------------------------------------------------------------


def backup_name(path: Path, when: dt.datetime) -> Path:
    """``audit-2006-01-02T15-04-05.000.log`` next to ``audit.log``, as lumberjack names it."""
    stamp = when.strftime(BACKUP_TIME_FORMAT)[:-3]
    return path.with_name(f"{path.stem}-{stamp}{path.suffix}")


def parse_backup_time(path: Path, candidate: Path) -> dt.datetime | None:
    prefix, suffix = f"{path.stem}-", path.suffix
    name = candidate.name
    if not (name.startswith(prefix) and name.endswith(suffix)) or name == path.name:
        return None
    stamp = name[len(prefix): len(name) - len(suffix) if suffix else None]
    try:
        return dt.datetime.strptime(stamp + "000", BACKUP_TIME_FORMAT).replace(
            tzinfo=dt.timezone.utc)
    except ValueError:
        return None


class RotatingFile:
    """An append-only file rotated by size; old files pruned by count and age."""

    def __init__(self, path: str | os.PathLike, max_bytes: int, max_backups: int = 0,
                 max_age_days: int = 0, clock: Callable[[], dt.datetime] | None = None):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self.rotate()
        self._file.write(data)
        self._size += len(data)

    def flush(self) -> None:
        self._file.flush()

    def rotate(self) -> None:
        self._file.close()
        target = backup_name(self.path, self._clock())
        os.replace(self.path, target)
        self._file = open(self.path, "ab")
        self._size = 0
        self.prune()

    def backups(self) -> list[tuple[dt.datetime, Path]]:
        """Existing backups, newest first."""
        found = []
        for candidate in self.path.parent.iterdir():
            when = parse_backup_time(self.path, candidate)
            if when is not None:
                found.append((when, candidate))
        return sorted(found, reverse=True)

    def prune(self) -> None:
        backups = self.backups()
        doomed: list[Path] = []
        if self.max_backups > 0:
            doomed += [p for _, p in backups[self.max_backups:]]
        if self.max_age_days > 0:
            cutoff = self._clock() - dt.timedelta(days=self.max_age_days)
            doomed += [p for when, p in backups if when < cutoff]
        for path in dict.fromkeys(doomed):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self._file.close()


class AuditLogWriter:
    """Writes serialized events on one thread, in the order they were submitted.

    The event loop only serializes and enqueues; file I/O and rotation happen on the
    writer thread, which drains the queue before ``close()`` returns.
    """

    _STOP = object()

    def __init__(self, sink: RotatingFile | Any):
        self._sink = sink
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def submit(self, event: dict) -> None:
        self._queue.put(orjson.dumps(event) + b"\n")

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                break
            batch = [item]
            while not self._queue.empty():
                nxt = self._queue.get()
                if nxt is self._STOP:
                    self._write(batch)
                    return self._close_sink()
                batch.append(nxt)
            self._write(batch)
        self._close_sink()

    def _write(self, batch: Iterable[bytes]) -> None:
        try:
            for line in batch:
                self._sink.write(line)
            self._sink.flush()
        except OSError:
            log.exception("writing the audit log failed")

    def _close_sink(self) -> None:
        if hasattr(self._sink, "close"):
            self._sink.close()

    def close(self) -> None:
        self._queue.put(self._STOP)
        self._thread.join()


class _StdoutSink:
    def write(self, data: bytes) -> None:
        os.write(1, data)

    def flush(self) -> None:
        pass


def check_log_path(path: str) -> None:
    """Fail at configuration time, with a message, when the log cannot be written."""
    if path == "-":
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as err:
        raise PolicyError(f"unable to open audit log file {path}: {err.strerror or err}") \
            from err


def open_sink(path: str, max_size_mb: int, max_backups: int, max_age_days: int):
    """``-`` is standard output, as for kube-apiserver; else a rotating file."""
    if path == "-":
        return _StdoutSink()
    size = (max_size_mb or DEFAULT_MAX_SIZE_MB) * 1024 * 1024
    return RotatingFile(path, size, max_backups, max_age_days)


# -- wiring into the server ---------------------------------------------------------------

REQUEST_AUDIT = web.RequestKey("audit", RequestAudit)


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError):
        return None


async def _tee_body(request: web.Request) -> bytes:
    """Read the body and leave an identical stream behind for the handler.

    The core's body reader streams ``request.content`` (to enforce the size limit while
    reading), so the bytes read here are fed into a fresh stream that replaces it.
    """
    data = await request.read()
    replay = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    if data:
        replay.feed_data(data)
    replay.feed_eof()
    request._payload = replay  # noqa: SLF001 - aiohttp offers no public way to re-feed
    return data


class AuditBackend:
    """Connects a Policy and a writer to the request pipeline of one server."""

    def __init__(self, policy: Policy, writer: AuditLogWriter):
        self.policy = policy
        self.writer = writer
        self._pending: dict[str, RequestAudit] = {}

    def emit(self, ra: RequestAudit, stage: str, code: int | None = None) -> None:
        if stage not in ra.decision.omit_stages:
            self.writer.submit(ra.event(stage, code))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        info: RequestInfo | None = request.get(REQUEST_INFO)
        if info is None:
            return await handler(request)
        decision = self.policy.evaluate(info)
        if not decision.enabled:
            return await handler(request)
        ra = RequestAudit(info, decision,
                          annotations={"authorization.k8s.io/decision": "allow",
                                       "authorization.k8s.io/reason": ""})
        if decision.at_least("Request") and info.verb in _WRITE_VERBS and request.can_read_body:
            ra.request_object = _parse_body(await _tee_body(request),
                                            request.headers.get("Content-Type", ""))
        self._pending[info.audit_id] = ra
        request[REQUEST_AUDIT] = ra
        self.emit(ra, "RequestReceived")
        try:
            response = await handler(request)
        except ApiError as err:
            ra.status_object = err.status()
            ra.response_object = ra.status_object
            raise
        except web.HTTPException:
            raise
        except Exception:
            # stays pending, finished: the pipeline's observer call must not log it again
            ra.finished = True
            self.emit(ra, "Panic", 500)
            raise
        self._capture_response(ra, response)
        return response

    @staticmethod
    def _capture_response(ra: RequestAudit, response: web.StreamResponse) -> None:
        """Keep the response body when the level logs it or it is an error Status."""
        body = getattr(response, "body", None)
        if not isinstance(body, (bytes, bytearray)):
            return  # streamed (watch, logs): there is no single response object
        if not (ra.decision.at_least("RequestResponse") or response.status >= 300):
            return
        parsed = _parse_body(bytes(body), response.content_type or "")
        if isinstance(parsed, dict):
            ra.response_object = parsed
            if parsed.get("kind") == "Status":
                ra.status_object = parsed

    async def on_response_prepare(self, request: web.Request,
                                  response: web.StreamResponse) -> None:
        """ResponseStarted, for watches: headers are out, events follow."""
        ra: RequestAudit | None = request.get(REQUEST_AUDIT)
        if (ra is not None and ra.info.verb == "watch" and not ra.finished
                and response.status < 300):
            self.emit(ra, "ResponseStarted", response.status)

    def observe(self, info: RequestInfo, code: int, _seconds: float) -> None:
        """ResponseComplete; for requests refused before the handler, decided here."""
        ra = self._pending.pop(info.audit_id, None)
        if ra is None:
            decision = self.policy.evaluate(info)
            if not decision.enabled:
                return
            ra = RequestAudit(info, decision)
            if code == 403:
                ra.annotations = {"authorization.k8s.io/decision": "forbid"}
        if not ra.finished:
            ra.finished = True
            self.emit(ra, "ResponseComplete", code)

    def close(self) -> None:
        self.writer.close()


def setup(app: web.Application, server: Any) -> None:
    """Enable auditing when both ``audit_policy_file`` and ``audit_log_path`` are set."""
    config = server.config
    if not config.audit_policy_file or not config.audit_log_path:
        return
    policy = Policy.load(config.audit_policy_file)
    check_log_path(config.audit_log_path)
    holder: dict[str, AuditBackend] = {}

    async def open_log(_app: web.Application):
        sink = open_sink(config.audit_log_path, config.audit_log_maxsize,
                         config.audit_log_maxbackup, config.audit_log_maxage)
        backend = AuditBackend(policy, AuditLogWriter(sink))
        holder["backend"] = backend
        server.request_observers.append(backend.observe)
        yield
        server.request_observers.remove(backend.observe)
        backend.close()

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        backend = holder.get("backend")
        if backend is None:
            return await handler(request)
        return await backend.middleware(request, handler)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        backend = holder.get("backend")
        if backend is not None:
            await backend.on_response_prepare(request, response)

    app.cleanup_ctx.append(open_log)
    app.middlewares.append(middleware)
    app.on_response_prepare.append(on_prepare)
