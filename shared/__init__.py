"""emostream: camera frames in, facial-emotion events out."""

__version__ = "0.1.0"
