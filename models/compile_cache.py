"""Where torch.compile keeps what it builds, so that a restarted worker does not compile from scratch again.

Inductor caches compiled graphs on disk (the FX graph cache: generated code and Triton kernels, keyed by the graph,
the torch version, the device and the compiler settings) and the traced forward graphs before them (the AOT
autograd cache). Both default to a folder under the system's temporary directory, which a container restart
empties; here they go under the worker's data directory, which a deployment keeps on a volume. Dynamo's tracing
still runs in every new process (seconds per shape); the cache skips code generation and kernel autotuning, the
minutes of a cold compile.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

COMPILE_CACHE_FOLDER = "compile-cache"
INDUCTOR_CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"  # Triton's kernels go under it too (unless TRITON_CACHE_DIR)


def configure_compile_cache(data_dir: Path) -> Path:
    """Point Inductor's on-disk cache at DATA_DIR/compile-cache (unless TORCHINDUCTOR_CACHE_DIR names another
    folder than torch's default: the operator's choice wins) and turn on the FX graph and AOT autograd caches.
    Inductor reads the variable at each cache access, so this must run before the first compilation. Importing
    diffusers already sets the variable to torch's default (/tmp/torchinductor_USER), hence the comparison.
    Returns the folder in use."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get(INDUCTOR_CACHE_VARIABLE)
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        folder = Path(chosen)
    else:
        folder = (data_dir / COMPILE_CACHE_FOLDER).resolve()
        os.environ[INDUCTOR_CACHE_VARIABLE] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    log.info("torch.compile cache in %s", folder)
    return folder
