import asyncio
import datetime as dt

import pytest

import dbx

from conftest import unique


async def test_get_set_delete_incr_scan(kv_db):
    p = unique("pyt:kv") + ":"
    kv = kv_db.kv
    assert await kv.get(p + "missing") is None
    await kv.set(p + "a", b"\x00\x01binary")
    await kv.set(p + "b", "text ✓")
    assert await kv.get(p + "a") == b"\x00\x01binary"
    assert await kv.get(p + "b") == "text ✓".encode()
    assert await kv.exists(p + "a") is True
    assert await kv.incr(p + "n") == 1
    assert await kv.incr(p + "n", 41) == 42
    assert await kv.incr(p + "n", -2) == 40
    assert await kv.scan(p) == [p + "a", p + "b", p + "n"]
    assert await kv.delete(p + "a") is True
    assert await kv.delete(p + "a") is False
    assert await kv.scan(p) == [p + "b", p + "n"]
    for k in (p + "b", p + "n"):
        await kv.delete(k)
    assert await kv.scan(p) == []


async def test_ttl_expires(kv_db):
    p = unique("pyt:ttl") + ":"
    kv = kv_db.kv
    await kv.set(p + "short", b"v", ttl=0.3)
    await kv.set(p + "long", b"v", ttl=dt.timedelta(minutes=5))
    await kv.set(p + "forever", b"v")
    assert await kv.get(p + "short") == b"v"
    # Bounded wait for the expiry (no timing assertion: only that it happens).
    for _ in range(100):
        if await kv.get(p + "short") is None:
            break
        await asyncio.sleep(0.1)
    assert await kv.get(p + "short") is None
    assert await kv.get(p + "long") == b"v"
    assert await kv.expire(p + "forever", 0.2) is True
    for _ in range(100):
        if await kv.get(p + "forever") is None:
            break
        await asyncio.sleep(0.1)
    assert await kv.get(p + "forever") is None
    assert await kv.expire(p + "nothing", 10) is False
    await kv.delete(p + "long")


async def test_bad_kv_input(kv_db):
    with pytest.raises(dbx.InvalidInput):
        await kv_db.kv.set("pyt:bad", b"v", ttl=0)
    with pytest.raises(dbx.InvalidInput):
        await kv_db.kv.set("pyt:bad", 12)
    with pytest.raises(dbx.InvalidInput):
        await kv_db.kv.get("")
