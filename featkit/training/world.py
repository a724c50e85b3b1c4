"""This process's place in a ``torchrun`` job: rank, world size, gradient sums and barriers."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.distributed as dist

from featkit.errors import FeatkitError

__all__ = []


class World:
    """This process's place in a ``torchrun`` job (a single process is a world of one)."""

    def __init__(self, device: torch.device) -> None:
        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owns_group = False
        if self.size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def on_main(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the main process only; every process raises if it failed."""
        error = None
        if self.main:
            try:
                action()
            except FeatkitError as exc:
                error = exc
        failed = self.sum_(torch.tensor([0.0 if error is None else 1.0]))
        if error is not None:
            raise error
        if failed.item():
            raise FeatkitError("the main process could not set up the run directory; see its error")

    def wait_for_all(self) -> None:
        """Return once every process got here (at once in a world of one)."""
        if self.size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()
