#!/usr/bin/env node
/**
 * A small producer: submit one job from a JSON file, optionally cancel it, wait and print the result as JSON.
 *
 *   npc-video-produce JOB.json [--redis-url URL] [--prefix npc] [--lane normal] [--timeout 300] [--cancel]
 *
 * Exit codes: 0 a result was printed (whatever its status), 1 no result before the timeout, 2 a refused job (or an id
 * that already ended), 3 Redis unreachable. Errors are one line on stderr.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { NpcVideoClient } from "./client.js";
import type { JobEnvelope } from "./contract.js";
import { JobAlreadyEnded, JobRejected, RedisUnavailable } from "./errors.js";
import { LANES } from "./names.js";

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      "redis-url": { type: "string", default: "redis://127.0.0.1:6379/0" },
      prefix: { type: "string", default: "npc" },
      lane: { type: "string", default: "normal" },
      timeout: { type: "string", default: "300" },
      cancel: { type: "boolean", default: false },
    },
  });
  const [jobPath] = positionals;
  const lane = LANES.find((known) => known === values.lane);
  if (jobPath === undefined || lane === undefined) {
    console.error("usage: npc-video-produce JOB.json [--lane high|normal|low] [--timeout S] [--cancel]");
    return 2;
  }
  const envelope = JSON.parse(readFileSync(jobPath, "utf8")) as JobEnvelope;
  let client: NpcVideoClient | undefined;
  try {
    client = await NpcVideoClient.connect({ url: values["redis-url"], prefix: values.prefix });
    const jobId = await client.submit(envelope, { lane });
    if (values.cancel) await client.cancel(jobId, { ttlS: 600 });
    const result = await client.wait(jobId, { timeoutS: Number(values.timeout) });
    console.log(JSON.stringify(result));
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof RedisUnavailable) return 3;
    return error instanceof JobRejected || error instanceof JobAlreadyEnded ? 2 : 1;
  } finally {
    await client?.close();
  }
}

process.exitCode = await main();
