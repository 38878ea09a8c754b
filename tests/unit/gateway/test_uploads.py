"""POST /api/uploads/{application}/{item}: session, token, size cap, rate and the core's answer passed
through. The core is an httpx mock here (its own tests run the real upload path with OCR)."""
import httpx
import pytest

from gateway.channels import uploads
from gateway_app import gateway_client

URL = "/api/uploads/TQ20261123000001/m7"
JPEG = b"\xff\xd8\xff" + b"\x01" * 5000


def no_rasa(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


@pytest.fixture
def core(monkeypatch):
    """A fake core behind the gateway's client; records what reached it."""
    seen = []
    state = {"answer": (200, {"item": "m7", "status": "accepted", "status_name": "核验通过", "message": "已上传",
                              "fields": {}, "remaining": []})}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = state["answer"]
        return httpx.Response(status, json=body)

    real = uploads.internal_client
    monkeypatch.setattr(uploads, "internal_client",
                        lambda **kwargs: real(transport=httpx.MockTransport(handler), **kwargs))
    return seen, state


def session_token(client) -> str:
    return client.post("/api/session").json()["token"]


def post(client, token, data=JPEG, upload_token="1790000000.sig", **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if upload_token:
        headers["X-Upload-Token"] = upload_token
    return client.post(URL, headers=headers, files={"file": ("lease.jpg", data, "image/jpeg")}, **kwargs)


async def test_a_file_goes_to_the_core_with_the_core_token_and_its_answer_comes_back(redis, core):
    seen, state = core
    with gateway_client(no_rasa, redis, core_url="http://core.test") as client:
        token = session_token(client)
        answer = post(client, token)
        assert answer.status_code == 200 and answer.json()["status"] == "accepted"
        forwarded = seen[0]
        assert forwarded.url.path == "/applications/TQ20261123000001/materials/m7"
        assert forwarded.headers["authorization"] == "Bearer dev-core-token"
        assert forwarded.headers["x-upload-token"] == "1790000000.sig"
        assert forwarded.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert JPEG in forwarded.content                                   # the file, byte for byte

        refused = {"detail": {"code": "id_number_mismatch", "message": "材料上的身份证号不是您本人的…"}}
        state["answer"] = (422, refused)
        mismatch = post(client, token)
        assert mismatch.status_code == 422 and mismatch.json() == refused      # unchanged


async def test_without_a_session_or_an_upload_token_nothing_is_forwarded(redis, core):
    seen, _ = core
    with gateway_client(no_rasa, redis, core_url="http://core.test") as client:
        anonymous = post(client, None)
        assert anonymous.status_code == 401 and "会话" in anonymous.json()["detail"]["message"]
        assert post(client, "not-a-session").status_code == 401
        tokenless = post(client, session_token(client), upload_token=None)
        assert tokenless.status_code == 401 and tokenless.json()["detail"]["code"] == "upload_token_invalid"
        assert seen == []


async def test_a_file_over_the_cap_is_refused_before_it_is_read_whole(redis, core):
    seen, _ = core
    with gateway_client(no_rasa, redis, core_url="http://core.test", limit_body_upload_bytes=20_000) as client:
        token = session_token(client)
        too_big = post(client, token, data=b"\xff\xd8\xff" + b"\x00" * 30_000)
        assert too_big.status_code == 413
        chunks = (b"\x00" * 4096 for _ in range(10))                          # chunked: no Content-Length
        streamed = client.post(URL, headers={"Authorization": f"Bearer {token}", "X-Upload-Token": "t.s",
                                             "Content-Type": "multipart/form-data; boundary=x"}, content=chunks)
        assert streamed.status_code == 413
        assert post(client, token).status_code == 200 and len(seen) == 1


async def test_uploads_are_rate_limited_per_session(redis, core):
    with gateway_client(no_rasa, redis, core_url="http://core.test", rate_upload_session="2/600") as client:
        token = session_token(client)
        assert [post(client, token).status_code for _ in range(3)] == [200, 200, 429]
        assert post(client, session_token(client)).status_code == 200         # another session has its own


async def test_a_core_that_cannot_be_reached_is_a_503_in_chinese(redis):
    with gateway_client(no_rasa, redis, core_url="http://127.0.0.1:1") as client:
        answer = post(client, session_token(client))
        assert answer.status_code == 503 and "暂时不可用" in answer.json()["detail"]["message"]
        assert answer.headers["retry-after"]


async def test_the_schema_declares_a_multipart_file(redis):
    with gateway_client(no_rasa, redis) as client:
        operation = client.get("/openapi.json").json()["paths"]["/api/uploads/{application_id}/{item_key}"]["post"]
        schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert schema["properties"]["file"]["format"] == "binary"
