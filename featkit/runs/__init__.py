"""Run directories: what ``featkit train`` leaves and everything else loads.

- :mod:`~featkit.runs.tensors`: safetensors files with metadata and a digest.
- :mod:`~featkit.runs.models`: ``config.json`` + ``model.safetensors`` -> a model
  (:func:`~featkit.runs.models.load_model`), registry baselines, model fingerprints.
- :mod:`~featkit.runs.whitening`: the descriptor whitening a run carries.
- :mod:`~featkit.runs.checkpoint`: the training state ``resume`` continues.

Below both training and feature extraction, since both read runs. May import:
:mod:`featkit.encoders`, :mod:`featkit.errors`, :mod:`featkit.io`.
"""
