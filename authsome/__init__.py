"""authsome: a local credential gateway for AI agents."""

__version__ = "0.1.0"
