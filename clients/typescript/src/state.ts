/**
 * The per-job state (contract 1.2): what `status()` answers from the state key and the result key, and what
 * `cancel()` makes of them. No I/O here.
 */
import type { JobResult, JobState, JobStateStatus } from "./contract.js";
import { UnknownJob } from "./errors.js";

export const CONTRACT_VERSION = "1.2";
export const FINAL_STATES: ReadonlySet<JobStateStatus> = new Set(["completed", "failed", "cancelled", "expired"]);

/** What `cancel()` did; see NpcVideoClient.cancel. */
export type CancelOutcome = "cancelled" | "already_ended" | "unknown";

export function queuedState(jobId: string): JobState {
  return {
    job_id: jobId,
    status: "queued",
    progress: 0,
    step: null,
    steps: null,
    attempt: 0,
    updated_at: Date.now(),
    worker: null,
    error_code: null,
    error_message: null,
    contract_version: CONTRACT_VERSION,
  };
}

/** An ended job's state from its result (the state expired, or a worker older than 1.2 wrote none). */
export function stateFromResult(result: JobResult): JobState {
  const completed = result.status === "completed";
  const endedAt = result.timings?.generate_ended_at;
  return {
    job_id: result.job_id,
    status: result.status,
    progress: completed ? 1 : 0,
    step: completed ? (result.steps ?? null) : null,
    steps: result.steps ?? null,
    attempt: 0,
    updated_at: endedAt === undefined || endedAt === null ? Date.now() : Math.trunc(endedAt),
    worker: null,
    error_code: result.error_code ?? null,
    error_message: result.error_message ?? null,
    contract_version: CONTRACT_VERSION,
  };
}

/** The status of a stored final result, or null when the result key holds no result (the worker does not count
 * such a value as final: it runs the job and replaces it). */
export function endedStatus(storedResult: string | null): string | null {
  if (storedResult === null) return null;
  try {
    const status = (JSON.parse(storedResult) as { status?: unknown }).status;
    return typeof status === "string" && FINAL_STATES.has(status as JobStateStatus) ? status : null;
  } catch {
    return null;
  }
}

export function resolveState(jobId: string, storedState: string | null, storedResult: string | null): JobState {
  const state = storedState === null ? null : (JSON.parse(storedState) as JobState);
  if (endedStatus(storedResult) !== null && (state === null || !FINAL_STATES.has(state.status))) {
    return stateFromResult(JSON.parse(storedResult as string) as JobResult);
  }
  if (state === null) throw new UnknownJob(jobId);
  return state;
}

export function cancelOutcome(storedState: string | null, storedResult: string | null): CancelOutcome {
  if (endedStatus(storedResult) !== null) return "already_ended";
  if (storedState === null) return "unknown";
  return FINAL_STATES.has((JSON.parse(storedState) as JobState).status) ? "already_ended" : "cancelled";
}
