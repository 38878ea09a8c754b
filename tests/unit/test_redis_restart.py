"""After redis restarts, the first command on a pooled connection must not fail a citizen's turn."""
import asyncio
import shutil
import socket
import subprocess
import time

import pytest

from gateway.redis_connection import connect

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (setup installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server(port: int, data_dir) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
                             "--save", ""], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def test_every_command_after_a_redis_restart_succeeds(tmp_path):
    port = free_port()
    server = redis_server(port, tmp_path)

    async def scenario() -> list[str]:
        nonlocal server
        client = connect(f"redis://127.0.0.1:{port}/0")
        await asyncio.gather(*[client.blpop("nothing", timeout=0.2) for _ in range(6)])  # six pooled connections
        server.kill()
        server.wait()
        server = redis_server(port, tmp_path)
        failures = []
        for n in range(10):
            try:
                await client.set(f"k{n}", "v")
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(type(exc).__name__)
        await client.aclose()
        return failures

    try:
        assert asyncio.run(scenario()) == []
    finally:
        server.kill()


def test_more_commands_in_flight_than_the_pool_holds_wait_for_a_connection_instead_of_failing(tmp_path):
    """A burst past the pool (e.g. thousands of idle chat sockets pinging) waits, it does not fail turns."""
    from gateway.redis_connection import MAX_CONNECTIONS

    port = free_port()
    server = redis_server(port, tmp_path)

    async def burst() -> list[str]:
        client = connect(f"redis://127.0.0.1:{port}/0")
        results = await asyncio.gather(*[client.blpop(f"empty-{i}", timeout=0.2) for i in range(MAX_CONNECTIONS + 50)],
                                       return_exceptions=True)
        await client.aclose()
        return [type(r).__name__ for r in results if isinstance(r, BaseException)]

    try:
        assert asyncio.run(burst()) == []
    finally:
        server.kill()
