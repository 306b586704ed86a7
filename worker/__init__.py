"""The running service: a job's stages (intake, scheduling, device, finishing, endings), the queue code under
`worker.queue`, storage, health and metrics, the supervisor and the `npc-worker` CLI. docs/architecture.md maps it."""
