"""An ALB instance's HAProxy configuration, rendered from its resources (pure)."""

from __future__ import annotations

from kubeglobe.alb.render import Endpoint, match_acls, quoted, render_instance
from kubeglobe.api.alb import FrontendSpec, Match, RuleSpec

WEB = {"namespace": "shop", "service": "web", "port": 80}
ENDPOINTS = {("shop", "web", 80): [Endpoint("web-a", "10.200.1.2", 8080),
                                   Endpoint("web-b", "10.200.2.2", 8080)],
             ("shop", "v2", 80): [Endpoint("v2-a", "10.200.1.3", 8080)]}


def rule(**spec: object) -> RuleSpec:
    return RuleSpec.model_validate({"frontend": "edge-80", "backends": [WEB], **spec})


def test_a_match_is_acls_anded_across_fields_and_ored_within() -> None:
    lines, names = match_acls("r", Match.model_validate({
        "hosts": ["shop.example.com", "*.shop.example.com"],
        "path": {"type": "Prefix", "value": "/cart"}, "methods": ["GET", "POST"],
        "headers": [{"name": "X-Canary", "type": "Exists"}], "sourceRanges": ["10.0.0.0/8"]}))
    assert names == ["r_host", "r_path", "r_hdr0", "r_method", "r_src"]
    assert "    acl r_host req.hdr(host),field(1,:),lower -m str shop.example.com" in lines
    assert "    acl r_host req.hdr(host),field(1,:),lower -m end .shop.example.com" in lines
    # a prefix of whole segments: /cart and /cart/..., never /carts
    assert "    acl r_path path -m str '/cart'" in lines
    assert "    acl r_path path -m beg '/cart/'" in lines
    assert "    acl r_hdr0 req.hdr(X-Canary) -m found" in lines
    assert match_acls("r", Match()) == ([], [])
    assert quoted("it's \\1 $HOME") == "'it'\\''s \\1 $HOME'"  # words, as written


def test_rules_go_in_priority_order_and_one_of_no_frontend_here_is_refused() -> None:
    out = render_instance(
        frontends={"edge-80": FrontendSpec(gateway="edge", port=80)},
        rules={"late": rule(priority=9), "first": rule(priority=0, match={"hosts": ["a.b"]}),
               "split": rule(priority=5, backends=[WEB, {**WEB, "service": "v2", "weight": 3}]),
               "lost": rule(frontend="other-443")},
        endpoints=ENDPOINTS, certs_dir="/run/certs")
    uses = [line.split()[1] for line in out.config.splitlines()
            if line.startswith("    use_backend")]
    assert uses == ["rule-first", "rule-split", "rule-late"]
    assert out.refused == {"lost": "frontend other-443 is not a Frontend of this gateway"}
    # weights split between Services: web's 1 over two pods, v2's 3 on one (1:3)
    split = out.config.split("\nbackend rule-split\n", 1)[1].split("\n\n", 1)[0]
    weights = {line.split()[1]: int(line.split()[4]) for line in split.splitlines()
               if line.startswith("    server ")}
    assert weights == {"shop.web.web-a": 43, "shop.web.web-b": 43, "shop.v2.v2-a": 256}
    assert "no rule of this gateway matches the request" in out.config  # the default


def test_each_pod_is_checked_as_the_rule_says() -> None:
    def backend(**spec: object) -> list[str]:
        out = render_instance(frontends={"edge-80": FrontendSpec(gateway="edge", port=80)},
                              rules={"r": rule(**spec)}, endpoints=ENDPOINTS, certs_dir="/c")
        return out.config.split("\nbackend rule-r\n", 1)[1].split("\n\n", 1)[0].splitlines()

    tcp = backend()
    assert not any("httpchk" in line for line in tcp)
    assert tcp[-1].endswith(" check inter 2000ms fall 2 rise 2")
    http = backend(healthCheck={"type": "HTTP", "path": "/healthz", "intervalSeconds": 0.5,
                                "fall": 3, "rise": 1})
    assert "    option httpchk GET /healthz" in http
    assert "    http-check expect rstatus ^[23]" in http  # 2xx or 3xx unless told
    assert http[-1].endswith(" check inter 500ms fall 3 rise 1")
