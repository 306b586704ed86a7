"""/healthz while a model is read from disk: the loop cannot beat then, and that is not a hung worker."""

from __future__ import annotations

import threading
import time

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.waiting import wait_until


def test_a_model_load_keeps_the_worker_alive_up_to_the_load_bound(start_worker, producer, catalog_path, tiny_wan_dir):
    catalog_path.write_text(
        catalog_path.read_text()
        + f'\n[models.other]\nfamily = "wan-i2v"\npath = "{tiny_wan_dir}"\ndtype = "float32"\n'
        + '[styles.anime]\nmodel = "other"\n'
    )
    worker = start_worker(heartbeat_timeout_s=0.3, model_load_timeout_s=2.0)
    service = worker.service
    wait_until(lambda: service.readyz()[0], timeout_s=120, what="the default model loaded")
    pool = service.runtime.pool
    real_load = pool._load
    reading, release = threading.Event(), threading.Event()

    def slow_load(name: str):  # the real load, after a pause standing in for minutes of disk reads
        reading.set()
        release.wait(30)
        return real_load(name)

    pool._load = slow_load
    producer.submit(envelope("cold", art_style="anime"))
    assert reading.wait(60), "the job never started loading its model"
    time.sleep(0.6)  # twice the heartbeat timeout, without a beat
    alive, detail = service.healthz()
    assert alive, detail
    assert detail["heartbeat_age_s"] >= 0.5 and detail["model_loading_s"] >= 0.5
    wait_until(lambda: not service.healthz()[0], timeout_s=10, what="the load outlasting model_load_timeout_s")
    assert service.healthz()[1]["model_loading_s"] >= 2.0
    release.set()
    assert producer.wait("cold", timeout_s=120).status == JobStatus.COMPLETED
    wait_until(lambda: service.healthz()[0], timeout_s=10, what="alive again once the loop beats")
    assert "model_loading_s" not in service.healthz()[1]
