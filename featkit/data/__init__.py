"""Images in: finding and decoding image files, the collections training and extraction read
(folders, list files, WebDataset tar shards), and the streams that decode them.

- :mod:`~featkit.data.images`: one image file: finding, probing its header, decoding, windows.
- :mod:`~featkit.data.samples`: the sample photos used when no images are given.
- :mod:`~featkit.data.procedural`: dead-leaves images, redistributable training data.
- :mod:`~featkit.data.collections`: a collection of image references, from any source.
- :mod:`~featkit.data.loading`: decoding a collection in order, in worker processes.
- :mod:`~featkit.data.windows`: training windows: epoch plans and the stream of loads.
- :mod:`~featkit.data.shards` / :mod:`~featkit.data.shard_writer`: reading / writing shards.

May import: :mod:`featkit.errors`, :mod:`featkit.io`. The names below (featkit 0.1's
``featkit.data``) stay importable from here.
"""

from featkit._lazy import lazy_exports

#: Exported name -> the module defining it, imported on first use.
_EXPORTS = {
    "DEFAULT_MAX_PIXELS": "featkit.data.images",
    "ImageRecord": "featkit.data.images",
    "ImageRef": "featkit.data.images",
    "decode_image": "featkit.data.images",
    "decode_windows": "featkit.data.images",
    "find_images": "featkit.data.images",
    "iter_batches": "featkit.data.images",
    "load_image": "featkit.data.images",
    "load_images": "featkit.data.images",
    "probe_image": "featkit.data.images",
    "sample_images": "featkit.data.samples",
    "size_buckets": "featkit.data.images",
    "skip_reason": "featkit.data.images",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
