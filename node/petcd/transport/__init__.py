"""Peer transport over ``--listen-peer-urls``: Raft messages plus a small HTTP responder.

Public API: :class:`PeerTransport`, :func:`fetch_members`, :class:`MembersError`.
"""

from petcd.transport.http import MemberInfo, MembersError, fetch_members
from petcd.transport.transport import PeerTransport

__all__ = ["MemberInfo", "MembersError", "PeerTransport", "fetch_members"]
