"""Inputs the fuzzer (bench/fuzz_http.py) found mishandled: each now gets a clear, deliberate answer."""
import fakeredis
import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from gateway_app import gateway_client


def no_rasa(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


@pytest.mark.parametrize("first_frame", [b"\x00\xff binary", "not json", "[1, 2]"])
def test_a_handoff_socket_opened_with_a_bad_frame_is_closed_as_a_bad_message_not_an_internal_error(first_frame):
    with gateway_client(no_rasa, fakeredis.FakeAsyncRedis(decode_responses=True)) as client:
        with client.websocket_connect("/ws/handoff/t-none") as ws:
            ws.send_bytes(first_frame) if isinstance(first_frame, bytes) else ws.send_text(first_frame)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
    assert closed.value.code == 1008


def test_wechat_login_with_wechat_unreachable_is_a_503_that_says_when_to_retry():
    with gateway_client(no_rasa, fakeredis.FakeAsyncRedis(decode_responses=True),
                        wechat_api_base="http://127.0.0.1:9", wechat_timeout_s=1.0) as client:
        resp = client.post("/api/wx/login", json={"code": "any-code"})
    assert resp.status_code == 503 and resp.headers["retry-after"] == "30" and "12329" in resp.json()["detail"]
