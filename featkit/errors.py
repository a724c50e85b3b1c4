"""Errors featkit raises on purpose.

Every error a user can cause (a bad file, an unknown name, a malformed spec) is a
:class:`FeatkitError`. The CLI prints such errors as one line and exits with status 1;
anything else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations

__all__ = [
    "FeatkitError",
    "FeatkitWarning",
    "UnknownNameError",
    "DuplicateNameError",
    "SpecError",
    "ShapeError",
    "ImageError",
    "ShardError",
    "CheckpointError",
    "NonFiniteLossError",
    "OutputExistsError",
    "MatchError",
]


class FeatkitError(Exception):
    """Base class of the errors featkit reports to users as one line."""


class UnknownNameError(FeatkitError, LookupError):
    """A loss, encoder or layer name that is not registered."""


class DuplicateNameError(FeatkitError, ValueError):
    """A second registration under a name that is already taken."""


class SpecError(FeatkitError, ValueError):
    """A malformed loss spec such as ``"pl++sfl"`` or bad loss options."""


class ShapeError(FeatkitError, ValueError):
    """A tensor whose rank, shape, dtype or values do not fit the operation."""


class ImageError(FeatkitError):
    """A file that cannot be decoded as an image, with the reason."""


class ShardError(ImageError):
    """A WebDataset tar shard that is missing, unreadable or corrupt, or a bad shard pattern
    (an :class:`ImageError`, since shards are where images come from)."""


class CheckpointError(FeatkitError):
    """A run directory or weights file that is missing, corrupt or from another model."""


class NonFiniteLossError(FeatkitError):
    """A loss term became NaN or infinite during training."""


class OutputExistsError(FeatkitError, FileExistsError):
    """An output already exists and featkit will not overwrite it silently."""


class MatchError(FeatkitError, ValueError):
    """Images or options that ``featkit match`` cannot use (e.g. sizes far apart, a bad homography file)."""


class FeatkitWarning(UserWarning):
    """Something went wrong but featkit recovered (e.g. resumed from the previous checkpoint);
    the CLI prints it as one ``warning:`` line."""
