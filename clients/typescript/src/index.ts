export { DEFAULT_STATE_TTL_S, JSON_SAFE_SEED_MAX, NpcVideoClient, type NpcVideoClientOptions } from "./client.js";
export type * from "./contract.js";
export {
  JobAlreadyEnded,
  JobRejected,
  NpcVideoClientError,
  RedisUnavailable,
  UnknownJob,
} from "./errors.js";
export { EVENT_TYPES, EventStream, type EventStreamOptions, isFinal } from "./events.js";
export { type Lane, LANES, streamNames, type StreamNames } from "./names.js";
export { type CancelOutcome, CONTRACT_VERSION } from "./state.js";
export { type WarmStatus, warmJobId, warmParams } from "./warming.js";
