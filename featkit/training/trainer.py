"""The state of one run (model, optimizer, data, position) and one optimisation step: loads
accumulate their weighted gradients, every process's share is summed, then the update."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import torch

from featkit.data.windows import Load, StepStream, plan_epoch
from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, NonFiniteLossError
from featkit.losses import LOSSES, create_loss
from featkit.runs.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from featkit.io import read_json
from featkit.runs.models import CONFIG_FILE, load_encoder, save_model
from featkit.runtime.devices import network_input
from featkit.training.config import TrainConfig
from featkit.training.contrast import WarpContrast
from featkit.training.images import TrainingImages
from featkit.training.optim import make_optimizer
from featkit.training.probe import PROBE_COMPONENTS
from featkit.training.world import World

__all__ = ["CONTRAST_COMPONENT"]


#: The metrics column of the contrast term (unweighted, like the loss components).
CONTRAST_COMPONENT = "contrast"


class Trainer:
    """The state of one run: model, optimizer, data, position; steps and checkpoints."""

    def __init__(self, config: TrainConfig, run_dir: Path, data: TrainingImages, world: World, device):
        self.config, self.run_dir, self.data, self.world, self.device = config, run_dir, data, world, device
        torch.manual_seed(config.seed)
        self.model: AutoEncoder = create_encoder(config.encoder, **config.encoder_args).to(device)
        #: ``{"model", "fingerprint"}`` of the model the weights started from (``config.init``).
        self.init: dict[str, str] | None = None
        if config.init is not None and config.resume is None:
            self.init = _start_from(self.model, config.init)
        self.loss = create_loss(config.loss, **config.loss_options).to(device)
        self.probe = create_loss("pl+sfl").to(device)
        self.contrast = WarpContrast(max_perspective=config.contrast_perspective) if config.contrast > 0 else None
        self.names = list(PROBE_COMPONENTS) + [n for n in self.loss.weights if n not in PROBE_COMPONENTS]
        self.names += [CONTRAST_COMPONENT] if self.contrast is not None else []
        self.batches_in_step = 0  # batches this process ran in the current step (seeds the contrast term)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.plan = {"seed": config.seed, "batch_size": config.batch_size, "crops_per_image": config.crops_per_image,
                     "epoch_windows": config.epoch_windows}  # fmt: skip
        self.steps_per_epoch = len(plan_epoch(len(data.collection), 0, **self.plan))
        self.epoch, self.step = 0, 0  # completed epochs; completed steps of the current epoch
        self.partial: dict[str, float] = {}
        self.rows: list[dict[str, Any]] = []
        #: Images whose header read but whose pixels did not decode, found while training.
        self.late_skipped: dict[str, str] = {}

    # -- state ------------------------------------------------------------------------
    def save(self) -> None:
        if not self.world.main:
            return
        meta = {"epoch": self.epoch, "step": self.step, "partial": self.partial, "rows": self.rows,
                "late_skipped": self.late_skipped}  # fmt: skip
        save_checkpoint(self.run_dir, model=self.model, optimizer=self.optimizer, rng={"torch": torch.get_rng_state()},
                        meta=meta)  # fmt: skip
        save_model(self.run_dir, self.model)

    def restore(self) -> None:
        state = load_checkpoint(self.run_dir)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        meta = state["meta"]
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.partial, self.rows = dict(meta["partial"]), list(meta["rows"])
        self.late_skipped = dict(meta.get("late_skipped", {}))
        self.init = read_json(self.run_dir / CONFIG_FILE).get("init")

    def stream(self) -> StepStream:
        """The loads of every step from the current position to the end of the run."""
        c = self.config
        return StepStream(self.data.collection, self.data.sizes, plan=self.plan, crop=c.crop, max_side=c.max_side,
                          start=(self.epoch, self.step), stop=c.epochs, rank=self.world.rank, world=self.world.size)  # fmt: skip

    # -- one step ---------------------------------------------------------------------
    def _components(self, batch: torch.Tensor, load: Load) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.amp and self.device.type == "cuda")
        with autocast:
            output = self.model(batch)
        output = output.float()
        total, parts = self.loss.evaluate(output, batch)
        if self.contrast is not None:
            with autocast:
                term = self.contrast(self.model, batch, self._contrast_generator(load))
            parts = {**parts, CONTRAST_COMPONENT: term}
            total = total + self.config.contrast * term
        missing = [n for n in PROBE_COMPONENTS if n not in parts]
        if missing:
            with torch.no_grad():
                probed = self.probe.components(output.detach(), batch)
            parts = {**parts, **{n: probed[n] for n in missing}}
        return total, parts

    def _contrast_generator(self, load: Load) -> torch.Generator:
        """The contrast term's randomness for this process's next batch: a pure function of
        the seed and the position, so a resumed run draws the same warps."""
        position = (self.config.seed, load.epoch, load.step, self.world.rank, self.batches_in_step)
        seed = int.from_bytes(hashlib.sha256(repr(position).encode()).digest()[:8], "little")
        self.batches_in_step += 1
        return torch.Generator().manual_seed(seed)

    def accumulate(self, load: Load, sums: torch.Tensor) -> None:
        """Add one load's gradient, weighted by its share of the step's planned windows, and
        its components (summed over windows) to ``sums``."""
        for name, reason in load.failed:
            self.late_skipped.setdefault(name, reason)
        for batch in load.batches:
            batch = network_input(batch, self.device)
            total, parts = self._components(batch, load)
            (total * (len(batch) / load.windows)).backward()
            values = torch.stack([parts[n].detach() for n in self.names] + [total.detach()]).double().cpu()
            sums[:-1] += values * len(batch)
            sums[-1] += len(batch)

    def finish_step(self, sums: torch.Tensor, planned: int, lr: float) -> dict[str, float]:
        """Combine every process's part of the step and update; returns the step's summed
        components and ``count``, the windows that decoded. A step whose images all failed
        to decode makes no update."""
        self.world.sum_(sums)
        if not bool(torch.isfinite(sums).all()):
            name, value = next((n, v) for n, v in zip([*self.names, "total"], sums.tolist()) if not math.isfinite(v))
            overall = self.epoch * self.steps_per_epoch + self.step + 1
            origin = f" (from {LOSSES.get(name).source})" if name in LOSSES.names() else ""
            raise NonFiniteLossError(
                f"loss term '{name}'{origin} became {value} at epoch {self.epoch + 1}, step {self.step + 1} "
                f"(step {overall} overall); the update was "
                f"not applied and the last good checkpoint is {self.run_dir / CHECKPOINT_FILE} (try a lower --lr)"
            )
        decoded = int(sums[-1])
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.world.size > 1:  # one all_reduce of every gradient, flattened
            flat = self.world.sum_(torch.cat([torch.zeros_like(p).flatten() if p.grad is None else p.grad.flatten()
                                              for p in params]))  # fmt: skip
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad = g.view_as(p).clone()
        if 0 < decoded < planned:  # undecodable images: the mean is over the windows that remain
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(planned / decoded)
        if decoded:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=False)
        self.batches_in_step = 0
        return dict(zip([*self.names, "total", "count"], sums.tolist()))


def _start_from(model: AutoEncoder, spec: str) -> dict[str, str]:
    """Copy the weights of the model ``spec`` names into ``model``; returns what config.json
    records of it.

    Raises:
        CheckpointError: ``spec`` is another encoder than ``model``.
    """
    init, info = load_encoder(spec)
    if init.config != model.config:
        raise CheckpointError(f"--init {spec} is encoder {init.config}, not the {model.config} this run trains")
    model.load_state_dict(init.state_dict())
    return {"model": info["model"], "fingerprint": info["fingerprint"]}
