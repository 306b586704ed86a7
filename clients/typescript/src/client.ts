/**
 * The producer side of the npc-video-worker over node-redis: submit a job, look at its state, wait for its result,
 * follow its events, cancel it.
 *
 * Waiting blocks on the job's completion list `{prefix}:done:{job_id}` with BLMOVE from the list to itself, which
 * returns the result and leaves it in place for any other waiter; the result key is read between blocks, so
 * results written by 1.0 workers (which push no completion list) are seen too. Blocking commands and the submit
 * transaction (WATCH ... MULTI/EXEC) run on connections of their own.
 */
import { createClient } from "redis";
import type { JobEnvelope, JobResult, JobState, NpcResponseParams } from "./contract.js";
import {
  describeRedis,
  JobAlreadyEnded,
  JobRejected,
  reachable,
  RedisUnavailable,
} from "./errors.js";
import { EventStream, type EventStreamOptions, START_OF_STREAM } from "./events.js";
import { type Lane, LANES, type StreamNames, streamNames } from "./names.js";
import {
  type CancelOutcome,
  cancelOutcome,
  CONTRACT_VERSION,
  endedStatus,
  queuedState,
  resolveState,
} from "./state.js";
import { type WarmStatus, warmEnvelope, warmJobId, warmParams } from "./warming.js";

/** The largest seed a JavaScript number holds exactly; the worker accepts up to 2^63-1, but larger numbers are
 * rounded by JSON.stringify before they are sent, so they are refused here. */
export const JSON_SAFE_SEED_MAX = Number.MAX_SAFE_INTEGER;
/** The worker's default result TTL (NPC_WORKER_RESULT_TTL_S): the state written at submit lives as long. */
export const DEFAULT_STATE_TTL_S = 7 * 24 * 3600;
const JOB_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

type Redis = ReturnType<typeof createClient>;

export interface NpcVideoClientOptions {
  url?: string;
  prefix?: string;
  /** How long the state written at submit lives; keep it at the worker's result TTL. */
  stateTtlS?: number;
}

export class NpcVideoClient {
  readonly names: StreamNames;
  private transactions: Promise<unknown> = Promise.resolve(); // submits take the WATCH connection one at a time

  private constructor(
    private readonly redis: Redis,
    private readonly watching: Redis,
    private readonly where: string,
    prefix: string,
    private readonly stateTtlS: number,
  ) {
    this.names = streamNames(prefix);
  }

  /** Connects two connections (commands, and the submit transaction); RedisUnavailable when Redis cannot be reached. */
  static async connect(options: NpcVideoClientOptions = {}): Promise<NpcVideoClient> {
    const url = options.url ?? "redis://127.0.0.1:6379/0";
    const stateTtlS = options.stateTtlS ?? DEFAULT_STATE_TTL_S;
    if (!Number.isSafeInteger(stateTtlS) || stateTtlS < 1) {
      throw new RangeError(`stateTtlS: must be a whole number of seconds, at least 1 (got ${JSON.stringify(stateTtlS)})`);
    }
    const where = describeRedis(url);
    const redis = await open(url, where);
    try {
      return new NpcVideoClient(redis, await open(url, where), where, options.prefix ?? "npc", stateTtlS);
    } catch (error) {
      redis.destroy();
      throw error;
    }
  }

  /**
   * Check what only a producer can get wrong in JavaScript, stamp `submitted_at` and `contract_version`, and XADD
   * with the job's `queued` state in one transaction. JobAlreadyEnded when the id already has a final result.
   * Lanes are never trimmed here: the worker deletes each entry when its job ends.
   */
  async submit(envelope: JobEnvelope, options: { lane?: Lane } = {}): Promise<string> {
    checkEnvelope(envelope);
    const lane = options.lane ?? "normal";
    if (!LANES.includes(lane)) throw new JobRejected(`lane: must be high, normal or low (got ${JSON.stringify(lane)})`);
    const body: JobEnvelope = {
      ...envelope,
      submitted_at: envelope.submitted_at ?? Date.now(),
      contract_version: envelope.contract_version ?? CONTRACT_VERSION,
    };
    const jobId = envelope.job_id;
    const enqueue = this.transactions.then(() => reachable(this.where, () => this.enqueue(jobId, lane, body)));
    this.transactions = enqueue.catch(() => undefined);
    await enqueue;
    return jobId;
  }

  private async enqueue(jobId: string, lane: Lane, body: JobEnvelope): Promise<void> {
    const resultKey = this.names.result(jobId);
    for (;;) {
      await this.watching.watch(resultKey); // a result written before EXEC aborts the transaction: checked again
      const ended = endedStatus(await this.watching.get(resultKey));
      if (ended !== null) {
        await this.watching.unwatch();
        throw new JobAlreadyEnded(jobId, ended);
      }
      const transaction = this.watching
        .multi()
        .xAdd(this.names.lane(lane), "*", { job: JSON.stringify(body) })
        .set(this.names.state(jobId), JSON.stringify(queuedState(jobId)), {
          expiration: { type: "EX", value: this.stateTtlS },
          condition: "NX",
        });
      try {
        await transaction.exec();
        return;
      } catch (error) {
        if ((error as Error).constructor.name !== "WatchError") throw error;
      }
    }
  }

  /**
   * Make an NPC's likely reactions ahead of time on the workers' idle time (the warm lane): one warm job per
   * reaction, exactly the real job that npc + reaction + preset + style will be. Returns the warm job ids. Warm jobs
   * yield to real jobs and write no state or events but their end; the identical real job later finds its video
   * made (a cache hit in milliseconds), or joins the warm job still making it. Warming a reaction again withdraws an
   * earlier warmCancel of it.
   */
  async warm(
    npc: Partial<NpcResponseParams>,
    reactions: Partial<NpcResponseParams>[],
    options: { preset?: string; style?: string; metadata?: Record<string, unknown> } = {},
  ): Promise<string[]> {
    if (reactions.length === 0) throw new JobRejected("warm: reactions is empty; give the reactions to warm");
    const envelopes = reactions.map((reaction, index) => {
      const envelope = warmEnvelope(warmParams(npc, reaction, options), options.metadata);
      try {
        checkEnvelope(envelope);
      } catch (error) {
        throw new JobRejected(`warm: reaction ${index}: ${(error as Error).message}`);
      }
      return { ...envelope, submitted_at: Date.now(), contract_version: CONTRACT_VERSION };
    });
    await reachable(this.where, async () => {
      const pipeline = this.redis.multi();
      for (const envelope of envelopes) {
        pipeline.del(this.names.cancel(envelope.job_id));
        pipeline.xAdd(this.names.lane("warm"), "*", { job: JSON.stringify(envelope) });
      }
      await pipeline.execAsPipeline();
    });
    return envelopes.map((envelope) => envelope.job_id);
  }

  /**
   * Drop the warm jobs of these reactions (as given to warm), e.g. when the NPC leaves the scene: a waiting one ends
   * cancelled when a worker takes it, a running one at its next step, unless a real job has joined it. Videos
   * already made stay in the warm cache. Returns the warm job ids.
   */
  async warmCancel(
    npc: Partial<NpcResponseParams>,
    reactions: Partial<NpcResponseParams>[],
    options: { preset?: string; style?: string; ttlS?: number } = {},
  ): Promise<string[]> {
    const ids = reactions.map((reaction) => warmJobId(warmParams(npc, reaction, options)));
    await reachable(this.where, async () => {
      const pipeline = this.redis.multi();
      const expiration = { type: "EX", value: options.ttlS ?? 86_400 } as const;
      for (const id of ids) pipeline.set(this.names.cancel(id), "1", { expiration });
      await pipeline.execAsPipeline();
    });
    return ids;
  }

  /** Which of these reactions (as given to warm) have their video ready now. */
  async warmStatus(
    npc: Partial<NpcResponseParams>,
    reactions: Partial<NpcResponseParams>[],
    options: { preset?: string; style?: string } = {},
  ): Promise<WarmStatus> {
    const ids = reactions.map((reaction) => warmJobId(warmParams(npc, reaction, options)));
    const keys = await reachable(this.where, () => this.redis.hmGet(this.names.warmReady, ids));
    const ready = Object.fromEntries(ids.map((id, index) => [id, keys[index] !== null]));
    return { ready, total: ids.length, readyCount: Object.values(ready).filter(Boolean).length };
  }

  /** The stored final result, or null while the job has not ended. */
  async result(jobId: string): Promise<JobResult | null> {
    const stored = await reachable(this.where, () => this.redis.get(this.names.result(jobId)));
    return stored === null ? null : (JSON.parse(stored) as JobResult);
  }

  /**
   * Where the job stands: queued, running, retrying, or how it ended, with progress 0..1 and the attempt. An ended
   * job whose state expired (or was written by a worker older than 1.2) is described from its result. UnknownJob
   * when there is neither: never submitted, or both expired.
   */
  async status(jobId: string): Promise<JobState> {
    const [state, result] = await reachable(this.where, () =>
      this.redis.multi().get(this.names.state(jobId)).get(this.names.result(jobId)).execTyped(),
    );
    return resolveState(jobId, state, result);
  }

  /** Block until the job's final result; rejects after `timeoutS`. Other waiters of the same job still get it. */
  async wait(jobId: string, options: { timeoutS?: number; pollS?: number } = {}): Promise<JobResult> {
    const timeoutS = options.timeoutS ?? 300;
    const pollS = options.pollS ?? 1;
    const deadline = Date.now() + timeoutS * 1000;
    const done = this.names.done(jobId);
    const blocking = await this.duplicate(); // a blocking command holds its connection
    try {
      for (;;) {
        const remainingS = (deadline - Date.now()) / 1000;
        if (remainingS > 0) {
          const seconds = Math.max(0.01, Math.min(pollS, remainingS));
          const moved = await reachable(this.where, () => blocking.blMove(done, done, "RIGHT", "LEFT", seconds));
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

  /**
   * Ask the worker to stop the job at its next step (job:cancelled) and say what happened: "cancelled" (the request
   * is set), "already_ended" (nothing set) or "unknown" (no state and no result: set anyway, it expires after
   * `ttlS`, in case a client older than 1.2 submitted the job).
   */
  async cancel(jobId: string, options: { ttlS?: number } = {}): Promise<CancelOutcome> {
    return reachable(this.where, async () => {
      const [state, result] = await this.redis
        .multi()
        .get(this.names.state(jobId))
        .get(this.names.result(jobId))
        .execTyped();
      const outcome = cancelOutcome(state, result);
      if (outcome !== "already_ended") {
        await this.redis.set(this.names.cancel(jobId), "1", { expiration: { type: "EX", value: options.ttlS ?? 86_400 } });
      }
      return outcome;
    });
  }

  /** The id of the last entry of the events stream ("0-0" when there is none yet): take it before submitting. */
  async eventsCursor(): Promise<string> {
    try {
      const info = await reachable(this.where, () => this.redis.xInfoStream(this.names.events));
      return String(info["last-generated-id"]);
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return START_OF_STREAM;
      throw error;
    }
  }

  /**
   * Events after `since` (an entry id; absent: the stream's end now, fixed before this returns, so open it before
   * submitting), of one job or of all: `for await (const event of await client.events({ jobId }))`. With a job id
   * the iteration ends after its final event, and at once when it had already ended.
   */
  async events(options: EventStreamOptions & { since?: string } = {}): Promise<EventStream> {
    const cursor = options.since ?? (await this.eventsCursor());
    return new EventStream(this.redis, await this.duplicate(), this.names, this.where, cursor, options);
  }

  async close(): Promise<void> {
    this.redis.destroy();
    this.watching.destroy();
  }

  private async duplicate(): Promise<Redis> {
    const copy = this.redis.duplicate();
    copy.on("error", () => undefined); // failures reach the caller as RedisUnavailable, from the command itself
    await reachable(this.where, () => copy.connect());
    return copy;
  }
}

/** A connection that fails fast on a Redis that cannot be reached at first, and reconnects after an outage. */
async function open(url: string, where: string): Promise<Redis> {
  let connected = false;
  const redis = createClient({
    url,
    disableOfflineQueue: true, // a command while disconnected fails at once (RedisUnavailable) instead of waiting
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries: number, cause: Error) =>
        connected ? Math.min(100 * 2 ** retries, 5000) : new RedisUnavailable(where, cause.message),
    },
  });
  redis.on("error", () => undefined); // failures reach the caller as RedisUnavailable, from the command itself
  redis.on("ready", () => {
    connected = true;
  });
  await reachable(where, () => redis.connect());
  return redis;
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
