"""`python -m bench ...` is `npc-worker bench ...`, for a source tree that is not installed (no entry points: the GPU
check runs on such a copy)."""

import typer

from bench.cli import bench

typer.run(bench)
