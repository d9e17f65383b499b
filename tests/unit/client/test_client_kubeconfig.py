"""kubeconfig loading, merging and writing."""

from __future__ import annotations


import pytest
import yaml

from tinykube.client.kubeconfig import (KubeconfigError, load_kubeconfig, load_merged,
                                        merge_into, remove_from, write_kubeconfig)
from tinykube.client.rest import Client


def test_write_then_load_roundtrip(tmp_path):
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", token="t0k",
                            ca="-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    creds = load_kubeconfig(path)
    assert creds.server == "https://127.0.0.1:6443" and creds.token == "t0k"
    assert creds.ca_data.startswith(b"-----BEGIN CERTIFICATE")
    assert creds.context == "tinykube"


def test_relative_cert_paths_and_token_file(tmp_path):
    (tmp_path / "tok").write_text("abc\n")
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1",
                                                  "certificate-authority": "ca.crt"}}],
           "users": [{"name": "u", "user": {"tokenFile": "tok", "client-certificate": "u.crt",
                                            "client-key": "/abs/u.key"}}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u",
                                                  "namespace": "team"}}]}
    (tmp_path / "kc").write_text(yaml.safe_dump(cfg))
    creds = load_kubeconfig(tmp_path / "kc")
    assert creds.ca_file == str(tmp_path / "ca.crt")
    assert creds.cert_file == str(tmp_path / "u.crt") and creds.key_file == "/abs/u.key"
    assert creds.token == "abc" and creds.namespace == "team"


def test_merge_into_keeps_other_entries_and_first_file_wins(tmp_path):
    home = tmp_path / "config"
    write_kubeconfig(home, "http://other:1", cluster_name="other", user="o", context="other")
    merge_into(home, "tinykube", server="http://127.0.0.1:6443", token="t")
    data = yaml.safe_load(home.read_text())
    assert {c["name"] for c in data["clusters"]} == {"other", "tinykube"}
    assert data["current-context"] == "tinykube"
    merge_into(home, "tinykube", server="http://127.0.0.1:7000", token="t2")
    assert load_kubeconfig(home).server == "http://127.0.0.1:7000"
    second = write_kubeconfig(tmp_path / "b", "http://second:1", cluster_name="other",
                              user="o", context="other")
    merged = load_merged([home, second])
    other = [c for c in merged["clusters"] if c["name"] == "other"][0]
    assert other["cluster"]["server"] == "http://other:1"
    remove_from(home)
    assert load_kubeconfig(home, context="other").server == "http://other:1"
    with pytest.raises(KubeconfigError):
        load_kubeconfig(home)  # current-context removed


def test_errors_are_kubeconfig_errors(tmp_path):
    with pytest.raises(KubeconfigError):
        load_kubeconfig(tmp_path / "missing")
    (tmp_path / "bad").write_text("{: nope")
    with pytest.raises(KubeconfigError):
        load_kubeconfig(tmp_path / "bad")
    write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    with pytest.raises(KubeconfigError):
        load_kubeconfig(tmp_path / "kc", context="nope")


def test_client_from_kubeconfig_uses_token(tmp_path):
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", token="zz")
    client = Client.from_kubeconfig(str(path))
    assert client.server == "http://127.0.0.1:1" and client.token == "zz"
