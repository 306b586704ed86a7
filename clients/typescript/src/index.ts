export {
  CONTRACT_VERSION,
  JSON_SAFE_SEED_MAX,
  JobRejected,
  type Lane,
  NpcVideoClient,
  type NpcVideoClientOptions,
  streamNames,
  type StreamNames,
} from "./client.js";
export type * from "./contract.js";
