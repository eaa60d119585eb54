"""Ingress objects become Rules of the instance (pure)."""

from __future__ import annotations

from typing import Any

from kubeglobe.alb.ingress import ingress_rules


def backend(name: str, port: Any = 80) -> dict[str, Any]:
    return {"service": {"name": name, "port": {"number": port} if isinstance(port, int)
                        else {"name": port}}}


INGRESS = {
    "metadata": {"namespace": "shop", "name": "web"},
    "spec": {
        "ingressClassName": "edge",
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "defaultBackend": backend("fallback"),
        "rules": [
            {"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("web")},
                {"path": "/cart", "pathType": "Prefix", "backend": backend("cart")},
                {"path": "/cart", "pathType": "Exact", "backend": backend("cart-page")},
                {"path": "/named", "pathType": "Prefix", "backend": backend("x", "http")}]}},
            {"http": {"paths": [{"path": "/status", "pathType": "Exact",
                                 "backend": backend("status")}]}},
        ]}}


def test_each_path_is_a_rule_longest_first_and_the_default_last() -> None:
    out = ingress_rules(INGRESS, http_frontend="edge-80", https_frontend="edge-443")
    on_http = sorted((r.priority, name) for name, r in out.rules.items()
                     if r.frontend == "edge-80")
    order = [out.rules[name] for _, name in on_http]
    assert [(r.match.path.value, r.match.path.type) if r.match.path else None
            for r in order] == [("/status", "Exact"), ("/cart", "Exact"),
                                ("/cart", "Prefix"), ("/", "Prefix"), None]
    assert order[-1].priority == 10 and order[-1].backends[0].service == "fallback"
    assert order[1].match.hosts == ["shop.example.com"] and order[0].match.hosts == []
    # a host its tls lists is served on the HTTPS frontend too; the host-less path is not
    https = {r.match.path.value for r in out.rules.values() if r.frontend == "edge-443"
             if r.match.path}
    assert https == {"/", "/cart"}
    assert out.problems == ["rule 0 path /named: service x: name its port by number "
                            "(port.number); a port name is not resolved"]


def test_without_an_https_frontend_everything_goes_on_the_http_one() -> None:
    out = ingress_rules(INGRESS, http_frontend="edge-80")
    assert {r.frontend for r in out.rules.values()} == {"edge-80"}
    assert len(out.rules) == 5
