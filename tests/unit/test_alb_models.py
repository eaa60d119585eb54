"""The ALB's resources refuse what no operator could serve, naming the fix (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubeglobe.api.alb import FrontendSpec, GatewaySpec, RuleSpec
from kubeglobe.hub.install import alb_crds

WEB = {"namespace": "shop", "service": "web", "port": 80}


def refused(model: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as e:
        model.model_validate(body)
    return str(e.value)


def test_a_gateway_defaults_to_three_replicas_and_its_vip_is_an_address_a_node_can_hold(
        ) -> None:
    assert GatewaySpec.model_validate({}).replicas == 3
    assert GatewaySpec.model_validate({"vip": "10.250.0.100"}).vip == "10.250.0.100"
    assert "not an IPv4 address" in refused(GatewaySpec, {"vip": "10.250.0"})
    assert "cannot be held by a node" in refused(GatewaySpec, {"vip": "127.0.0.1"})
    assert "greater than or equal to 1" in refused(GatewaySpec, {"replicas": 0})


def test_a_frontend_has_what_its_protocol_needs() -> None:
    https = {"gateway": "edge", "port": 443, "protocol": "HTTPS"}
    assert "needs certificate" in refused(FrontendSpec, https)
    ok = FrontendSpec.model_validate({**https, "certificate": {"namespace": "shop",
                                                               "name": "shop-tls"}})
    assert ok.certificate is not None and ok.certificate.name == "shop-tls"
    assert "serves no certificate" in refused(FrontendSpec, {
        "gateway": "edge", "port": 80, "certificate": {"namespace": "a", "name": "b"}})
    assert "give defaultBackends" in refused(FrontendSpec, {"gateway": "edge", "port": 5432,
                                                            "protocol": "TCP"})
    assert "less than or equal to 65535" in refused(FrontendSpec, {"gateway": "e",
                                                                   "port": 70000})


def test_a_rule_forwards_or_redirects_and_its_matches_are_well_formed() -> None:
    rule = RuleSpec.model_validate({
        "frontend": "edge-80", "priority": 1, "backends": [WEB, {**WEB, "service": "v2",
                                                                  "weight": 3}],
        "match": {"hosts": ["shop.example.com", "*.shop.example.com"],
                  "path": {"type": "Prefix", "value": "/cart"},
                  "headers": [{"name": "X-Canary", "type": "Exists"}],
                  "methods": ["GET", "POST"], "sourceRanges": ["10.0.0.0/8"]},
        "algorithm": "LeastConnections", "affinity": {"type": "Cookie"}})
    assert rule.affinity is not None and rule.affinity.cookieName == "KGSESSION"
    assert [b.weight for b in rule.backends] == [1, 3]
    assert "exactly one of them" in refused(RuleSpec, {"frontend": "f"})
    assert "exactly one of them" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "redirect": {"scheme": "https"}})
    assert "changes nothing" in refused(RuleSpec, {"frontend": "f", "redirect": {}})
    assert "weight 0" in refused(RuleSpec, {"frontend": "f", "backends": [{**WEB,
                                                                           "weight": 0}]})
    assert "not a regular expression" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "match": {"path": {"type": "Regex",
                                                               "value": "/(a"}}})
    assert "must start with /" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "match": {"path": {"value": "cart"}}})
    assert "not a DNS name" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "match": {"hosts": ["Shop_Example"]}})
    assert "not a CIDR" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "match": {"sourceRanges": ["10.0.0/8"]}})
    assert "give value, or type Exists" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "match": {"headers": [{"name": "X-A"}]}})
    assert "match a path of type Prefix" in refused(RuleSpec, {
        "frontend": "f", "backends": [WEB], "rewrite": {"pathPrefix": "/"},
        "match": {"path": {"type": "Regex", "value": "^/a"}}})
    assert "less than or equal to 10" in refused(RuleSpec, {"frontend": "f", "priority": 11,
                                                            "backends": [WEB]})


def test_the_crds_are_generated_from_the_models() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in alb_crds()}
    assert set(crds) == {"Gateway", "Frontend", "Rule"}
    rule = crds["Rule"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = rule["properties"]["spec"]["properties"]
    assert spec["algorithm"]["enum"] == ["RoundRobin", "LeastConnections", "SourceHash"]
    assert spec["priority"]["maximum"] == 10
    assert crds["Gateway"]["spec"]["scope"] == "Cluster"
