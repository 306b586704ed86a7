"""`npc-worker bench`: latency per stage, step time, memory and FLOPs of models x presets x settings, measured
through the worker's own job path (in-process or through the queue) and written as JSON, CSV, a plot and a
self-contained HTML report (docs/benchmarks.md).

A package above `worker/`: it registers its command through the entry point group `npc_worker.commands`
(bench.cli.register), takes what it measures from the worker through bench.worker_api alone, and the worker never
imports it (import-linter)."""
