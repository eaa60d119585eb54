import datetime as dt
from collections.abc import Callable
from pathlib import Path

from lightkube.config.kubeconfig import SingleConfig

from kubeglobe.api.cluster import ClusterResource
from kubeglobe.hub.install import cluster_crd
from kubeglobe.hub.leader import Identity, decide
from kubeglobe.hub.tokens import Identity as User
from kubeglobe.hub.tokens import TokenRecord, check_token, issue_token, parse_token
from kubeglobe.kube.client import load_kubeconfig
from kubeglobe.server.proxy import forward_headers

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_token_round_trip_and_tamper() -> None:
    issued = issue_token(user="bob", groups=("g1", "g2"))
    parsed = parse_token(issued.token)
    assert parsed is not None
    data = issued.manifest["data"]
    assert check_token(secret_part=parsed[1], data=data) == TokenRecord(  # type: ignore[arg-type]
        user="bob", groups=("g1", "g2"), kind="system", name="", expires=None)
    assert check_token(secret_part="x" * 32, data=data) is None  # type: ignore[arg-type]
    assert parse_token("kg_nothex_" + "a" * 32) is None
    assert parsed[1] not in str(issued.manifest)


def test_leader_rule() -> None:
    me = Identity("a")
    assert decide(holder=None, renewed=None, duration=10, me=me, now=NOW)
    assert decide(holder="a", renewed=NOW, duration=10, me=me, now=NOW)
    assert not decide(holder="b", renewed=NOW - dt.timedelta(seconds=5), duration=10, me=me,
                      now=NOW)
    assert decide(holder="b", renewed=NOW - dt.timedelta(seconds=11), duration=10, me=me,
                  now=NOW)


def test_proxy_strips_credentials_and_claims_and_adds_identity() -> None:
    out = forward_headers([("Authorization", "Bearer x"), ("Impersonate-User", "root"),
                           ("Accept", "application/json"), ("Host", "hub")],
                          User("alice", ("devs", "ops")))
    assert ("Accept", "application/json") in out
    assert all(k.lower() not in ("authorization", "host") for k, _ in out)
    assert [v for k, v in out if k == "Impersonate-User"] == ["alice"]
    assert [v for k, v in out if k == "Impersonate-Group"] == ["devs", "ops"]


def test_every_crd_is_structural() -> None:
    from kubeglobe.hub.install import alb_crds, tenancy_crds

    for crd in tenancy_crds() + alb_crds():
        _check_structural(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    crd = cluster_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    _check_structural(schema)
    spec = schema["properties"]["spec"]
    assert spec["properties"]["mode"]["enum"] == ["import", "register"]
    assert ClusterResource.model_json_schema()  # the model is the source


def _check_structural(schema: dict) -> None:  # type: ignore[type-arg]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node and "anyOf" not in node and "title" not in node
            assert not ("properties" in node and "additionalProperties" in node)
            assert node.get("default", 1) not in ("", None)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)


def test_token_labels_are_valid_for_any_user_name() -> None:
    import re

    issued = issue_token(user="kubeglobe:controller", groups=())
    value = issued.manifest["metadata"]["labels"]["kubeglobe.io/token-user"]  # type: ignore[index]
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)


def test_micro_times_always_carry_a_fraction() -> None:
    from kubeglobe.kube.microtime import micro_now

    for _ in range(1000):
        assert "." in micro_now().isoformat()


def test_only_small_known_length_responses_are_buffered() -> None:
    from kubeglobe.server.proxy import BUFFER_LIMIT, is_small

    assert is_small([("Content-Length", "512")])
    assert not is_small([("content-length", str(BUFFER_LIMIT + 1))])
    assert not is_small([("Transfer-Encoding", "chunked")])  # a watch: always streamed


def test_relayed_responses_keep_repeated_headers_and_frame_their_own_body() -> None:
    from kubeglobe.server.proxy import relay, relayed_headers

    upstream = [("Content-Type", "application/json"), ("Warning", '299 - "one"'),
                ("Warning", '299 - "two"'), ("Date", "Fri"), ("Content-Length", "2"),
                ("Transfer-Encoding", "chunked")]
    response = relay(200, relayed_headers(upstream), b"{}")
    assert response.headers.getlist("warning") == ['299 - "one"', '299 - "two"']
    assert response.headers.getlist("content-length") == ["2"]
    assert "date" not in response.headers and "transfer-encoding" not in response.headers
    # A HEAD answer has no body but keeps the length the far side announced.
    head = relay(200, relayed_headers([("Content-Length", "512")]), b"")
    assert head.headers.getlist("content-length") == ["512"]
    # Without one, Starlette's own framing stays.
    assert relay(200, [], b"abc").headers.getlist("content-length") == ["3"]


def test_register_mode_clusters_are_reached_through_the_platform_proxy(tmp_path: Path) -> None:
    from kubeglobe.hub.cluster_access import PlatformRoute

    ca = tmp_path / "ca.pem"
    route = PlatformRoute(url="https://hub.example:8443/", ca_file=str(ca), token="kg_t")
    config = route.kubeconfig("workload-2")
    assert config.cluster.server == "https://hub.example:8443/clusters/workload-2/k8s"
    assert config.cluster.certificate_auth == str(ca)
    assert config.user is not None and config.user.token == "kg_t"
    bare = PlatformRoute(url="https://hub.example:8443", ca_file=None, token="kg_t")
    assert bare.kubeconfig("workload-2").cluster.certificate_auth is None
    assert bare.kubeconfig("workload-2").cluster.server == config.cluster.server


def _kubeconfig(server: str, **user: str) -> SingleConfig:
    return load_kubeconfig(data={
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user or {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x"})


def test_one_client_per_cluster_replaced_when_its_credentials_change() -> None:
    import asyncio

    from kubeglobe.kube.clusters import ClusterClients

    async def scenario() -> None:
        clients = ClusterClients(retire_seconds=0)
        builds: list[str] = []

        def config(server: str) -> Callable[[], SingleConfig]:
            def build() -> SingleConfig:
                builds.append(server)
                return _kubeconfig(server)
            return build

        first = clients.client("w1", credentials=("import", "1"), config=config("https://a"))
        again = clients.client("w1", credentials=("import", "1"), config=config("https://a"))
        other = clients.client("w2", credentials=("import", "1"), config=config("https://b"))
        assert again is first and other is not first and builds == ["https://a", "https://b"]
        rotated = clients.client("w1", credentials=("import", "2"), config=config("https://a"))
        assert rotated is not first
        await asyncio.sleep(0.01)  # a replaced client is closed once its grace is over
        assert first.closed and not rotated.closed
        clients.drop("w2")
        await asyncio.sleep(0.01)
        assert other.closed
        await clients.aclose()
        assert rotated.closed

    asyncio.run(scenario())


def test_a_replaced_client_is_closed_when_the_cache_closes_before_its_grace_ends() -> None:
    import asyncio

    from kubeglobe.kube.clusters import ClusterClients

    async def scenario() -> None:
        clients = ClusterClients(retire_seconds=60)
        first = clients.client("w1", credentials=1, config=lambda: _kubeconfig("https://a"))
        clients.client("w1", credentials=2, config=lambda: _kubeconfig("https://a"))
        assert not first.closed  # a request under way on it may still end normally
        await clients.aclose()
        assert first.closed

    asyncio.run(scenario())


def test_an_unusable_client_certificate_is_a_kubeconfig_error() -> None:
    import base64

    import pytest

    from kubeglobe.kube.client import KubeconfigError
    from kubeglobe.kube.clusters import ClusterClient

    junk = base64.b64encode(b"not a certificate").decode()
    with pytest.raises(KubeconfigError, match="cannot build a client for https://a"):
        ClusterClient(_kubeconfig("https://a", **{"client-certificate-data": junk,
                                                   "client-key-data": junk}))
