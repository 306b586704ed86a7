/**
 * Warm jobs (contract 1.2, docs/contract.md section 3b): an NPC's likely reactions generated on the workers' idle
 * time, so that the real job finds its video already made. A warm job is exactly the later real job (the same
 * params, so the same default seed and content key); its id is derived from those params, so warming a reaction
 * again is harmless.
 */
import { createHash } from "node:crypto";
import type { JobEnvelope, NpcResponseParams } from "./contract.js";

export const WARM_ID_PREFIX = "warm-";

/** The params of the real job a warm job stands for: the NPC's fields, the reaction's, then preset and style. */
export function warmParams(
  npc: Partial<NpcResponseParams>,
  reaction: Partial<NpcResponseParams>,
  options: { preset?: string; style?: string } = {},
): NpcResponseParams {
  const params: Record<string, unknown> = { ...npc, ...reaction };
  if (options.preset !== undefined) params.quality_preset = options.preset;
  if (options.style !== undefined) params.art_style = options.style;
  return params as unknown as NpcResponseParams;
}

/** JSON with object keys sorted at every level: the same params give the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** `warm-` and the SHA-256 (40 hex digits) of the params as canonical JSON. */
export function warmJobId(params: NpcResponseParams): string {
  return WARM_ID_PREFIX + createHash("sha256").update(canonical(params)).digest("hex").slice(0, 40);
}

export function warmEnvelope(params: NpcResponseParams, metadata?: Record<string, unknown>): JobEnvelope {
  const envelope: JobEnvelope = { job_id: warmJobId(params), operation_type: "npc_response", params };
  if (metadata !== undefined) envelope.metadata = metadata;
  return envelope;
}

/** Which reactions have their video ready, by warm job id in the reactions' order. */
export interface WarmStatus {
  ready: Record<string, boolean>;
  total: number;
  readyCount: number;
}
