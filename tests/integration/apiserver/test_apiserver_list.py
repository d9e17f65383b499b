"""Lists: selectors, pagination with continue tokens, resourceVersion semantics, Tables."""

from __future__ import annotations

from urllib.parse import quote

CM_PATH = "/api/v1/namespaces/default/configmaps"
POD_PATH = "/api/v1/namespaces/default/pods"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def make(server, count: int, prefix: str = "cm") -> None:
    for i in range(count):
        status, _ = await server.request("POST", CM_PATH, {
            "metadata": {"name": f"{prefix}{i:03d}",
                         "labels": {"parity": "even" if i % 2 == 0 else "odd",
                                    "index": str(i)}}})
        assert status == 201


def names(lst: dict) -> list[str]:
    return [i["metadata"]["name"] for i in lst["items"]]


async def test_label_selectors(apiserver):
    await make(apiserver, 6)
    cases = {
        "parity=even": ["cm000", "cm002", "cm004"],
        "parity==odd,index!=1": ["cm003", "cm005"],
        "index in (1,2)": ["cm001", "cm002"],
        "index notin (0,1,2,3)": ["cm004", "cm005"],
        "parity": [f"cm{i:03d}" for i in range(6)],
        "!parity": [],
    }
    for selector, expected in cases.items():
        status, lst = await apiserver.request("GET", f"{CM_PATH}?labelSelector={quote(selector)}")
        assert status == 200 and names(lst) == expected, selector


async def test_field_selectors(apiserver):
    await make(apiserver, 3)
    status, lst = await apiserver.request("GET", f"{CM_PATH}?fieldSelector=metadata.name%3Dcm001")
    assert names(lst) == ["cm001"]
    status, lst = await apiserver.request(
        "GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Ddefault,"
               "metadata.name!%3Dcm001")
    assert names(lst) == ["cm000", "cm002"]
    for name, node in (("a", "n1"), ("b", "n2"), ("c", "")):
        spec = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        await apiserver.request("POST", POD_PATH, {"metadata": {"name": name}, "spec": spec})
    status, lst = await apiserver.request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn2")
    assert names(lst) == ["b"]
    status, lst = await apiserver.request("GET", f"{POD_PATH}?fieldSelector=spec.nodeName%3D")
    assert names(lst) == ["c"]
    status, lst = await apiserver.request("GET", f"{POD_PATH}?fieldSelector=status.phase%3DPending")
    assert names(lst) == ["a", "b", "c"]


async def test_pagination_is_consistent(apiserver):
    await make(apiserver, 25)
    status, page = await apiserver.request("GET", f"{CM_PATH}?limit=10")
    assert status == 200 and len(page["items"]) == 10
    token = page["metadata"]["continue"]
    assert page["metadata"]["remainingItemCount"] == 15
    list_rv = page["metadata"]["resourceVersion"]
    # a change after the first page does not show up in later pages
    await apiserver.request("POST", CM_PATH, {"metadata": {"name": "cm999"}})
    seen = names(page)
    while token:
        status, page = await apiserver.request("GET", f"{CM_PATH}?limit=10&continue={token}")
        assert status == 200
        assert page["metadata"]["resourceVersion"] == list_rv
        seen += names(page)
        token = page["metadata"].get("continue")
    assert seen == [f"cm{i:03d}" for i in range(25)]


async def test_pagination_with_selector(apiserver):
    await make(apiserver, 20)
    seen: list[str] = []
    token = ""
    while True:
        path = f"{CM_PATH}?limit=3&labelSelector=parity%3Dodd"
        if token:
            path += f"&continue={token}"
        _, page = await apiserver.request("GET", path)
        assert len(page["items"]) <= 3
        seen += names(page)
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == [f"cm{i:03d}" for i in range(1, 20, 2)]


async def test_expired_continue_token_is_410(apiserver):
    await make(apiserver, 5)
    _, page = await apiserver.request("GET", f"{CM_PATH}?limit=2")
    token = page["metadata"]["continue"]
    await make(apiserver, 3, prefix="late")
    store = apiserver.server.store
    await store.compact(await store.current_revision())
    status, body = await apiserver.request("GET", f"{CM_PATH}?limit=2&continue={token}")
    assert status == 410
    assert body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")


async def test_invalid_continue_token_is_400(apiserver):
    status, body = await apiserver.request("GET", f"{CM_PATH}?limit=2&continue=garbage")
    assert status == 400 and body["reason"] == "BadRequest"


async def test_resource_version_semantics(apiserver):
    await make(apiserver, 2)
    _, lst = await apiserver.request("GET", CM_PATH)
    rv = int(lst["metadata"]["resourceVersion"])
    status, cached = await apiserver.request("GET", f"{CM_PATH}?resourceVersion=0")
    assert status == 200 and names(cached) == names(lst)
    await make(apiserver, 1, prefix="new")
    status, exact = await apiserver.request(
        "GET", f"{CM_PATH}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert status == 200 and names(exact) == names(lst)
    assert exact["metadata"]["resourceVersion"] == str(rv)
    status, newer = await apiserver.request(
        "GET", f"{CM_PATH}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan")
    assert status == 200 and "new000" in names(newer)
    status, body = await apiserver.request("GET", f"{CM_PATH}?resourceVersion=abc")
    assert status == 400


async def test_table_output(apiserver):
    await make(apiserver, 2)
    status, table = await apiserver.request("GET", CM_PATH, headers={"Accept": TABLE})
    assert status == 200
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Data"]
    assert [r["cells"][0] for r in table["rows"]] == ["cm000", "cm001"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"]
    status, table = await apiserver.request("GET", f"{CM_PATH}/cm000?includeObject=Object",
                                            headers={"Accept": TABLE})
    assert status == 200 and table["rows"][0]["object"]["kind"] == "ConfigMap"


async def test_partial_object_metadata_list(apiserver):
    await make(apiserver, 2)
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    status, lst = await apiserver.request("GET", CM_PATH, headers={"Accept": accept})
    assert status == 200 and lst["kind"] == "PartialObjectMetadataList"
    assert lst["items"][0]["kind"] == "PartialObjectMetadata"
    assert "data" not in lst["items"][0]
