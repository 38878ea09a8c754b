"""The console's review API (/api/staff/review): who may review, the rejection reason's rule,
the core's refusals in Chinese, and each decision in the audit chain. A fake core (its /review
API and POST /audit/records) stands behind the gateway; fakeredis holds the staff sessions."""
import json

import httpx
import pyotp
import pytest

from gateway.audit_client import AuditClient
from gateway.channels.review import MISCONFIGURED, NOT_CONFIGURED, REASON_RULE, ReviewCore
from gateway.settings import DEV_STAFF_ACCOUNTS
from gateway.staff_auth import StaffAuth
from gateway_app import gateway_client

PASSWORDS = {"dev-staff": "dev-staff-pass", "dev-supervisor": "dev-super-pass", "dev-reviewer": "dev-review-pass"}
CORE = "http://core.test"


class FakeCore:
    """Just enough of the core: review list/one/decisions with their refusals, a material file, audit records."""

    def __init__(self):
        self.apps = {
            "TQ20261123000001": {"id": "TQ20261123000001", "status": "under_review", "submitted_at": "2026-11-23T02:05:00",
                                 "channel_ref": "web-1a2b3c", "person": {"name_masked": "张*"}},
            "TQ20261123000002": {"id": "TQ20261123000002", "status": "submitted", "submitted_at": "2026-11-23T02:00:00",
                                 "channel_ref": "wxmsg-9f8e7d", "person": {"name_masked": "李*"}},
            "TQ20261123000003": {"id": "TQ20261123000003", "status": "approved", "submitted_at": "2026-11-23T01:00:00",
                                 "channel_ref": "voice-00aa11", "person": {"name_masked": "王*"}},
        }
        self.calls, self.audit = [], []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/audit/records":
            self.audit.append(json.loads(request.content))
            return httpx.Response(201, json={"seq": len(self.audit), "duplicate": False})
        if request.headers.get("authorization") != "Bearer dev-reviewer-token":
            return httpx.Response(403, json={"detail": {"code": "not_reviewer", "message": "需要审核人员权限。"}})
        self.calls.append((request.method, path, request.headers.get("x-staff-id"), request.content))
        parts = path.split("/")        # /review/applications/<id>/<verb>
        if path == "/review/applications":
            wanted = request.url.params.get("status")
            return httpx.Response(200, json={"applications": [a for a in self.apps.values()
                                                              if wanted in (None, a["status"])]})
        app = self.apps.get(parts[3])
        if app is None:
            return httpx.Response(404, json={"detail": {"code": "application_not_found", "message": "未查询到该申请。"}})
        if len(parts) == 4:
            return httpx.Response(200, json=app)
        if parts[4] == "materials":
            kind = "text/html" if parts[5] == "page" else "image/png"
            return httpx.Response(200, content=b"\x89PNG-bytes", headers={"content-type": kind})
        if app["status"] not in ("submitted", "under_review"):
            return httpx.Response(409, json={"detail": {"code": "invalid_transition", "message": "…",
                                                        "current_status": app["status"]}})
        app["status"] = {"start": "under_review", "approve": "approved", "reject": "rejected"}[parts[4]]
        if parts[4] == "reject":
            app["reason"] = json.loads(request.content)["reason"]
        return httpx.Response(200, json=app)


@pytest.fixture
def core():
    return FakeCore()


@pytest.fixture
def console(redis, core):
    with gateway_client(lambda request: httpx.Response(200, json=[]), redis) as client:
        app = client.app
        transport = httpx.MockTransport(core.handler)
        app.state.staff_auth = StaffAuth(redis, DEV_STAFF_ACCOUNTS, 3600)
        app.state.audit = AuditClient(redis, CORE, "core-token", 2.0, transport=transport)
        app.state.review_core = ReviewCore(CORE, "dev-reviewer-token", 2.0, transport=transport)
        yield client


def login(client, username):
    account = next(a for a in DEV_STAFF_ACCOUNTS if a.username == username)
    code = pyotp.TOTP(account.totp_secret.get_secret_value()).now()
    response = client.post("/api/staff/login", json={"username": username, "password": PASSWORDS[username],
                                                     "totp": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_plain_staff_may_not_review_and_strangers_must_log_in(console, core):
    staff = login(console, "dev-staff")
    for method, path in [("GET", "/api/staff/review/applications"),
                         ("POST", "/api/staff/review/applications/TQ20261123000002/approve")]:
        refused = console.request(method, path, headers=staff)
        assert refused.status_code == 403 and refused.json()["detail"] == "只有审核人员或主管可以审核在线申请。"
    assert console.get("/api/staff/review/applications").status_code == 401
    assert core.calls == []                                        # nothing reached the core


def test_a_reviewer_lists_open_applications_oldest_first_without_sender_ids(console, core):
    reviewer = login(console, "dev-reviewer")
    listed = console.get("/api/staff/review/applications", headers=reviewer)
    assert listed.status_code == 200, listed.text
    apps = listed.json()["applications"]
    assert [a["id"] for a in apps] == ["TQ20261123000002", "TQ20261123000001"]     # approved ones are done
    assert [a["channel"] for a in apps] == ["微信", "网页"] and all("channel_ref" not in a for a in apps)
    assert {c[2] for c in core.calls} == {"dev-reviewer"}                          # X-Staff-Id names the reviewer
    everything = console.get("/api/staff/review/applications", params={"status": "all"}, headers=reviewer).json()
    assert len(everything["applications"]) == 3
    one = console.get("/api/staff/review/applications/TQ20261123000003", headers=reviewer).json()
    assert one["status"] == "approved" and one["channel"] == "电话"
    missing = console.get("/api/staff/review/applications/TQ19990101000000", headers=reviewer)
    assert missing.status_code == 404 and "未查询到该申请" in missing.json()["detail"]


@pytest.mark.parametrize("reason", ["", "  ", "驳", "长" * 151])
def test_a_rejection_needs_a_reason_of_2_to_150_characters(console, core, reason):
    reviewer = login(console, "dev-reviewer")
    refused = console.post("/api/staff/review/applications/TQ20261123000002/reject", json={"reason": reason},
                           headers=reviewer)
    assert refused.status_code == 422 and refused.json()["detail"] == REASON_RULE
    assert core.apps["TQ20261123000002"]["status"] == "submitted" and core.calls == []


def test_a_rejection_reaches_the_core_and_the_audit_chain(console, core):
    reviewer = login(console, "dev-reviewer")
    rejected = console.post("/api/staff/review/applications/TQ20261123000002/reject", headers=reviewer,
                            json={"reason": "  租赁合同  已过期 "})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert core.apps["TQ20261123000002"]["reason"] == "租赁合同 已过期"            # spaces tidied before it is shown
    decision = [r for r in core.audit if r["action"] == "review.reject"]
    assert decision and decision[0]["actor"] == "dev-reviewer" and decision[0]["subject"] == "TQ20261123000002"
    assert decision[0]["outcome"] == "rejected"


def test_an_application_already_decided_is_refused_in_words(console, core):
    reviewer = login(console, "dev-reviewer")
    late = console.post("/api/staff/review/applications/TQ20261123000003/reject", headers=reviewer,
                        json={"reason": "材料不全"})
    assert late.status_code == 409
    assert late.json()["detail"] == "该申请已被处理，当前状态：已审批。请刷新列表。"
    assert [r["outcome"] for r in core.audit if r["action"] == "review.reject"] == ["refused invalid_transition"]


def test_a_supervisor_may_approve_and_start(console, core):
    supervisor = login(console, "dev-supervisor")
    started = console.post("/api/staff/review/applications/TQ20261123000002/start", headers=supervisor)
    assert started.json()["status"] == "under_review"
    approved = console.post("/api/staff/review/applications/TQ20261123000002/approve", headers=supervisor,
                            json={"note": "材料齐全"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert json.loads(core.calls[-1][3]) == {"note": "材料齐全"}
    assert [r["action"] for r in core.audit if r["action"].startswith("review.")] == ["review.start", "review.approve"]


def test_a_wrong_or_missing_reviewer_token_says_so(console, core):
    reviewer = login(console, "dev-reviewer")
    transport = httpx.MockTransport(core.handler)
    console.app.state.review_core = ReviewCore(CORE, "another-token", 2.0, transport=transport)
    wrong = console.get("/api/staff/review/applications", headers=reviewer)
    assert wrong.status_code == 503 and wrong.json()["detail"] == MISCONFIGURED
    console.app.state.review_core = ReviewCore(CORE, None, 2.0, transport=transport)
    unset = console.get("/api/staff/review/applications", headers=reviewer)
    assert unset.status_code == 503 and unset.json()["detail"] == NOT_CONFIGURED


def test_material_files_pass_through_as_images_never_as_pages(console, core):
    reviewer = login(console, "dev-reviewer")
    image = console.get("/api/staff/review/applications/TQ20261123000001/materials/lease/file", headers=reviewer)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == b"\x89PNG-bytes" and image.headers["cache-control"] == "no-store"
    page = console.get("/api/staff/review/applications/TQ20261123000001/materials/page/file", headers=reviewer)
    assert page.headers["content-type"] == "application/octet-stream"             # never rendered as HTML
    assert [r["outcome"] for r in core.audit if r["action"] == "review.material.read"] == ["lease", "page"]
    assert console.get("/api/staff/review/applications/TQ20261123000001/materials/lease/file").status_code == 401


def test_the_reviewer_token_defaults_outside_production_only():
    from gateway.settings import Settings
    real = {name: f"real-{name}-0123456789abcdef" for name in (
        "rasa_token", "rasa_gateway_token", "core_api_token", "video_node_token", "identity_assertion_key",
        "wechat_token", "wechat_app_secret")}
    assert Settings(_env_file=None, anju_env="test").core_reviewer_token.get_secret_value() == "dev-reviewer-token"
    with pytest.raises(ValueError, match="CORE_REVIEWER_TOKEN"):
        Settings(_env_file=None, anju_env="production", core_reviewer_token="dev-reviewer-token", **real)
    with pytest.raises(ValueError) as unset:          # unset in production: the review tab is off, not refused
        Settings(_env_file=None, anju_env="production", **real)
    assert "CORE_REVIEWER_TOKEN" not in str(unset.value)
