"""featkit: learn image features with frequency-aware convolutional autoencoders.

Public verbs (the CLI calls the same functions)::

    loss = featkit.create_loss("pl+sfl")          # eq. 7 of the paper
    model = featkit.create_encoder("paper-cae")    # Table 1
"""

from featkit.encoders import create_encoder, list_encoders, register_encoder
from featkit.errors import FeatkitError
from featkit.losses import create_loss, list_losses, register_loss

__version__ = "0.1.0"

__all__ = [
    "FeatkitError",
    "__version__",
    "create_encoder",
    "create_loss",
    "list_encoders",
    "list_losses",
    "register_encoder",
    "register_loss",
]
