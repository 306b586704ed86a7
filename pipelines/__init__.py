"""The compute, below the catalog: the model families (pipelines.families), the preset table, frame timing, prompts,
size and frame grids, the resolved request a job runs with, and running it on a loaded diffusers pipeline (stage
hooks, conditioning caches, batching at the denoiser). Which model and settings a job gets (the catalog, request
resolution, loading) is models' business; this package never reads the catalog."""
