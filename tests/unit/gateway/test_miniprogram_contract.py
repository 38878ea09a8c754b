"""The mini-program (miniprogram/) against the gateway: its own jest + miniprogram-simulate tests pass, every
gateway path it calls exists in the gateway's OpenAPI with that method, and the video page the gateway's
cards and replies open is a page of the mini-program. scripts/setup.sh (ensure_node_packages) installs node
and the npm packages; without them these tests fail and say so rather than skip."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.wechat.video import VIDEO_PAGE

ROOT = Path(__file__).resolve().parents[3]
MINIPROGRAM = ROOT / "miniprogram"
# ENDPOINTS in utils/api.js:  name: ["POST", "/api/wx/login"],
ENDPOINT = re.compile(r'^\s*\w+:\s*\[\s*"(GET|POST|PUT|DELETE)",\s*"(/[^"]*)"\s*\]', re.M)
GATEWAY_PATH = re.compile(r'["\'`](/(?:api|wx|ws|wechat)/[^"\'`#?]*)')


def mini_program_sources() -> list[Path]:
    return [p for p in MINIPROGRAM.rglob("*.js") if "node_modules" not in p.parts and "tests" not in p.parts]


def endpoints() -> set[tuple[str, str]]:
    return set(ENDPOINT.findall((MINIPROGRAM / "utils" / "api.js").read_text(encoding="utf-8")))


def test_the_mini_programs_own_tests_pass():
    npm = shutil.which("npm")
    assert npm, "npm is missing: run scripts/setup.sh (ensure_node_packages installs nodejs and npm)"
    assert (MINIPROGRAM / "node_modules" / "miniprogram-simulate").exists(), \
        "miniprogram/node_modules is missing: run scripts/setup.sh (ensure_node_packages runs npm ci)"
    run = subprocess.run([npm, "test", "--silent"], cwd=MINIPROGRAM, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert re.search(r"Tests:\s+(\d+) passed, \1 total", run.stderr + run.stdout), run.stderr[-2000:]


def test_every_gateway_path_the_mini_program_calls_is_in_the_gateway_openapi():
    calls = endpoints()
    assert ("POST", "/api/wx/login") in calls and ("POST", "/api/wx/chat") in calls
    # every gateway path written anywhere in the mini-program's code is one of the listed endpoints
    written = {m for p in mini_program_sources() for m in GATEWAY_PATH.findall(p.read_text(encoding="utf-8"))}
    assert written == {path for _, path in calls}
    paths = create_app(Settings(_env_file=None, anju_env="test")).openapi()["paths"]
    missing = [f"{method} {path}" for method, path in sorted(calls) if method.lower() not in paths.get(path, {})]
    assert not missing, f"the mini-program calls paths the gateway does not serve: {missing}"


def test_the_video_page_the_gateway_opens_is_a_page_of_the_mini_program():
    app = json.loads((MINIPROGRAM / "app.json").read_text(encoding="utf-8"))
    assert VIDEO_PAGE in app["pages"]
    for page in app["pages"]:
        for ext in ("js", "json", "wxml", "wxss"):
            assert (MINIPROGRAM / f"{page}.{ext}").is_file(), f"{page}.{ext} is missing"
        assert "Component(" in (MINIPROGRAM / f"{page}.js").read_text(encoding="utf-8")   # loadable by miniprogram-simulate
    config = json.loads((MINIPROGRAM / "project.config.json").read_text(encoding="utf-8"))
    assert re.fullmatch(r"wx[0-9a-f]{16}", config["appid"])


@pytest.mark.parametrize("literal", ["/api/wx/chat", "/wx/video"])
def test_the_path_pattern_finds_what_the_code_writes(literal):
    """The grep above must see a path however it is quoted, or the contract checks nothing."""
    for quote in '"\'`':
        assert GATEWAY_PATH.findall(f"request({quote}{literal}{quote})") == [literal]
