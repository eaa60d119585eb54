"""`kubeglobe install --image`: the node selector it takes and the PKI it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from kubeglobe.cli.install import _selector
from kubeglobe.deploy.pki import ensure_own_platform_pki
from kubeglobe.hub.install import InstallError


def test_a_node_selector_is_key_value_pairs_with_empty_values_allowed() -> None:
    assert _selector("node-role.kubernetes.io/control-plane=") == {
        "node-role.kubernetes.io/control-plane": ""}
    assert _selector("a=1, b=2") == {"a": "1", "b": "2"}
    with pytest.raises(InstallError, match="'nodes' is not KEY=VALUE"):
        _selector("nodes")
    with pytest.raises(InstallError, match="empty"):
        _selector(" , ")


def test_the_platform_pki_is_made_once_for_its_endpoint(tmp_path: Path) -> None:
    pki = ensure_own_platform_pki(tmp_path / "pki", hosts=("10.0.0.7",))
    serving = x509.load_pem_x509_certificate(pki.serving.cert.read_bytes())
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1",
                                                                         "10.0.0.7"}
    assert "kubeglobe-platform" in san.get_values_for_type(x509.DNSName)
    kept = {p: p.read_bytes() for p in (tmp_path / "pki").iterdir()}
    ensure_own_platform_pki(tmp_path / "pki", hosts=("10.0.0.7",))  # again: nothing new
    assert {p: p.read_bytes() for p in (tmp_path / "pki").iterdir()} == kept
    # a new endpoint re-issues the serving pair only, from the same CA
    ensure_own_platform_pki(tmp_path / "pki", hosts=("gw.example",))
    assert pki.ca.cert.read_bytes() == kept[pki.ca.cert]
    assert pki.serving.cert.read_bytes() != kept[pki.serving.cert]
    assert pki.agents_ca.cert.read_bytes() == kept[pki.agents_ca.cert]
