"""Member and cluster IDs exactly as etcd 3.5 derives them, and etcd's hex formatting.

* member ID (``membership.computeMemberId``): SHA-1 over the member's peer URLs, sorted and
  concatenated with no separator, followed by the cluster token and, for members added at
  runtime, the decimal Unix time in seconds; the ID is the first 8 digest bytes, big-endian.
* cluster ID (``RaftCluster.genID``): SHA-1 over the member IDs sorted numerically, each as
  8 big-endian bytes; again the first 8 digest bytes, big-endian.

Peer URLs must be in canonical form (``scheme://host:port``, what
:func:`petcd.goflag.parse_url` returns); the hash is over those exact strings.
IDs print as lower-case hex without leading zeros (Go ``%x`` / ``types.ID.String``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from petcd import errors

__all__ = [
    "cluster_id",
    "format_id",
    "initial_member_ids",
    "member_id",
    "parse_id",
]


def _first8(data: bytes) -> int:
    return int.from_bytes(hashlib.sha1(data).digest()[:8], "big")


def member_id(peer_urls: Iterable[str], cluster_token: str, now: int | None = None) -> int:
    """etcd's member ID for ``peer_urls`` in the cluster named ``cluster_token``.

    ``now`` (Unix seconds) is given only for members added by MemberAdd at runtime.
    """
    data = "".join(sorted(peer_urls)) + cluster_token
    if now is not None:
        data += str(int(now))
    return _first8(data.encode())


def cluster_id(member_ids: Iterable[int]) -> int:
    """etcd's cluster ID for a cluster whose initial members have ``member_ids``."""
    return _first8(b"".join(i.to_bytes(8, "big") for i in sorted(member_ids)))


def initial_member_ids(cluster: Mapping[str, Iterable[str]], cluster_token: str) -> dict[str, int]:
    """{name: member ID} for an ``--initial-cluster`` map ({name: peer URLs}).

    Raises ValueError like etcd for two members hashing to one ID or an ID of 0.
    """
    out: dict[str, int] = {}
    seen: set[int] = set()
    for name, urls in cluster.items():
        mid = member_id(urls, cluster_token)
        if mid in seen:
            raise ValueError(errors.MEMBER_ID_DUPLICATE.format(id=format_id(mid)))
        if mid == 0:
            raise ValueError(errors.MEMBER_ID_ZERO)
        seen.add(mid)
        out[name] = mid
    return out


def format_id(value: int) -> str:
    """Lower-case hex, no leading zeros, as etcd prints IDs (``8e9e05c52164694d``)."""
    return format(value, "x")


def parse_id(text: str) -> int:
    """Parse a hex ID as etcd's ``types.IDFromString``; ValueError if not 64-bit hex."""
    if not text or text.startswith(("+", "-")) or text.lower().startswith("0x"):
        raise ValueError(errors.PARSE_UINT_SYNTAX.format(text=text))
    try:
        value = int(text, 16)
    except ValueError:
        raise ValueError(errors.PARSE_UINT_SYNTAX.format(text=text)) from None
    if value >= 1 << 64:
        raise ValueError(errors.PARSE_UINT_RANGE.format(text=text))
    return value
