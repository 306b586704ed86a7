/** The contract's Redis keys under one prefix (docs/contract.md, section 3). */

export type Lane = "high" | "normal" | "low" | "warm";
/** The lanes of real jobs, highest first; "warm" is the pre-generation lane (client.warm). */
export const LANES: readonly Lane[] = ["high", "normal", "low"];

export interface StreamNames {
  lane(lane: Lane): string;
  result(jobId: string): string;
  cancel(jobId: string): string;
  done(jobId: string): string;
  /** The per-job state (contract 1.2). */
  state(jobId: string): string;
  /** Warm job id -> the storage key of its video (contract 1.2). */
  readonly warmReady: string;
  readonly events: string;
}

export function streamNames(prefix = "npc"): StreamNames {
  return {
    lane: (lane) => `${prefix}:jobs:${lane}`,
    result: (jobId) => `${prefix}:result:${jobId}`,
    cancel: (jobId) => `${prefix}:cancel:${jobId}`,
    done: (jobId) => `${prefix}:done:${jobId}`,
    state: (jobId) => `${prefix}:state:${jobId}`,
    warmReady: `${prefix}:warm:ready`,
    events: `${prefix}:events`,
  };
}
