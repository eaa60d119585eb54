"""`down` removes the log dirs of its own pods and orphans no kubelet has any more,
never those of pods another environment's kubelet still runs."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from kubeglobe.local import node
from kubeglobe.local.node import NodePaths, pod_uids_under, remove_pod_logs


def test_own_and_orphaned_pod_logs_go_others_stay(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    logs, links = tmp_path / "var-log-pods", tmp_path / "var-log-containers"
    monkeypatch.setattr(node, "POD_LOGS", logs)
    monkeypatch.setattr(node, "CONTAINER_LOG_LINKS", links)
    mine = tmp_path / "env-a" / "nodes" / "n1" / "kubelet"
    theirs = tmp_path / "env-b" / "nodes" / "n1" / "kubelet"
    (mine / "pods" / "uid-mine").mkdir(parents=True)
    (theirs / "pods" / "uid-theirs").mkdir(parents=True)
    for d in ("default_web_uid-mine", "default_web_uid-theirs", "p1-dev_web_uid-gone"):
        (logs / d / "httpd").mkdir(parents=True)
    links.mkdir()
    (links / "web_default_httpd-1.log").symlink_to(logs / "default_web_uid-mine/httpd/0.log")
    (links / "web_default_httpd-2.log").symlink_to(logs / "default_web_uid-theirs/httpd/0.log")
    live = pod_uids_under(tmp_path / "env-a") | pod_uids_under(tmp_path / "env-b")
    assert live == {"uid-mine", "uid-theirs"}
    own_root = tmp_path / "env-a" / "nodes" / "n1" / "pod-logs"
    (own_root / "default_api_uid-new" / "c").mkdir(parents=True)
    (links / "api_default_c-3.log").symlink_to(own_root / "default_api_uid-new/c/0.log")
    paths = cast(NodePaths, cast(Any, SimpleNamespace(kubelet_root=mine, pod_logs=own_root)))
    assert remove_pod_logs(paths, live_elsewhere=live) == 3
    assert not own_root.exists()
    assert sorted(p.name for p in logs.iterdir()) == ["default_web_uid-theirs"]
    assert sorted(p.name for p in links.iterdir()) == ["web_default_httpd-2.log"]
