"""Base64 of text, as etcd's JSON gateway (grpc-gateway) carries keys and values."""

from __future__ import annotations

import base64


def b64(s: str) -> str:
    """`s` (UTF-8) as standard base64 text."""
    return base64.b64encode(s.encode()).decode()


def unb64(s: str) -> str:
    """The UTF-8 text that standard base64 `s` encodes."""
    return base64.b64decode(s).decode()
