"""Optimizers and the learning rate of every step (warm-up, then constant or cosine decay)."""

from __future__ import annotations

import math

import torch

from featkit.training.config import TrainConfig

__all__ = []


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, step: int, total: int, warmup: int) -> float:
    """Learning rate of global step ``step`` (0-based) out of ``total``, the first ``warmup``
    of them rising linearly: a pure function of the position, so a resumed run needs no
    scheduler state."""
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))
