"""The /version document kubectl and clients read first."""

from tinykube.apiserver import version


def test_version_reports_kubernetes_1_32():
    info = version.version_info()
    assert info["gitVersion"] == "v1.32.0"
    assert (info["major"], info["minor"]) == ("1", "32")
    assert set(info) == {"major", "minor", "gitVersion", "gitCommit", "gitTreeState",
                         "buildDate", "goVersion", "compiler", "platform"}
    assert info["gitTreeState"] == "clean"


def test_platform_is_go_style(monkeypatch):
    monkeypatch.setattr(version.platform, "machine", lambda: "x86_64")
    assert version.platform_string() == "linux/amd64"
    monkeypatch.setattr(version.platform, "machine", lambda: "aarch64")
    assert version.platform_string() == "linux/arm64"
