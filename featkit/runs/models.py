"""Models from run directories: safetensors weights plus a JSON config naming the encoder and its
arguments, and the run's whitening when it has one.

A run directory (from ``featkit train``) holds ``config.json`` and ``model.safetensors``.
Nothing is ever unpickled: weights are safetensors, everything else JSON. :func:`load_model`
also accepts the names of the models shipped inside featkit (:func:`pretrained_models`; run
directories under ``featkit/pretrained/``, each with its ``PROVENANCE.md``) and registry names
(``timm:<model>``, ``pixels``, ``paper-cae``) for baselines; :func:`load_encoder` adds what
manifests record (the model, its :func:`fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, FeatkitError
from featkit.io import read_json
from featkit.runs.tensors import load_tensors, save_tensors
from featkit.runs.whitening import WHITENING_FILE, Whitening
from featkit.runtime.devices import resolve_device

__all__ = [
    "BASELINE_SEED", "CONFIG_FILE", "DEFAULT_MODEL", "PRETRAINED_DIR", "WEIGHTS_FILE", "load_encoder", "load_model",
    "pretrained_models", "run_directory", "save_model",
]  # fmt: skip


CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Where the shipped models live: one run directory per name (package data).
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
#: The shipped model that ``extract``, ``match`` and ``train --init`` use when given no model.
DEFAULT_MODEL = "featkit-cae"


def pretrained_models() -> dict[str, Path]:
    """The models shipped inside featkit: name -> run directory."""
    if not PRETRAINED_DIR.is_dir():
        return {}
    return {d.name: d for d in sorted(PRETRAINED_DIR.iterdir()) if (d / CONFIG_FILE).is_file()}


def run_directory(spec: str | os.PathLike) -> Path | None:
    """The run directory ``spec`` names: itself when it is a directory (which wins over a
    shipped model of that name), else the shipped model's; ``None`` for neither."""
    path = Path(spec)
    return path if path.is_dir() else pretrained_models().get(str(spec))


def save_model(run_dir: str | os.PathLike, model: AutoEncoder) -> Path:
    """Write ``model.safetensors`` into ``run_dir`` (atomically); returns its path."""
    path = Path(run_dir) / WEIGHTS_FILE
    save_tensors(path, model.state_dict(), {"encoder": model.config})
    return path


def _from_run_dir(run_dir: Path) -> tuple[AutoEncoder, dict[str, Any]]:
    config_path, weights_path = run_dir / CONFIG_FILE, run_dir / WEIGHTS_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir}: not a featkit run directory (no {CONFIG_FILE})")
    try:
        config = read_json(config_path)
        encoder = config["encoder"]
        name, args = encoder["name"], encoder.get("args", {})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: unreadable run config ({exc})") from exc
    tensors, meta = load_tensors(weights_path)
    if meta.get("encoder", {}).get("name", name) != name:
        raise CheckpointError(
            f"{weights_path}: weights of encoder '{meta['encoder']['name']}' but {config_path} names '{name}'"
        )
    model = create_encoder(name, **args)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{weights_path}: weights do not fit encoder '{name}' ({first[-1].strip() if first else exc})") from exc
    _attach_whitening(model, run_dir)
    return model, config


def _attach_whitening(model: AutoEncoder, run_dir: Path) -> None:
    """Give ``model`` the run's descriptor whitening (``model.whitening``) when it has one."""
    path = run_dir / WHITENING_FILE
    if not path.is_file():
        return
    whitening = Whitening.load(path)
    info = {i.name: i for i in model.feature_info}.get(whitening.layer)
    if info is None or whitening.mean.numel() != info.channels * whitening.window**2:
        raise CheckpointError(f"{path}: a whitening for another model (layer '{whitening.layer}', "
                              f"{whitening.mean.numel()} numbers per descriptor)")  # fmt: skip
    model.whitening = whitening


def load_model(spec: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
               ) -> tuple[AutoEncoder, dict[str, Any]]:  # fmt: skip
    """Rebuild a model for feature extraction, in eval mode.

    Args:
        spec: a run directory from ``featkit train``; the name of a shipped model
            (:func:`pretrained_models`; ``None``: :data:`DEFAULT_MODEL`); or a registry name
            such as ``timm:resnet18`` (random weights), ``pixels`` or ``paper-cae`` (random init).
            A directory of that name wins over a shipped model's.
        device: where to put it.

    Returns:
        ``(model, config)``; ``config`` is the run's ``config.json`` or ``{"encoder": ...}``.

    Raises:
        CheckpointError: a run directory that is incomplete, corrupt or for another model.
        UnknownNameError: a name that is neither a directory nor a registered encoder.
    """
    spec = DEFAULT_MODEL if spec is None else spec
    path, run_dir = Path(spec), run_directory(spec)
    if run_dir is not None:
        model, config = _from_run_dir(run_dir)
    elif path.suffix in (".safetensors", ".json") and path.exists():
        model, config = _from_run_dir(path.parent)
    else:
        try:
            model = create_encoder(str(spec))
        except FeatkitError as exc:
            names = ", ".join(pretrained_models()) or "none installed"
            raise type(exc)(f"'{spec}' is neither a run directory, a shipped model ({names}) nor an encoder: {exc}") from exc
        config = {"encoder": model.config}
    return model.to(device).eval(), config


#: Seed used to build randomly initialised baselines, so they are the same model every time.
BASELINE_SEED = 0


def fingerprint(model: AutoEncoder) -> str:
    """A short hash of the encoder's name, arguments, weights and descriptor whitening: equal
    means same features."""
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True, default=str).encode())
    tensors = dict(model.state_dict())
    whitening = getattr(model, "whitening", None)
    if whitening is not None:
        digest.update(f"{whitening.layer}/{whitening.window}".encode())
        tensors.update({"whitening.mean": whitening.mean, "whitening.projection": whitening.projection})
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_encoder(spec: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 ) -> tuple[AutoEncoder, dict[str, Any]]:  # fmt: skip
    """Load the model behind ``spec`` and describe it for manifests.

    Registry names with random weights (``paper-cae``, ``timm:resnet18``) are built from
    :data:`BASELINE_SEED`, so extracting twice gives the same features.

    Returns:
        ``(model, info)`` with ``info = {"model": spec, "encoder": {...}, "fingerprint": ...}``;
        a run directory is recorded by its absolute path, a shipped model by its name.
    """
    spec = DEFAULT_MODEL if spec is None else spec
    is_path = Path(spec).exists()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BASELINE_SEED)
        model, config = load_model(spec, device=resolve_device(device))
    info = {
        "model": str(Path(spec).resolve()) if is_path else str(spec),
        "encoder": config["encoder"],
        "fingerprint": fingerprint(model),
    }
    return model, info
