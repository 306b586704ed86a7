"""The relay: its own consumer group on `{prefix}:events`, each event PUBLISHed in another system's shape.

At least once: an entry is read (XREADGROUP), published, and only then acknowledged (XACK). A relay that dies in
between leaves the entry pending; at its next start it re-reads its own pending entries first (XREADGROUP from 0)
and publishes them again before anything new, so it resumes where it stopped. Formats derive the published event's
id from the stream entry id, so the re-published event has the id the first one had and a consumer can drop it.

The group is the relay's alone (the workers never read the events stream through a group): it is created at the
first start from `$` (events from then on) or, when asked, from `0` (everything the stream still holds). Its
position lives in Redis, so any process using the same group and consumer name resumes it.

Redis outages, restarts and failovers are waited out (worker.queue.waiting); a consumer group lost with Redis's data
is created again from `0`, since everything in the stream then was written after the loss.

A run's `job:processing` and `job:progress` are not relayed once their job has a final result (EXISTS on the result
key, just before publishing): a relay catching up a backlog (after a restart) would otherwise tell its subscribers
that jobs which ended long ago are running again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import redis
from pydantic import TypeAdapter, ValidationError

from npc_video_client.contract import JobEvent, JobProcessingEvent, JobProgressEvent, describe_validation_error
from npc_video_client.names import StreamNames
from npc_video_client.protocol import EVENT_TYPES, text
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.shutdown import ShutdownFlag

log = logging.getLogger(__name__)

_EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
OWN_PENDING = "0"  # XREADGROUP from 0: this consumer's entries delivered before and not acknowledged
NEW_ENTRIES = ">"


class PublishRefused(RuntimeError):
    """The Redis the messages go to refused a PUBLISH for good (an ACL without the command or the channel): named
    apart from the events' Redis, which may be another server."""


class RelayFormat(Protocol):
    """How one consuming system wants the events: a message (a JSON object) for each event, or None to skip it."""

    name: str
    default_channel: str  # where its consumers listen, unless the operator names another channel

    def translate(self, stream: str, entry_id: str, event: JobEvent) -> dict[str, Any] | None:
        """`stream` and `entry_id` say where the event came from: the message's id must derive from them alone."""
        ...


@dataclass(frozen=True)
class RelayOptions:
    channel: str  # where the messages are PUBLISHed
    group: str  # the relay's consumer group on the events stream
    consumer: str  # stable across restarts: its pending entries are re-read at the next start
    start: str = "$"  # where a group created now begins: "$" (from now on) or "0" (the whole stream)
    block_ms: int = 2_000
    batch: int = 100


class Relay:
    """Reads the events stream through its group and publishes each event, translated, on the channel.

    `publisher` is the client PUBLISHes go to: the events' Redis itself, or the consuming system's own Redis.
    """

    def __init__(
        self,
        client: redis.Redis,
        names: StreamNames,
        relay_format: RelayFormat,
        options: RelayOptions,
        *,
        shutdown: ShutdownFlag,
        publisher: redis.Redis | None = None,
    ) -> None:
        self.client = client
        self.publisher = publisher if publisher is not None else client
        self.names = names
        self.stream = names.events
        self.format = relay_format
        self.options = options
        self.shutdown = shutdown
        self.waiter = RedisWaiter(shutdown, beat=lambda: None, recreate_groups=self._recreate_group)
        self.published = 0  # messages PUBLISHed by this process (a re-published pending entry counts again)
        self.stale = 0  # progress of jobs that had ended when it was read, not published

    def run(self) -> None:
        """Until a graceful stop is asked (then it returns); an unexpected Redis refusal (an ACL that lacks a command)
        raises. Entries in hand at a stop stay pending and are re-read at the next start."""
        options = self.options
        log.info(
            "relaying %s to channel %s as %s (group %s, consumer %s)",
            self.stream, options.channel, self.format.name, options.group, options.consumer,
        )  # fmt: skip
        try:
            self.waiter.call(lambda: self._create_group(options.start), stop_on_request=True)
            position = OWN_PENDING
            while not self.shutdown.requested:
                entries = self._read(position)
                if position != NEW_ENTRIES:
                    if not entries:
                        position = NEW_ENTRIES  # own pending entries done: from here on, new ones only
                        continue
                    position = text(entries[-1][0])  # the next batch of own pending entries starts after this
                self._relay_all(entries)
        except StopWaiting:
            pass
        log.info("relay stopped after publishing %d messages", self.published)

    def _create_group(self, start: str) -> None:
        try:
            self.client.xgroup_create(self.stream, self.options.group, id=start, mkstream=True)
            log.info("created consumer group %s on %s from %s", self.options.group, self.stream, start)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # BUSYGROUP, the usual case: the group exists and keeps its position
                raise

    def _recreate_group(self) -> None:
        group, stream = self.options.group, self.stream
        log.warning("consumer group %s on %s is gone (Redis lost its data?); creating it from 0", group, stream)
        self._create_group("0")

    def _read(self, position: str) -> list[tuple[Any, Any]]:
        options = self.options

        def read() -> Any:
            return self.client.xreadgroup(
                options.group, options.consumer, {self.stream: position}, count=options.batch, block=options.block_ms
            )

        reply = self.waiter.call(read, stop_on_request=True)
        entries: list[tuple[Any, Any]] = []
        for _stream, stream_entries in reply or []:
            entries.extend(stream_entries)
        return entries

    def _relay_all(self, entries: list[tuple[Any, Any]]) -> None:
        for raw_id, fields in entries:
            if self.shutdown.requested:
                return  # the rest stay pending, re-read first at the next start
            entry_id = text(raw_id)
            message = self._message(entry_id, fields)
            if message is not None:
                body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
                self._publish(body)
            self.waiter.call(partial(self.client.xack, self.stream, self.options.group, entry_id), stop_on_request=True)

    def _publish(self, body: str) -> None:
        channel = self.options.channel
        try:
            self.waiter.call(partial(self.publisher.publish, channel, body), stop_on_request=True)
        except redis.ResponseError as exc:  # not a wait-it-out reply: the waiter passed it on
            where = "the events' Redis" if self.publisher is self.client else "the publish Redis (--publish-url)"
            raise PublishRefused(f"{where} refused PUBLISH on channel {channel}: {exc}") from exc
        self.published += 1

    def _message(self, entry_id: str, fields: Any) -> dict[str, Any] | None:
        """The format's message for the entry, or None (logged) for what cannot be relayed: an entry trimmed from
        the stream while pending, one without an `event` field or not JSON, an event type this relay does not know
        (a newer contract minor), an event that does not parse."""
        if not fields:
            log.warning("events entry %s was trimmed from %s before it was relayed; skipped", entry_id, self.stream)
            return None
        raw = fields.get(b"event", fields.get("event"))
        if raw is None:
            log.warning("events entry %s has no field 'event'; skipped", entry_id)
            return None
        try:
            document = json.loads(raw)
        except ValueError as exc:
            log.warning("events entry %s is not JSON (%s); skipped", entry_id, exc)
            return None
        kind = document.get("type") if isinstance(document, dict) else None
        if kind not in EVENT_TYPES:
            log.info("events entry %s has type %r, unknown to this relay; skipped", entry_id, kind)
            return None
        try:
            event = _EVENTS.validate_python(document)
        except ValidationError as exc:
            log.warning("events entry %s does not parse (%s); skipped", entry_id, describe_validation_error(exc))
            return None
        message = self.format.translate(self.stream, entry_id, event)
        if message is not None and isinstance(event, JobProcessingEvent | JobProgressEvent) and self._ended(event):
            log.debug("events entry %s: job %s has ended; its progress is not relayed", entry_id, event.job_id)
            self.stale += 1
            return None
        return message

    def _ended(self, event: JobProcessingEvent | JobProgressEvent) -> bool:
        result_key = self.names.result(event.job_id)
        return bool(self.waiter.call(partial(self.client.exists, result_key), stop_on_request=True))
