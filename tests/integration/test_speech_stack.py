"""The speech server the run command starts: loopback, shared secret, vosk-server protocol."""
import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.integration


def test_the_speech_server_speaks_the_vosk_protocol_with_its_secret(stack):
    secret = stack.kept_secret("speech.secret")
    with connect(f"{stack.urls['speech']}/?secret={secret}", open_timeout=10) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 8000}}))
        ws.send(b"\x00\x00" * 1600)  # 0.2 s of silence
        reply = json.loads(ws.recv(timeout=20))  # one JSON reply per audio frame
        assert set(reply) in ({"partial"}, {"text"}) and not any(reply.values())  # silence: nothing heard
        ws.send('{"eof" : 1}')
        assert json.loads(ws.recv(timeout=30)) == {"text": ""}


def test_the_speech_server_refuses_a_wrong_secret(stack):
    with connect(f"{stack.urls['speech']}/?secret=guess", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.send(b"\x00\x00" * 160)
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1008
