"""GET /metrics as an operator's Prometheus sees it: closed without the token, turns counted by outcome."""
import json

import fakeredis
import httpx
import pytest

from gateway_app import gateway_client
from gateway.conversation import Conversation
from gateway.settings import Settings

TOKEN = "metrics-token-for-tests-0123456789"


def value(text: str, sample: str) -> float:
    """The value of one sample line, e.g. 'anju_turns_total{channel="api",outcome="answered"}'."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in the exposition")


class Rasa:
    def __init__(self):
        self.up = True
        self.reply = [{"text": "好的"}]

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=self.reply)


@pytest.fixture
def rasa():
    return Rasa()


@pytest.fixture
def client(rasa):
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    with gateway_client(rasa.handler, redis, metrics_token=TOKEN) as test_client:
        app = test_client.app
        app.state.conversation = Conversation(app.state.rasa, 2000, redis, metrics=app.state.metrics)
        token = test_client.post("/api/session").json()["token"]
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def scrape(client) -> str:
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return resp.text


def test_metrics_need_the_token_and_are_off_without_one(client):
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    with gateway_client(Rasa().handler, redis) as without_token:
        resp = without_token.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 404 and "METRICS_TOKEN" in resp.json()["detail"]


def test_turns_are_counted_by_outcome_and_timed(client, rasa):
    before = scrape(client)
    answered = 'anju_turns_total{channel="api",outcome="answered"}'
    assert client.post("/api/chat", json={"text": "租房怎么提取"}).status_code == 200
    rasa.reply = [{"text": "您想问的是哪一项？"}, {"custom": {"type": "clarify"}}]
    clarify = client.post("/api/chat", json={"text": "公积金"}).json()
    assert all((m.get("custom") or {}).get("type") != "clarify" for m in clarify["messages"])  # never shown
    client.post("/api/chat", json={"text": ""})
    rasa.up = False
    client.post("/api/chat", json={"text": "你好"})
    after = scrape(client)
    assert value(after, answered) - value(before, answered) == 1
    assert value(after, 'anju_turns_total{channel="api",outcome="clarified"}') == 1
    assert value(after, 'anju_turns_total{channel="api",outcome="refused"}') == 1
    assert value(after, 'anju_turns_total{channel="api",outcome="unavailable"}') == 1
    assert value(after, 'anju_dependency_errors_total{dependency="rasa"}') == 1
    assert value(after, 'anju_turn_seconds_count{channel="api"}') == 4
    assert "anju_queue_waiting 0.0" in after


def test_production_refuses_a_placeholder_metrics_token():
    real = {name: f"real-{name}-0123456789abcdef" for name in (
        "rasa_token", "rasa_gateway_token", "core_api_token", "video_node_token", "identity_assertion_key",
        "wechat_token", "wechat_app_secret")}
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        Settings(_env_file=None, anju_env="production", metrics_token="dev-metrics", **real)


def test_every_answer_names_its_request_id_and_the_turn_passes_it_to_rasa(client, rasa):
    seen = []
    handler = rasa.handler

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("x-request-id"), json.loads(request.content)["metadata"].get("request_id")))
        return handler(request)

    client.app.state.rasa._http[0]._transport = httpx.MockTransport(recording)
    resp = client.post("/api/chat", json={"text": "你好"}, headers={"X-Request-ID": "trace-0123456789"})
    assert resp.headers["x-request-id"] == "trace-0123456789"
    assert seen == [("trace-0123456789", "trace-0123456789")]
    forged = client.post("/api/chat", json={"text": "你好"}, headers={"X-Request-ID": "bad id\r\nx"})
    assert forged.headers["x-request-id"] != "bad id\r\nx" and len(forged.headers["x-request-id"]) == 16
    assert client.get("/healthz").headers["x-request-id"]
