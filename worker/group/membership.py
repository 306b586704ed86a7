"""Joining a worker group: the rendezvous of its processes and the process groups they talk over.

The model's collectives (the context-parallel all-to-alls) run on the default process group: NCCL between GPUs,
gloo on the CPU. The leader's commands, the per-step decisions and the resynchronisation after each call run on a
gloo group of their own (`control`), whose waits are bounded by `group_timeout_s`. The rendezvous itself (a TCP store
at `group_address`, kept by rank 0) waits up to `group_start_timeout_s` for every member.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from models.catalog import Catalog
from worker.settings import Settings

log = logging.getLogger(__name__)


class GroupStartError(RuntimeError):
    """The members did not meet; the message says where, who and for how long."""


@dataclass(frozen=True)
class Membership:
    rank: int
    size: int
    control: Any  # torch.distributed ProcessGroup (gloo)
    timeout_s: float

    @property
    def leads(self) -> bool:
        return self.rank == 0


def join_with(settings: Settings) -> tuple[Membership, Catalog]:
    """What a member does first: read the catalog and refuse what the group cannot split (before meeting the
    others, so a misconfigured group ends at once instead of waiting at the rendezvous), then meet them."""
    from models.parallel import check_splittable
    from worker.runtime import load_configured_catalog

    device = settings.resolved_device()
    catalog = load_configured_catalog(settings)
    check_splittable(catalog, settings.group_size, device)
    return join(settings, device), catalog


def join(settings: Settings, device: str) -> Membership:
    """Meet the other members (blocking until all have come, or GroupStartError)."""
    import torch
    import torch.distributed as dist
    from torch.distributed import TCPStore  # type: ignore[attr-defined]  # exported at runtime, not in the stubs

    host, _, port = settings.group_address.rpartition(":")
    rank, size = settings.group_rank, settings.group_size
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(0)  # each member sees its own GPU as cuda:0 (CUDA_VISIBLE_DEVICES)
    collective = timedelta(seconds=settings.group_timeout_s)
    try:
        store = TCPStore(
            host,
            int(port),
            world_size=size,
            is_master=rank == 0,
            timeout=timedelta(seconds=settings.group_start_timeout_s),
        )
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=collective)
        control = dist.new_group(backend="gloo", timeout=collective)
        dist.monitored_barrier(group=control, timeout=timedelta(seconds=settings.group_start_timeout_s))
    except (RuntimeError, OSError, dist.DistError) as exc:
        raise GroupStartError(
            f"worker group at {settings.group_address}: rank {rank} of {size} could not meet the others within "
            f"{settings.group_start_timeout_s:g} s (NPC_WORKER_GROUP_START_TIMEOUT_S): {str(exc).splitlines()[0]}"
        ) from exc
    log.info("joined worker group at %s as rank %d of %d (%s)", settings.group_address, rank, size, backend)
    return Membership(rank, size, control, settings.group_timeout_s)


def leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
