"""The loss registry: ``register_loss`` decorates a factory, plugins join through entry points."""

from __future__ import annotations

from featkit.registry import Registry

__all__ = ["LOSSES", "register_loss"]

#: Every loss featkit knows: built-ins, entry points in group ``featkit.losses``, ``--plugin`` modules.
LOSSES = Registry("loss", entry_point_group="featkit.losses")


def register_loss(name: str | None = None, *, summary: str | None = None):
    """Decorator registering a loss factory (a ``Loss`` class or a function returning an
    ``nn.Module`` called as ``loss(output, target)``) under ``name``.

    Example (in a plugin module)::

        @register_loss("l1")
        def l1_loss():
            '''Mean absolute error.'''
            return torch.nn.L1Loss()
    """
    return LOSSES.register(name, summary=summary)
