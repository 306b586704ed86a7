// The TypeScript client's 1.2 API against a real worker (tests/contract/test_typescript_client.py runs it):
//
//   node typescript_scenarios.mjs DIST_DIR REDIS_URL CLOSED_PORT BASE_IMAGE
//
// Prints one JSON object: what each call returned or threw (the error's class name and message).
import { pathToFileURL } from "node:url";

const [dist, url, closedPort, baseImage] = process.argv.slice(2);
const { NpcVideoClient } = await import(pathToFileURL(`${dist}/index.js`).href);

async function outcome(call) {
  try {
    return { value: await call() };
  } catch (error) {
    return { error: error.constructor.name, message: error.message };
  }
}

function job(jobId, params = {}) {
  const base = { npc_id: "npc-7", npc_name: "Mira", npc_base_image: baseImage, expression: "smiling", emotion: "glad" };
  return {
    job_id: jobId,
    operation_type: "npc_response",
    params: { ...base, animation: "idle", intensity: 0.5, quality_preset: "realtime", width: 32, height: 32, duration: 1, steps: 2, ...params },
    metadata: { generation_id: 9100 },
  };
}

const report = {};
const client = await NpcVideoClient.connect({ url });
const idle = await NpcVideoClient.connect({ url, prefix: "ts-idle", stateTtlS: 120 }); // no worker reads this prefix
try {
  report.unknown = await outcome(() => client.status("ts-nobody"));
  await idle.submit(job("ts-queued"));
  report.queued = await outcome(() => idle.status("ts-queued"));
  report.cancelQueued = await outcome(() => idle.cancel("ts-queued", { ttlS: 60 }));
  report.cancelUnknown = await outcome(() => client.cancel("ts-nobody", { ttlS: 60 }));

  const stream = await client.events({ jobId: "ts-events", blockMs: 120_000 });
  await client.submit(job("ts-events"), { lane: "high" });
  const types = [];
  for await (const event of stream) types.push(event.type);
  report.events = types;
  report.result = (await client.wait("ts-events", { timeoutS: 120 })).status;
  report.ended = await outcome(() => client.status("ts-events"));
  const late = [];
  const started = Date.now();
  for await (const event of await client.events({ jobId: "ts-events" })) late.push(event.type);
  report.late = { events: late, ms: Date.now() - started };
  const history = [];
  for await (const event of await client.events({ jobId: "ts-events", since: "0-0" })) history.push(event.type);
  report.history = history;
  const mixed = []; // written by the test: an unknown type, an entry that is not JSON, then the final event
  for await (const event of await client.events({ jobId: "ts-mixed", since: "0-0", blockMs: 5000 })) mixed.push(event.type);
  report.mixed = mixed;
  report.resubmit = await outcome(() => client.submit(job("ts-events")));
  report.cancelEnded = await outcome(() => client.cancel("ts-events"));
  report.badLane = await outcome(() => client.submit(job("ts-lane"), { lane: "urgent" }));

  const npc = { npc_id: "npc-7", npc_name: "Mira", npc_base_image: baseImage };
  const reactions = [{ expression: "winking", emotion: "glad", animation: "idle", intensity: 0.5, width: 32, height: 32, duration: 1, steps: 2 }];
  report.warmIds = await client.warm(npc, reactions, { preset: "realtime" });
  let status = await client.warmStatus(npc, reactions, { preset: "realtime" });
  const warmStarted = Date.now();
  while (status.readyCount < 1 && Date.now() - warmStarted < 120_000) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    status = await client.warmStatus(npc, reactions, { preset: "realtime" });
  }
  report.warmStatus = status;
  report.warmEmpty = await outcome(() => client.warm(npc, []));
  report.warmCancelIds = await client.warmCancel(npc, reactions, { preset: "realtime", ttlS: 600 });
} finally {
  await client.close();
  await idle.close();
}
report.unreachable = await outcome(() => NpcVideoClient.connect({ url: `redis://producer:s3cret@127.0.0.1:${closedPort}/0` }));
console.log(JSON.stringify(report));
