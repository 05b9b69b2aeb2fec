"""hello: the simplest app possible."""

__version__ = "0.1.0"
