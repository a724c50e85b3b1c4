"""Features out: local descriptors read from a hidden layer, pooled vectors, and extraction of
whole collections to ``feats.npy`` + ``feats.json``.

- :mod:`~featkit.features.descriptors`: dense local descriptors of a batch of images.
- :mod:`~featkit.features.pooling`: one row per image from a feature map.
- :mod:`~featkit.features.encoding`: running an encoder over batches, rows out.
- :mod:`~featkit.features.extraction`: :func:`~featkit.features.extraction.extract`, a
  collection to a features file, streamed, resumable, sharded.
- :mod:`~featkit.features.partial`: the partial output a running extraction resumes from.
- :mod:`~featkit.features.files`: reading features files and their manifests.
- :mod:`~featkit.features.merging`: joining sharded outputs.

May import: :mod:`featkit.runs`, :mod:`featkit.data`, :mod:`featkit.encoders`,
:mod:`featkit.runtime` and the foundation (errors, io, choices).
"""
