"""worker.logs: records tagged with the job they belong to, as JSON lines or text."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from worker.logs import NOISY_LOGGERS, add_log_context, configure_logging, log_context

log = logging.getLogger("worker.test_logs")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {name: logging.getLogger(name).level for name in NOISY_LOGGERS})
    yield
    handlers, level, noisy = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def json_lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_carry_job_lane_attempt_and_model(capsys):
    configure_logging("INFO", "json")
    with log_context(job_id="j-1", lane="high", attempt=2):
        log.info("resolving")
        add_log_context(model="tiny-wan")
        log.warning("generating %d steps", 4)
    log.info("between jobs")
    first, second, outside = json_lines(capsys.readouterr().err)
    assert first["message"] == "resolving" and first["level"] == "info" and first["logger"] == "worker.test_logs"
    assert (first["job_id"], first["lane"], first["attempt"]) == ("j-1", "high", 2) and "model" not in first
    assert second["message"] == "generating 4 steps" and second["model"] == "tiny-wan"
    assert {"job_id", "lane", "attempt", "model"}.isdisjoint(outside)
    assert first["time"].endswith("+00:00")


def test_text_lines_show_the_context_too(capsys):
    configure_logging("INFO", "text")
    with log_context(job_id="j-2", lane="low", attempt=1, model="wan-480p"):
        log.info("done")
    log.info("idle")
    tagged, plain = capsys.readouterr().err.splitlines()
    assert tagged.endswith("INFO worker.test_logs: done [job_id=j-2 lane=low attempt=1 model=wan-480p]")
    assert plain.endswith("INFO worker.test_logs: idle")


def test_none_values_are_left_out_and_contexts_nest_and_unwind(capsys):
    configure_logging("INFO", "json")
    with log_context(job_id="outer", lane=None):
        with log_context(attempt=3):
            log.info("inner")
        log.info("outer")
    inner, outer = json_lines(capsys.readouterr().err)
    assert (inner["job_id"], inner["attempt"]) == ("outer", 3) and "lane" not in inner
    assert outer["job_id"] == "outer" and "attempt" not in outer


def test_the_context_follows_work_handed_to_another_thread(capsys):
    configure_logging("INFO", "json")
    with log_context(job_id="handed", lane="normal"):
        context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(log.info, "finishing on the finisher thread"))
    thread.start()
    thread.join(10)
    (record,) = json_lines(capsys.readouterr().err)
    assert (record["job_id"], record["lane"]) == ("handed", "normal")


def test_exceptions_are_kept_in_json_records(capsys):
    configure_logging("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    (record,) = json_lines(capsys.readouterr().err)
    assert record["level"] == "error" and "ValueError: boom" in record["exception"]


def test_the_level_filters_and_noisy_libraries_are_quieted(capsys):
    configure_logging("WARNING", "json")
    log.info("hidden")
    log.warning("shown")
    logging.getLogger("diffusers").info("library chatter")
    assert [record["message"] for record in json_lines(capsys.readouterr().err)] == ["shown"]
    assert all(logging.getLogger(name).level == logging.WARNING for name in NOISY_LOGGERS)


def test_the_format_comes_from_the_environment_when_not_given(capsys, monkeypatch):
    monkeypatch.setenv("NPC_WORKER_LOG_FORMAT", "json")
    configure_logging("INFO")
    with log_context(job_id="env"):
        log.info("x")
    assert json_lines(capsys.readouterr().err)[0]["job_id"] == "env"
