/**
 * Following events: an async iterator over `{prefix}:events` from a cursor, of one job or of all, on a connection
 * of its own (XREAD BLOCK holds it). Events of types this client does not know (a newer minor) and entries that are
 * not events are skipped, as the contract asks of clients. With a job id it ends after that job's final event, and
 * at once when the job had already ended (within MAX_BLOCK_MS when its final event was trimmed from the stream).
 */
import type { createClient } from "redis";
import type { JobEvent } from "./contract.js";
import { reachable } from "./errors.js";
import type { StreamNames } from "./names.js";

type Redis = ReturnType<typeof createClient>;

export const EVENT_TYPES: ReadonlySet<string> = new Set([
  "job:processing",
  "job:progress",
  "job:preview",
  "job:completed",
  "job:failed",
  "job:expired",
  "job:cancelled",
]);
const FINAL_TYPES: ReadonlySet<string> = new Set(["job:completed", "job:expired", "job:cancelled"]);
export const MAX_BLOCK_MS = 10_000;
export const START_OF_STREAM = "0-0";

/** The job's last event: completed, expired, cancelled, or a failure that will not be retried. */
export function isFinal(event: JobEvent): boolean {
  return event.type === "job:failed" ? !event.retryable : FINAL_TYPES.has(event.type);
}

/** The event of an entry's `event` field, or null for what is skipped (not JSON, not an object, an unknown type). */
export function parseEvent(raw: string | undefined): JobEvent | null {
  if (raw === undefined) return null;
  let document: unknown;
  try {
    document = JSON.parse(raw);
  } catch {
    return null;
  }
  if (document === null || typeof document !== "object") return null;
  const type = (document as { type?: unknown }).type;
  return typeof type === "string" && EVENT_TYPES.has(type) ? (document as JobEvent) : null;
}

export interface EventStreamOptions {
  jobId?: string;
  /** End once no event of interest came for this long; absent: wait as long as it takes. */
  blockMs?: number;
}

export class EventStream implements AsyncIterableIterator<JobEvent> {
  private finished = false;
  private askIfEnded: boolean;
  private readonly ready: JobEvent[] = [];

  constructor(
    private readonly main: Redis,
    private readonly blocking: Redis,
    private readonly names: StreamNames,
    private readonly where: string,
    /** The id of the last entry consumed: `events({since: stream.cursor})` resumes. */
    public cursor: string,
    private readonly options: EventStreamOptions,
  ) {
    this.askIfEnded = options.jobId !== undefined; // first, before any read: opened after the job ended
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<JobEvent> {
    return this;
  }

  async next(): Promise<IteratorResult<JobEvent>> {
    const idleUntil = this.options.blockMs === undefined ? null : Date.now() + this.options.blockMs;
    while (this.ready.length === 0) {
      if (this.finished) return this.close();
      if (this.askIfEnded) {
        this.askIfEnded = false;
        if (await this.jobEnded()) {
          while (!this.finished && (await this.read(null)) > 0); // the final event came with the result
          this.finished = true;
          continue;
        }
      }
      const remaining = idleUntil === null ? MAX_BLOCK_MS : idleUntil - Date.now();
      if (remaining <= 0) return this.close();
      await this.read(Math.max(1, Math.min(MAX_BLOCK_MS, Math.floor(remaining))));
      this.askIfEnded = this.options.jobId !== undefined; // nothing of the job came: did it end?
    }
    return { done: false, value: this.ready.shift() as JobEvent };
  }

  async return(): Promise<IteratorResult<JobEvent>> {
    return this.close();
  }

  private async close(): Promise<IteratorResult<JobEvent>> {
    this.finished = true;
    if (this.blocking.isOpen) this.blocking.destroy();
    return { done: true, value: undefined };
  }

  private async jobEnded(): Promise<boolean> {
    const jobId = this.options.jobId as string;
    return (await reachable(this.where, () => this.main.exists(this.names.result(jobId)))) > 0;
  }

  /** One XREAD from the cursor (null: without blocking); the number of entries it returned. */
  private async read(blockMs: number | null): Promise<number> {
    const options = blockMs === null ? { COUNT: 100 } : { COUNT: 100, BLOCK: blockMs };
    const reply = await reachable(this.where, () =>
      this.blocking.xRead({ key: this.names.events, id: this.cursor }, options),
    );
    let entries = 0;
    for (const stream of (reply as { messages: { id: string; message: Record<string, string> }[] }[] | null) ?? []) {
      for (const { id, message } of stream.messages) {
        entries += 1;
        if (this.finished) return entries; // entries after the job's final event stay unread
        this.cursor = id;
        const event = parseEvent(message.event);
        if (event === null || (this.options.jobId !== undefined && event.job_id !== this.options.jobId)) continue;
        this.ready.push(event);
        if (this.options.jobId !== undefined && isFinal(event)) this.finished = true;
      }
    }
    return entries;
  }
}
