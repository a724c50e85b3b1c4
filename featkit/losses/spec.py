"""Loss specs: ``"pl"``, ``"sfl"``, ``"pl+sfl"``, ``"pl+0.5*sfl"`` -> one weighted-sum module.

Grammar: terms joined by ``+``; each term is a registered name, optionally preceded by a
non-negative weight and ``*``. Whitespace is ignored. ``pl+sfl`` is eq. 7 of the paper.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch
from torch import nn

from featkit.errors import SpecError
from featkit.losses.base import Loss
from featkit.losses.registry import LOSSES

__all__ = ["WeightedSum", "create_loss", "list_losses", "parse_spec"]

_TERM = re.compile(r"^(?:(?P<weight>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<name>[A-Za-z][\w\-.:/]*)$")


def parse_spec(spec: str) -> list[tuple[float, str]]:
    """Split a loss spec into ``(weight, name)`` terms; names are not looked up here.

    Raises:
        SpecError: for an empty term, a bad weight or a repeated name, naming the problem.

    Examples:
        >>> parse_spec("pl + 0.5*sfl")
        [(1.0, 'pl'), (0.5, 'sfl')]
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"empty loss spec; write terms like 'pl+sfl'. Available losses: {_available()}")
    terms: list[tuple[float, str]] = []
    for raw in spec.split("+"):
        match = _TERM.match(raw.strip())
        if match is None:
            raise SpecError(
                f"malformed term '{raw.strip()}' in loss spec '{spec}'; expected NAME or WEIGHT*NAME "
                f"(e.g. 'pl+0.5*sfl'). Available losses: {_available()}"
            )
        weight = float(match["weight"]) if match["weight"] else 1.0
        if not math.isfinite(weight):
            raise SpecError(f"weight of '{match['name']}' in '{spec}' must be finite")
        name = match["name"]
        if any(name == n for _, n in terms):
            raise SpecError(f"loss '{name}' appears twice in '{spec}'; combine the weights instead")
        terms.append((weight, name))
    return terms


def _available() -> str:
    return ", ".join(LOSSES.names())


def list_losses() -> list[str]:
    """Names of every registered loss, plugins included, sorted."""
    return LOSSES.names()


def _accepts(factory: Any, option: str) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _route_options(names: list[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split ``options`` per term: ``name={...}`` goes to that term, a plain option goes to
    every term whose factory accepts it."""
    routed: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in options.items():
        if key in routed:
            if not isinstance(value, dict):
                raise SpecError(f"options for loss '{key}' must be a dict, got {type(value).__name__}")
            routed[key].update(value)
            continue
        takers = [n for n in names if _accepts(LOSSES.get(n).factory, key)]
        if not takers:
            raise SpecError(f"no loss in '{'+'.join(names)}' takes the option '{key}'")
        for n in takers:
            routed[n][key] = value
    return routed


class WeightedSum(Loss):
    """A weighted sum of registered losses; its components are theirs, unweighted.

    Args:
        terms: ``(weight, name, module)`` triples. A module that is a :class:`Loss`
            contributes its own components; any other module called as
            ``module(output, target)`` contributes one component named after its term.
    """

    def __init__(self, terms: list[tuple[float, str, nn.Module]]) -> None:
        super().__init__()
        self.term_weights = {name: float(w) for w, name, _ in terms}
        self.terms = nn.ModuleDict({name.replace(".", "_"): module for _, name, module in terms})
        self._names = [name for _, name, _ in terms]
        self.weights = {}
        for w, name, module in terms:
            inner = module.weights if isinstance(module, Loss) else {name: 1.0}
            for part, part_weight in inner.items():
                if part in self.weights:
                    raise SpecError(f"two losses in the spec both report a component '{part}'")
                self.weights[part] = float(w) * part_weight

    def components(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        for name in self._names:
            module = self.terms[name.replace(".", "_")]
            if isinstance(module, Loss):
                parts.update(module.components(output, target))
            else:
                value = module(output, target)
                if not isinstance(value, torch.Tensor) or value.dim() != 0:
                    raise SpecError(f"loss '{name}' must return a 0-dim tensor, got {_describe(value)}")
                parts[name] = value
        return parts


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def create_loss(spec: str, **options: Any) -> Loss:
    """Build the loss described by ``spec``.

    Args:
        spec: e.g. ``"pl"``, ``"sfl"``, ``"pl+sfl"`` (eq. 7), ``"pl+0.5*sfl"``.
        **options: either ``NAME={...}`` (options of one term) or plain options passed to
            every term that accepts them, e.g. ``create_loss("pl+sfl", padding="reflect")``.

    Returns:
        A :class:`Loss`: ``loss(output, target)`` is a 0-dim tensor and
        ``loss.evaluate(output, target)`` also gives the unweighted components.

    Raises:
        SpecError: malformed spec or options nobody takes.
        UnknownNameError: a name that is not registered, listing those that are.

    Examples:
        >>> loss = create_loss("pl+sfl")
        >>> sorted(loss.weights.items())
        [('pl', 1.0), ('sfl/0.8', 100.0), ('sfl/1.6', 10.0), ('sfl/3.2', 10.0)]
    """
    terms = parse_spec(spec)
    names = [name for _, name in terms]
    entries = {name: LOSSES.get(name) for name in names}  # unknown names fail here, listed
    routed = _route_options(names, options)
    modules = []
    for weight, name in terms:
        try:
            module = entries[name].factory(**routed[name])
        except (TypeError, ValueError) as exc:
            raise SpecError(f"cannot build loss '{name}': {exc}") from exc
        if not isinstance(module, nn.Module):
            raise SpecError(f"loss '{name}' did not build an nn.Module but {_describe(module)}")
        modules.append((weight, name, module))
    if len(modules) == 1 and modules[0][0] == 1.0 and isinstance(modules[0][2], Loss):
        loss = modules[0][2]
    else:
        loss = WeightedSum(modules)
    loss.spec = spec.replace(" ", "")
    return loss
