"""Training a CAE on a folder of images: ``train(TrainConfig(...)) -> run directory``.

Four presets (their settings: :data:`featkit.choices.PRESETS`), every field overridable:

- ``standard`` (default): Adam (learning rate 6e-3, cosine decay) on mini-batches of random
  crops, with epochs of a fixed number of windows, so a run costs the same on 20 photos and
  on a million and memory holds one step's crops.
- ``paper`` (section 4): SGD, learning rate 0.02, momentum 0.5, full batch of whole images,
  2000 epochs; with ``pl+sfl`` the SFL weights are the paper's 100/10/10.
- ``fast``: Adam on a full batch of whole images, 100 epochs: the paper's effect in minutes
  (PL alone stays blurry), not the paper preset's final quality.
- ``quality``: ``fast`` with batches of 4 whole images for 200 epochs.

Images are never all in memory: the run lists them and reads their headers, then each step
decodes what it needs (:mod:`featkit.data.windows`). An epoch is a list of steps, a pure function
of the seed and the epoch (:func:`featkit.data.windows.plan_epoch`); a step is cut into loads of
bounded pixels whose gradients accumulate with weights ``n_batch / n_step``, so a full-batch
step over any number of images of any sizes is exactly one mean over images. Under
``torchrun`` each process takes its share of each step's windows (for tar shards, those of
the shards it owns) and the gradients are summed with one ``all_reduce``: the update is the
same as one process's.

A run directory holds ``config.json`` (with ``files.txt``, the list of images, beside it), ``model.safetensors``, ``metrics.csv``,
``checkpoint.safetensors`` (+ ``checkpoint.prev.safetensors``), ``summary.json``,
``whitening.safetensors`` (the descriptor whitening fitted on the run's images at the end),
``curves.png``, ``reconstructions/`` and ``report.html``. The library never prints: progress
goes to the ``on_step`` callback.

- :mod:`~featkit.training.config`: the settings and presets (:class:`TrainConfig`).
- :mod:`~featkit.training.images`: the images a run trains on and their list.
- :mod:`~featkit.training.contrast`: the dense warp-contrastive term.
- :mod:`~featkit.training.probe`: PL and the SFL bands every run logs.
- :mod:`~featkit.training.optim`: optimizers and the learning-rate schedule.
- :mod:`~featkit.training.world`: this process's place in a ``torchrun`` job.
- :mod:`~featkit.training.trainer`: the run's state and one optimisation step.
- :mod:`~featkit.training.run_files`: ``config.json``, ``metrics.csv``, where runs go.
- :mod:`~featkit.training.end_of_run`: figures, ``summary.json``, the whitening, the report.
- :mod:`~featkit.training.loop`: :func:`train`, the loop itself.
- :mod:`~featkit.training.reproduce`: the paper's comparison of ``pl`` and ``pl+sfl``.

May import: :mod:`featkit.features` (the descriptors its contrast term and whitening use),
:mod:`featkit.report`, :mod:`featkit.runs`, :mod:`featkit.data`, :mod:`featkit.losses`,
:mod:`featkit.encoders`, :mod:`featkit.runtime` and the foundation; never :mod:`featkit.tasks`.
The names below (featkit 0.1's ``featkit.training``) stay importable from here.
"""

from featkit._lazy import lazy_exports

#: Exported name -> the module defining it, imported on first use.
_EXPORTS = {
    "FILES_LIST": "featkit.training.images",
    "PRESETS": "featkit.choices",
    "PROBE_COMPONENTS": "featkit.training.probe",
    "RESUMABLE_SETTINGS": "featkit.training.config",
    "TrainConfig": "featkit.training.config",
    "TrainConfigError": "featkit.training.config",
    "TrainProgress": "featkit.training.loop",
    "evaluate_images": "featkit.training.probe",
    "stored_config": "featkit.training.config",
    "train": "featkit.training.loop",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
