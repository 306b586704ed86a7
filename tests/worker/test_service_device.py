"""The device never waits, through a real worker: the next job's base image is fetched while the current job
denoises, and a repeated NPC job takes its prompt embeddings and start frame from the conditioning cache."""

from __future__ import annotations

from npc_video_client.contract import JobStatus
from tests.support.image_server import Route, serve_images
from tests.support.jobs import envelope, png_bytes

FETCH_STALL_S = 0.5


def test_the_next_jobs_image_is_fetched_while_the_device_runs(start_worker, producer):
    with serve_images() as images:
        images.routes["/npc.png"] = Route(body=png_bytes(), stall_s=FETCH_STALL_S)
        producer.submit(envelope("running", steps=60))
        producer.submit(envelope("next", npc_base_image=images.url("/npc.png")))
        start_worker(allow_private_networks=True)
        running = producer.wait("running", timeout_s=120)
        following = producer.wait("next", timeout_s=120)
    assert running.status == following.status == JobStatus.COMPLETED
    (request,) = images.requests
    ended_ms = running.timings.generate_ended_at
    assert ended_ms is not None and following.timings.generate_started_at is not None
    assert request.at * 1000 < ended_ms  # the fetch began while the device ran the job before
    # Fetched one after the other, the device would idle through the server's stall at least
    idle_ms = following.timings.generate_started_at - ended_ms
    assert 0 <= idle_ms < FETCH_STALL_S * 1000, idle_ms


def test_a_repeated_npc_job_skips_the_encoders(start_worker, producer):
    """Same NPC image and prompt, another step count (so no stored-video cache hit): the text encoder, the CLIP
    image encoder and the VAE encode of the start frame are skipped (timings.condition_ms)."""
    start_worker()
    producer.submit(envelope("first", steps=2))
    first = producer.wait("first", timeout_s=120)
    producer.submit(envelope("again", steps=3))
    again = producer.wait("again", timeout_s=120)
    assert first.status == again.status == JobStatus.COMPLETED and not again.cache_hit
    assert first.timings.condition_ms is not None and again.timings.condition_ms is not None
    assert first.timings.condition_ms > 0
    assert again.timings.condition_ms * 5 < first.timings.condition_ms, (first.timings, again.timings)
