"""The watch cache's folding of store events and per-watcher selector transitions."""

from __future__ import annotations

import orjson

from tinykube.api.kinds import lookup
from tinykube.apiserver.watchcache import ResourceCache, Watcher
from tinykube.storage.store import Event, KeyValue

CMS = lookup("", "v1", "configmaps")


def kv(name: str, revision: int, labels: dict | None = None, ns: str = "default") -> KeyValue:
    value = orjson.dumps({"metadata": {"name": name, "namespace": ns, "labels": labels or {}}})
    return KeyValue(CMS.storage_key(ns, name), value, revision, revision)


def put(name: str, revision: int, prev: KeyValue | None = None, **kw) -> tuple[Event, KeyValue]:
    current = kv(name, revision, **kw)
    return Event("PUT", current, prev), current


def test_apply_tracks_objects_and_history():
    cache = ResourceCache(CMS, history=2)
    e1, a1 = put("a", 1)
    cache.apply(e1)
    e2, a2 = put("a", 2, prev=a1)
    cache.apply(e2)
    cache.apply(Event("DELETE", KeyValue(a2.key, b"", 1, 3), a2))
    assert cache.objects == {}
    assert [e.type for e in cache.events] == ["MODIFIED", "DELETED"]
    assert cache.floor == 1  # the oldest event was evicted
    deleted = cache.events[-1]
    assert orjson.loads(deleted.current.raw)["metadata"]["resourceVersion"] == "3"
    assert [e.revision for e in cache.events_after(2)] == [3]


def test_watcher_sees_selector_transitions():
    cache = ResourceCache(CMS, history=10)
    watcher = Watcher(cache, "default",
                      lambda obj: obj["metadata"].get("labels", {}).get("tier") == "web")
    cache.add_watcher(watcher)
    e1, v1 = put("m", 1, labels={"tier": "web"})
    cache.apply(e1)
    e2, v2 = put("m", 2, prev=v1, labels={"tier": "db"})
    cache.apply(e2)
    e3, v3 = put("m", 3, prev=v2, labels={"tier": "web"})
    cache.apply(e3)
    other, _ = put("x", 4, ns="elsewhere", labels={"tier": "web"})
    cache.apply(other)
    events = [orjson.loads(line) for line in watcher.pending]
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [
        ("ADDED", "1"), ("DELETED", "2"), ("ADDED", "3")]
    # the DELETED for a selector change carries the previous state at the new revision
    assert events[1]["object"]["metadata"]["labels"] == {"tier": "web"}


def test_event_lines_are_serialized_once_and_shared():
    cache = ResourceCache(CMS, history=10)
    watchers = [Watcher(cache, "", None) for _ in range(3)]
    for w in watchers:
        cache.add_watcher(w)
    event, _ = put("s", 1)
    cache.apply(event)
    lines = [w.pending[0] for w in watchers]
    assert lines[0] is lines[1] is lines[2]


def test_overflowing_watcher_is_closed():
    cache = ResourceCache(CMS, history=10)
    watcher = Watcher(cache, "", None, buffer=2)
    cache.add_watcher(watcher)
    previous = None
    for revision in range(1, 5):
        event, previous = put("o", revision, prev=previous)
        cache.apply(event)
    assert watcher.closed and watcher not in cache.watchers


PODS = lookup("", "v1", "pods")


def pod_kv(name: str, revision: int, node: str) -> KeyValue:
    value = orjson.dumps({"metadata": {"name": name, "namespace": "default"},
                          "spec": {"nodeName": node}})
    return KeyValue(PODS.storage_key("default", name), value, revision, revision)


def test_pod_watchers_are_triggered_by_node_name_only():
    cache = ResourceCache(PODS, history=10)
    calls: list[str] = []

    def selector(node: str):
        def match(obj: dict) -> bool:
            calls.append(node)
            return obj["spec"].get("nodeName") == node
        return match

    n1 = Watcher(cache, "", selector("n1"), trigger="n1")
    n2 = Watcher(cache, "", selector("n2"), trigger="n2")
    cache.add_watcher(n1)
    cache.add_watcher(n2)
    unbound = pod_kv("p", 1, "")
    cache.apply(Event("PUT", unbound, None))
    assert calls == [] and not n1.pending and not n2.pending
    cache.apply(Event("PUT", pod_kv("p", 2, "n1"), unbound))
    assert set(calls) == {"n1"}
    assert orjson.loads(n1.pending[0])["type"] == "ADDED" and not n2.pending
    n1.close()
    assert cache.by_trigger == {"n2": {n2}}
