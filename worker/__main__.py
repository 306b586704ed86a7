"""`python -m worker` is `npc-worker`; `python -m worker serve` is how the supervisor starts each worker."""

import sys

from worker.shutdown import catch_early_signals

if sys.argv[1:2] == ["serve"]:
    catch_early_signals()  # before the heavy imports: a stop while importing is a graceful stop, not a kill

from worker.cli import main  # after the signal handlers, on purpose

main()
