/**
 * The producer side of the npc-video-worker over node-redis: submit a job, wait for its result, cancel it.
 *
 * Waiting blocks on the job's completion list `{prefix}:done:{job_id}` with BLMOVE from the list to itself, which
 * returns the result and leaves it in place for any other waiter; the result key is read between blocks, so
 * results written by 1.0 workers (which push no completion list) are seen too.
 */
import { createClient } from "redis";
import type { JobEnvelope, JobResult } from "./contract.js";

export const CONTRACT_VERSION = "1.1";
/** The largest seed a JavaScript number holds exactly; the worker accepts up to 2^63-1, but larger numbers are
 * rounded by JSON.stringify before they are sent, so they are refused here. */
export const JSON_SAFE_SEED_MAX = Number.MAX_SAFE_INTEGER;
const JOB_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const DEFAULT_JOBS_MAXLEN = 100_000;

export type Lane = "high" | "normal" | "low";
type Redis = ReturnType<typeof createClient>;

export interface StreamNames {
  lane(lane: Lane): string;
  result(jobId: string): string;
  cancel(jobId: string): string;
  done(jobId: string): string;
  readonly events: string;
}

/** The contract's Redis keys under one prefix (docs/contract.md, section 3). */
export function streamNames(prefix = "npc"): StreamNames {
  return {
    lane: (lane) => `${prefix}:jobs:${lane}`,
    result: (jobId) => `${prefix}:result:${jobId}`,
    cancel: (jobId) => `${prefix}:cancel:${jobId}`,
    done: (jobId) => `${prefix}:done:${jobId}`,
    events: `${prefix}:events`,
  };
}

/** The envelope would be refused by the worker; raised before anything is enqueued. */
export class JobRejected extends Error {
  override name = "JobRejected";
}

export interface NpcVideoClientOptions {
  url?: string;
  prefix?: string;
  /** Approximate MAXLEN of the lane streams on XADD. */
  jobsMaxlen?: number;
}

export class NpcVideoClient {
  readonly names: StreamNames;

  private constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly jobsMaxlen: number,
  ) {
    this.names = streamNames(prefix);
  }

  static async connect(options: NpcVideoClientOptions = {}): Promise<NpcVideoClient> {
    const redis = createClient({ url: options.url ?? "redis://127.0.0.1:6379/0" });
    redis.on("error", (error: unknown) => console.error("npc-video client: redis error:", error));
    await redis.connect();
    return new NpcVideoClient(redis, options.prefix ?? "npc", options.jobsMaxlen ?? DEFAULT_JOBS_MAXLEN);
  }

  /** Check what only a producer can get wrong in JavaScript, stamp `submitted_at` and `contract_version`, XADD. */
  async submit(envelope: JobEnvelope, options: { lane?: Lane } = {}): Promise<string> {
    checkEnvelope(envelope);
    const body: JobEnvelope = {
      ...envelope,
      submitted_at: envelope.submitted_at ?? Date.now(),
      contract_version: envelope.contract_version ?? CONTRACT_VERSION,
    };
    await this.redis.xAdd(
      this.names.lane(options.lane ?? "normal"),
      "*",
      { job: JSON.stringify(body) },
      { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: this.jobsMaxlen } },
    );
    return envelope.job_id;
  }

  /** The stored final result, or null while the job has not ended. */
  async result(jobId: string): Promise<JobResult | null> {
    const stored = await this.redis.get(this.names.result(jobId));
    return stored === null ? null : (JSON.parse(stored) as JobResult);
  }

  /** Block until the job's final result; rejects after `timeoutS`. Other waiters of the same job still get it. */
  async wait(jobId: string, options: { timeoutS?: number; pollS?: number } = {}): Promise<JobResult> {
    const timeoutS = options.timeoutS ?? 300;
    const pollS = options.pollS ?? 1;
    const deadline = Date.now() + timeoutS * 1000;
    const done = this.names.done(jobId);
    const blocking = this.redis.duplicate(); // a blocking command holds its connection
    blocking.on("error", (error: unknown) => console.error("npc-video client: redis error:", error));
    await blocking.connect();
    try {
      for (;;) {
        const remainingS = (deadline - Date.now()) / 1000;
        if (remainingS > 0) {
          const seconds = Math.max(0.01, Math.min(pollS, remainingS));
          const moved = await blocking.blMove(done, done, "RIGHT", "LEFT", seconds);
          if (moved !== null) return JSON.parse(moved) as JobResult;
        }
        const stored = await this.result(jobId); // a 1.0 worker, or a completion list that expired
        if (stored !== null) return stored;
        if (remainingS <= 0) throw new Error(`no result for job ${jobId} after ${timeoutS} s`);
      }
    } finally {
      blocking.destroy();
    }
  }

  /** Ask the worker to stop the job at its next step (job:cancelled); the request expires after `ttlS`. */
  async cancel(jobId: string, options: { ttlS?: number } = {}): Promise<void> {
    await this.redis.set(this.names.cancel(jobId), "1", { expiration: { type: "EX", value: options.ttlS ?? 86_400 } });
  }

  async close(): Promise<void> {
    this.redis.destroy();
  }
}

function checkEnvelope(envelope: JobEnvelope): void {
  if (!JOB_ID_PATTERN.test(envelope.job_id)) {
    throw new JobRejected(`job_id: ${JSON.stringify(envelope.job_id)} must match ${JOB_ID_PATTERN.source}`);
  }
  const seed = envelope.params.seed;
  if (seed !== undefined && seed !== null && !(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new JobRejected(
      `params.seed: ${JSON.stringify(seed)} is not an integer in 0..${JSON_SAFE_SEED_MAX} (Number.MAX_SAFE_INTEGER); ` +
        "a JavaScript number cannot carry larger seeds exactly (the worker accepts up to 2^63-1)",
    );
  }
}
