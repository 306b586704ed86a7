"""ACL users exactly as docs/deploy.md defines them: a whole job through a real worker and the operator CLI, and
Redis refuses nothing (its ACL LOG stays empty)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from npc_video_client.names import StreamNames
from tests.support.jobs import envelope
from tests.support.redis_server import RedisServer
from tests.support.serving import fast_settings, serving
from tests.support.waiting import wait_until
from worker.cli import app
from worker.queue.depth import read_queue

DEPLOY_DOC = Path(__file__).resolve().parents[3] / "docs" / "deploy.md"
PASSWORD = "acl-test-secret"


def documented_rules(user: str, server_version: tuple[int, ...]) -> list[str]:
    """The rules of the `ACL SETUSER <user> ...` line of docs/deploy.md with the test password; before Redis 7.2
    without `+client|setinfo`, as the document says."""
    lines = re.findall(rf"^ACL SETUSER {re.escape(user)} (.+)$", DEPLOY_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(lines) == 1, f"docs/deploy.md should hold one ACL SETUSER line for {user}"
    rules = [">" + PASSWORD if rule == ">PASSWORD" else rule for rule in lines[0].split()]
    return [rule for rule in rules if server_version >= (7, 2) or rule != "+client|setinfo"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    try:
        admin = redis.Redis(port=redis_server.port)
        version = tuple(int(part) for part in str(admin.info("server")["redis_version"]).split(".")[:2])
        for user in ("npc-worker", "npc-operator"):
            admin.execute_command("ACL", "SETUSER", user, "reset", *documented_rules(user, version))
        admin.execute_command("ACL", "LOG", "RESET")
        yield redis_server
    finally:
        redis_server.stop()


def url_of(server: RedisServer, user: str) -> str:
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{server.port}/0"


def test_the_documented_users_run_a_job_and_the_operator_cli_without_a_refused_command(
    server, tmp_path, catalog_path, monkeypatch
):
    admin = redis.Redis(port=server.port)
    names = StreamNames("npc")
    settings = fast_settings(
        tmp_path, catalog_path, redis_url=url_of(server, "npc-worker"), events_channel="npc:live", claim_idle_ms=1_000
    )
    monkeypatch.setenv("NPC_WORKER_REDIS_URL", url_of(server, "npc-operator"))
    cli = CliRunner()
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(envelope("acl-good", steps=4)), encoding="utf-8")
    bad.write_text(json.dumps(envelope("acl-bad", npc_base_image="/nowhere/npc.png")), encoding="utf-8")
    with serving(settings) as worker:
        done = cli.invoke(app, ["submit", str(good), "--wait", "--timeout", "120"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output.strip().splitlines()[-1])["status"] == "completed"
        assert cli.invoke(app, ["submit", str(bad), "--wait", "--timeout", "60"]).exit_code == 1
        assert worker.service.readyz()[0]
        reading = read_queue(worker.service.client, names)
        assert cli.invoke(app, ["status", "acl-good"]).exit_code == 0
        assert cli.invoke(app, ["watch", "acl-good", "--timeout", "5"]).exit_code == 0
        assert cli.invoke(app, ["cancel", "acl-never-submitted"]).exit_code == 0
        listed = cli.invoke(app, ["dead", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        dead_id = json.loads(listed.output.strip().splitlines()[0])["id"]
        assert cli.invoke(app, ["dead", "retry", dead_id]).exit_code == 0
        wait_until(lambda: admin.xlen(names.dead) == 1 and admin.xrange(names.dead)[0][0].decode() != dead_id)
        assert cli.invoke(app, ["dead", "purge", "--yes"]).exit_code == 0
        assert worker.stop() == 0
    assert reading.dead_letters == 1.0
    refused: Any = admin.execute_command("ACL", "LOG")
    assert refused == [], refused
    assert admin.xlen(names.dead) == 0
