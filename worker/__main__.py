"""`python -m worker` is `npc-worker`."""

from worker.cli import main

main()
