"""The lessor on a real KVStore/LevelDB: apply-side state, persistence, attachments, and the
primary's expiry with an injected clock."""

from __future__ import annotations

import asyncio

import pytest
from lease_helpers import MIN_TTL, Node
from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.server.lessor import (
    LEASE_REVOKE_RATE,
    MAX_LEASE_TTL,
    NotPrimaryError,
    lease_key,
    min_lease_ttl,
)
from petcd.storage import buckets


def test_min_lease_ttl_as_etcd() -> None:
    # etcd defaults: 10 election ticks of 100ms -> 15 heartbeats = 1.5s -> 2s.
    assert min_lease_ttl(10, 100) == 2
    assert min_lease_ttl(10, 1000) == 15
    assert min_lease_ttl(5, 100) == 1  # (3*5)//2 = 7 ticks = 0.7s -> 1s


# -- grant / persistence ---------------------------------------------------------------------


def test_grant_persists_with_consistent_index(node: Node) -> None:
    assert node.grant(7, 30) == 30
    assert node.grant(8, 1) == MIN_TTL  # shorter than the minimum: raised to it
    assert node.store.consistent_index == node.index
    assert node.backend.get(buckets.LEASE, lease_key(7)) is not None
    reopened = node.reopen()
    try:
        assert reopened.store.consistent_index == node.index
        assert {ls.id: ls.ttl for ls in reopened.lessor.sorted_leases()} == {7: 30, 8: MIN_TTL}
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("lease_id", "ttl", "err"),
    [(0, 10, errors.LEASE_NOT_FOUND), (5, MAX_LEASE_TTL + 1, errors.LEASE_TTL_TOO_LARGE)],
)
def test_grant_refused(node: Node, lease_id: int, ttl: int, err: errors.EtcdError) -> None:
    with pytest.raises(errors.EtcdError) as exc:
        node.grant(lease_id, ttl)
    assert exc.value is err
    assert node.store.consistent_index == node.index  # the entry still counts as applied
    assert not node.lessor.leases


def test_grant_existing_id_refused(node: Node) -> None:
    node.grant(5, 10)
    with pytest.raises(errors.EtcdError) as exc:
        node.grant(5, 20)
    assert exc.value is errors.LEASE_EXIST
    assert node.lessor.leases[5].ttl == 10
    assert node.grant(6, MAX_LEASE_TTL) == MAX_LEASE_TTL


# -- attachments -----------------------------------------------------------------------------


def test_put_attaches_and_moves_between_leases(node: Node) -> None:
    node.grant(1, 10)
    node.grant(2, 10)
    node.put(b"a", lease=1)
    node.put(b"b", lease=1)
    assert node.lessor.leases[1].keys == {b"a", b"b"}
    node.put(b"a", lease=2)  # moves a to lease 2
    node.put(b"b")  # no lease: detached
    assert node.lessor.leases[1].keys == set()
    assert node.lessor.leases[2].keys == {b"a"}
    assert node.lessor.item_map == {b"a": 2}


def test_ignore_lease_keeps_the_lease(node: Node) -> None:
    node.grant(1, 10)
    node.put(b"a", lease=1)
    node.put(b"a", value=b"v2", ignore_lease=True)
    kv = node.store.get(b"a")
    assert kv is not None and kv.lease == 1 and kv.value == b"v2"
    assert node.lessor.leases[1].keys == {b"a"}


def test_delete_detaches(node: Node) -> None:
    node.grant(1, 10)
    for k in (b"a", b"b", b"c"):
        node.put(k, lease=1)
    node.delete(b"a", b"c")
    assert node.lessor.leases[1].keys == {b"c"}


def test_put_with_unknown_lease_refused(node: Node) -> None:
    rev = node.store.rev
    with pytest.raises(errors.EtcdError) as exc:
        node.put(b"a", lease=99)
    assert exc.value is errors.LEASE_NOT_FOUND
    assert node.store.rev == rev and node.store.get(b"a") is None


def test_attachments_rebuilt_on_open(node: Node) -> None:
    node.grant(1, 10)
    node.grant(2, 10)
    node.put(b"a", lease=1)
    node.put(b"b", lease=2)
    node.put(b"c", lease=1)
    node.delete(b"c")
    reopened = node.reopen()
    try:
        assert reopened.lessor.leases[1].keys == {b"a"}
        assert reopened.lessor.leases[2].keys == {b"b"}
        assert reopened.lessor.item_map == {b"a": 1, b"b": 2}
    finally:
        reopened.close()


# -- revoke ----------------------------------------------------------------------------------


def test_revoke_deletes_keys_in_one_revision(node: Node) -> None:
    node.grant(1, 10)
    for k in (b"c", b"a", b"b"):
        node.put(k, lease=1)
    node.put(b"other")
    before = node.store.rev
    seen: list[tuple[list[bytes], int]] = []
    node.lessor.commit = lambda changes, rev: seen.append(([e.kv.key for e in changes], rev))
    rev = node.revoke(1)
    assert rev == before + 1
    assert seen == [([b"a", b"b", b"c"], rev)]  # sorted: the same history on every member
    for k in (b"a", b"b", b"c"):
        assert node.store.get(k) is None
    assert node.store.get(b"other") is not None
    assert 1 not in node.lessor.leases and node.lessor.item_map == {}
    assert node.backend.get(buckets.LEASE, lease_key(1)) is None
    assert node.store.consistent_index == node.index


def test_revoke_without_keys_keeps_revision(node: Node) -> None:
    node.grant(1, 10)
    rev = node.store.rev
    assert node.revoke(1) == rev
    assert node.store.consistent_index == node.index


def test_revoke_unknown(node: Node) -> None:
    with pytest.raises(errors.EtcdError) as exc:
        node.revoke(42)
    assert exc.value is errors.LEASE_NOT_FOUND
    assert node.store.consistent_index == node.index


def test_revoke_survives_reopen(node: Node) -> None:
    node.grant(1, 10)
    node.put(b"a", lease=1)
    node.revoke(1)
    reopened = node.reopen()
    try:
        assert not reopened.lessor.leases
        assert reopened.store.get(b"a") is None
    finally:
        reopened.close()


# -- primary: expiry, renew, promote, demote ---------------------------------------------------


def test_follower_never_expires(node: Node) -> None:
    node.grant(1, 5)
    node.clock.advance(1e6)
    assert node.lessor.find_expired() == []
    assert node.lessor.remaining(node.lessor.leases[1]) == float("inf")


def test_expiry_on_primary(node: Node) -> None:
    node.lessor.promote(0.0)
    node.grant(1, 5)
    node.grant(2, 10)
    node.clock.advance(4.9)
    assert node.lessor.find_expired() == []
    assert int(node.lessor.remaining(node.lessor.leases[2])) == 5
    node.clock.advance(0.2)
    assert node.lessor.find_expired() == [1]
    # asked once; asked again only after the retry interval (the revoke may have been lost)
    assert node.lessor.find_expired() == []
    node.clock.advance(7.0)
    assert sorted(node.lessor.find_expired()) == [1, 2]
    node.revoke(1)
    node.revoke(2)
    node.clock.advance(100)
    assert node.lessor.find_expired() == []


def test_find_expired_limit(node: Node) -> None:
    node.lessor.promote(0.0)
    for i in range(1, 11):
        node.grant(i, 3)
    node.clock.advance(3)
    first = node.lessor.find_expired(limit=4)
    rest = node.lessor.find_expired(limit=100)
    assert len(first) == 4 and sorted(first + rest) == list(range(1, 11))


def test_promote_extends_by_election_timeout(node: Node) -> None:
    node.grant(1, 5)
    node.clock.advance(100)  # not primary: time passing means nothing
    node.lessor.promote(1.0)
    node.clock.advance(5.5)
    assert node.lessor.find_expired() == []
    node.clock.advance(0.5)
    assert node.lessor.find_expired() == [1]


def test_demote_stops_expiry_and_repromote_restarts_ttl(node: Node) -> None:
    node.lessor.promote(0.0)
    node.grant(1, 5)
    node.clock.advance(4)
    node.lessor.demote()
    node.clock.advance(10)
    assert node.lessor.find_expired() == []
    node.lessor.promote(0.0)
    node.clock.advance(4.9)
    assert node.lessor.find_expired() == []
    node.clock.advance(0.1)
    assert node.lessor.find_expired() == [1]


def test_promote_spreads_a_pile_of_expiries(node: Node) -> None:
    n = LEASE_REVOKE_RATE + 500
    for i in range(1, n + 1):
        node.grant(i, 10)
    node.lessor.promote(0.0)
    expiries = sorted(ls.expiry - node.clock() for ls in node.lessor.leases.values())
    per_second: dict[int, int] = {}
    for e in expiries:
        per_second[int(e)] = per_second.get(int(e), 0) + 1
    assert max(per_second.values()) <= (3 * LEASE_REVOKE_RATE) // 4 + 1
    assert expiries[0] == pytest.approx(10.0)


def test_checkpointed_remaining_ttl_used_on_promote(node: Node) -> None:
    node.grant(1, 100)
    node.lessor.checkpoint([(1, 20), (999, 5)], node.next_index(), 1)
    reopened = node.reopen()
    try:
        assert reopened.lessor.leases[1].remaining_ttl == 20
        reopened.lessor.promote(0.0)
        reopened.clock.advance(20)
        assert reopened.lessor.find_expired() == [1]
    finally:
        reopened.close()


def test_renew(node: Node) -> None:
    async def main(node: Node) -> None:
        with pytest.raises(NotPrimaryError):
            await node.lessor.renew(1)
        node.lessor.promote(0.0)
        node.grant(1, 5)
        with pytest.raises(errors.EtcdError) as exc:
            await node.lessor.renew(2)
        assert exc.value is errors.LEASE_NOT_FOUND
        node.clock.advance(4)
        assert await node.lessor.renew(1) == 5
        node.clock.advance(4)
        assert node.lessor.find_expired() == []  # renewed at t+4: expires at t+9
        node.clock.advance(1)
        assert node.lessor.find_expired() == [1]

        # An expired lease: renew waits for the revoke, then reports it gone.
        waiting = asyncio.ensure_future(node.lessor.renew(1))
        await asyncio.sleep(0)
        assert not waiting.done()
        node.revoke(1)
        with pytest.raises(errors.EtcdError) as exc:
            await waiting
        assert exc.value is errors.LEASE_NOT_FOUND

        # ... or for a demotion, after which the new leader is to be asked.
        node.grant(2, 5)
        node.clock.advance(6)
        waiting = asyncio.ensure_future(node.lessor.renew(2))
        await asyncio.sleep(0)
        node.lessor.demote()
        with pytest.raises(NotPrimaryError):
            await waiting

    asyncio.run(main(node))


def test_sorted_leases_soonest_first(node: Node) -> None:
    node.lessor.promote(0.0)
    node.grant(3, 30)
    node.grant(1, 10)
    node.grant(2, 20)
    assert [ls.id for ls in node.lessor.sorted_leases()] == [1, 2, 3]


def test_txn_put_with_lease(node: Node) -> None:
    node.grant(1, 10)
    ops = [
        pb.RequestOp(request_put=pb.PutRequest(key=b"x", value=b"1", lease=1)),
        pb.RequestOp(request_put=pb.PutRequest(key=b"y", value=b"2", lease=1)),
    ]
    node.txn(ops)
    assert node.lessor.leases[1].keys == {b"x", b"y"}
    with pytest.raises(errors.EtcdError) as exc:
        node.txn([pb.RequestOp(request_put=pb.PutRequest(key=b"z", value=b"1", lease=2))])
    assert exc.value is errors.LEASE_NOT_FOUND
