"""soundkeep: a preservation archive for recorded music."""

__version__ = "0.1.0"
