"""featkit's version, written into every run, features file and index it produces."""

__version__ = "0.1.0"
