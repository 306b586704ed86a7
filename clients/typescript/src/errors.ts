/**
 * What the client throws on purpose: one class per situation a producer handles, each with a one-line message.
 */

/** Base of every error the client throws on purpose. */
export class NpcVideoClientError extends Error {
  override name = "NpcVideoClientError";
}

/** The envelope would be refused by the worker; thrown before anything is enqueued. */
export class JobRejected extends NpcVideoClientError {
  override name = "JobRejected";
}

/** Redis cannot be reached (refused, timed out, the connection lost); `where` never shows the password. */
export class RedisUnavailable extends NpcVideoClientError {
  override name = "RedisUnavailable";

  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super(`${where} is unreachable: ${reason.split(/\s+/).join(" ").trim() || "no reason given"}`);
  }
}

/** No state and no result for this job id: never submitted (by a 1.2 client), or both expired. */
export class UnknownJob extends NpcVideoClientError {
  override name = "UnknownJob";

  constructor(readonly jobId: string) {
    super(
      `job ${jobId} is unknown: no state and no result (never submitted, submitted by a client older than ` +
        "contract 1.2 and not started yet, or its state and result expired)",
    );
  }
}

/** Submitting a job id whose result is stored: the worker never runs an ended job id again. */
export class JobAlreadyEnded extends NpcVideoClientError {
  override name = "JobAlreadyEnded";

  constructor(
    readonly jobId: string,
    readonly status: string,
  ) {
    super(
      `job ${jobId} already ended (${status}); the worker never runs an ended job id again: submit under a new job id`,
    );
  }
}

const UNREACHABLE = new Set([
  "ClientClosedError",
  "ClientOfflineError",
  "ConnectionTimeoutError",
  "ReconnectStrategyError",
  "SocketClosedUnexpectedlyError",
  "SocketTimeoutError",
]);

/** `Redis at redis://user:***@host:port/db`: the URL without its password. */
export function describeRedis(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return `Redis at ${parsed.toString()}`;
  } catch {
    return "Redis (an unparsable URL)";
  }
}

/** Run a Redis call; connection failures become RedisUnavailable, everything else passes unchanged. */
export async function reachable<T>(where: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof RedisUnavailable || !(error instanceof Error)) throw error;
    const code = (error as { code?: unknown }).code;
    if (UNREACHABLE.has(error.constructor.name) || (typeof code === "string" && code.startsWith("E"))) {
      throw new RedisUnavailable(where, error.message);
    }
    throw error;
  }
}
