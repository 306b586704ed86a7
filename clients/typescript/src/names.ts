/** The contract's Redis keys under one prefix (docs/contract.md, section 3). */

export type Lane = "high" | "normal" | "low";
export const LANES: readonly Lane[] = ["high", "normal", "low"];

export interface StreamNames {
  lane(lane: Lane): string;
  result(jobId: string): string;
  cancel(jobId: string): string;
  done(jobId: string): string;
  /** The per-job state (contract 1.2). */
  state(jobId: string): string;
  readonly events: string;
}

export function streamNames(prefix = "npc"): StreamNames {
  return {
    lane: (lane) => `${prefix}:jobs:${lane}`,
    result: (jobId) => `${prefix}:result:${jobId}`,
    cancel: (jobId) => `${prefix}:cancel:${jobId}`,
    done: (jobId) => `${prefix}:done:${jobId}`,
    state: (jobId) => `${prefix}:state:${jobId}`,
    events: `${prefix}:events`,
  };
}
