"""athkit: the Agent Trust Handshake (ATH 0.1) for Python."""

__version__ = "0.1.0"
