"""The shared loopback base: lifecycle, TLS, recorded requests and fault rules, through real clients."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.error
import urllib.request

import pytest

from tests.fakes.base import FakeHandler, FaultRules, HttpFake, RecordedRequest, free_port, scope_is


class _EchoHandler(FakeHandler):
    """Answers the recorded body back, or 503 while an "unavailable" rule matches."""

    def route(self, rec: RecordedRequest) -> None:
        rec.scope = rec.param("tenant")
        if self.fake.faults.take(rec, "unavailable"):
            return self.send_json(503, {"error": "try later"})
        return self.send_json(200, {"echo": rec.body, "path": rec.path})


class EchoFake(HttpFake):
    handler = _EchoHandler
    thread_name = "echo-fake"


def _call(url: str, body: dict | None = None, *, method: str = "POST", context: ssl.SSLContext | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serves_on_a_free_loopback_port_and_stops():
    with EchoFake() as fake:
        url = fake.url
        assert url.startswith("http://127.0.0.1:") and fake.port > 0
        assert _call(url + "/a", {"x": 1}) == (200, {"echo": {"x": 1}, "path": "/a"})
        assert fake.handler.disable_nagle_algorithm is True
    with pytest.raises(urllib.error.URLError):
        _call(url + "/a", {"x": 1})


def test_records_method_path_query_headers_json_body_and_status():
    with EchoFake() as fake:
        _call(fake.url + "/v1/things?tenant=t1&tag=a&tag=b", {"name": "vm-1"}, headers={"Authorization": "Bearer k"})
        _call(fake.url + "/health", method="GET")
        first, second = fake.requests
    assert (first.method, first.path, first.query) == ("POST", "/v1/things", {"tenant": ["t1"], "tag": ["a", "b"]})
    assert first.headers["content-type"] == "application/json" and first.authorization == "Bearer k"
    assert first.body == {"name": "vm-1"} and json.loads(first.text) == {"name": "vm-1"}
    assert (first.status, first.scope, first.param("tag")) == (200, "t1", "a")
    assert (second.method, second.path, second.body, second.body_error, second.status) == ("GET", "/health", None, None, 200)


def test_a_body_that_is_not_json_is_recorded_with_the_reason():
    with EchoFake() as fake:
        request = urllib.request.Request(fake.url + "/x", data=b"{not json", method="PUT")
        with urllib.request.urlopen(request, timeout=5):
            pass
        (rec,) = fake.requests
    assert rec.raw == b"{not json" and rec.body is None and "Expecting property name" in rec.body_error


def test_tls_with_a_throwaway_ca_that_clients_verify():
    with EchoFake(tls=True) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=fake.ca_path)
        assert _call(fake.url + "/s", {"ok": True}, context=trusted)[0] == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            _call(fake.url + "/s", {"ok": True}, context=ssl.create_default_context())


def test_fault_rules_answer_the_first_n_matching_calls_then_step_aside():
    with EchoFake() as fake:
        fake.faults.add("unavailable", when=scope_is("t1"), times=2)
        statuses = [_call(fake.url + f"/c?tenant={t}", {})[0] for t in ("t2", "t1", "t1", "t1")]
        assert statuses == [200, 503, 503, 200]
        assert [(r.scope, r.status) for r in fake.requests] == [("t2", 200), ("t1", 503), ("t1", 503), ("t1", 200)]


def test_fault_rules_with_a_key_replace_and_standing_rules_last_until_removed():
    rules = FaultRules()
    rec = RecordedRequest("GET", "/", {}, {}, scope="sub-1")
    rules.add("throttle", when=scope_is("sub-1"), times=5, key=("throttle", "sub-1"))
    rules.add("throttle", when=scope_is("SUB-1"), times=1, key=("throttle", "sub-1"))
    assert rules.take(rec, "throttle") is not None and rules.take(rec, "throttle") is None
    rules.add("fail", when=scope_is("*"), times=None, key="fail", status=403)
    assert all(rules.take(rec, "fail").args == {"status": 403} for _ in range(10))
    assert rules.take(rec, "throttle") is None  # another kind is not consumed by asking for "fail"
    rules.remove("fail")
    assert rules.take(rec) is None


def test_fault_rules_count_exactly_under_concurrent_calls():
    rules = FaultRules()
    rules.add("throttle", times=50)
    rec = RecordedRequest("GET", "/", {}, {})
    hits: list[bool] = []

    def hammer() -> None:
        for _ in range(40):
            hits.append(rules.take(rec) is not None)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hits.count(True) == 50 and len(hits) == 160


def test_free_port_is_not_listening():
    port = free_port()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))
