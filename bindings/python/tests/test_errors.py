import pytest

import dbx

from conftest import unique


async def test_bad_url_is_invalid_config():
    with pytest.raises(dbx.InvalidConfig) as e:
        await dbx.Dbx.connect("nosuchscheme://x")
    assert e.value.kind == "invalid_config"
    assert "nosuchscheme" in str(e.value)
    with pytest.raises(dbx.InvalidConfig):
        await dbx.Dbx.connect("postgres://postgres@127.0.0.1:5432/postgres?pool_max_size=banana")


async def test_bad_option_is_invalid_input():
    with pytest.raises(dbx.InvalidInput):
        await dbx.Dbx.connect("sqlite::memory:", timeout=-1)
    with pytest.raises(dbx.InvalidInput):
        await dbx.Dbx.connect("sqlite::memory:", timeout="soon")


async def test_unreachable_server_fails_with_connect_error():
    # Port 1 on loopback: nothing listens, the connection is refused.
    with pytest.raises(dbx.DbxError) as e:
        await dbx.Dbx.connect("postgres://postgres@127.0.0.1:1/postgres", connect_timeout=0.5, timeout=1)
    assert isinstance(e.value, (dbx.ConnectError, dbx.Timeout))
    assert e.value.kind in ("connect", "timeout")
    with pytest.raises((dbx.ConnectError, dbx.Timeout)):
        await dbx.Dbx.connect("redis://127.0.0.1:1", connect_timeout=0.5, timeout=1)


async def test_missing_capability_is_unsupported(sqlite, redis):
    with pytest.raises(dbx.Unsupported) as e:
        sqlite.docs
    assert e.value.kind == "unsupported"
    with pytest.raises(dbx.Unsupported):
        redis.sql


async def test_wrong_type(kv_db):
    key = unique("pyt:wrongtype")
    await kv_db.kv.set(key, b"not a number")
    try:
        with pytest.raises(dbx.WrongType) as e:
            await kv_db.kv.incr(key)
        assert e.value.kind == "wrong_type"
    finally:
        await kv_db.kv.delete(key)


async def test_closed_database(tmp_path):
    db = await dbx.Dbx.connect(f"sqlite:{tmp_path}/c.db")
    assert await db.close() is True
    assert db.closed
    with pytest.raises(dbx.Closed):
        await db.sql.query("SELECT 1")


def test_every_kind_has_a_class():
    names = ["InvalidConfig", "InvalidInput", "Unsupported", "ConnectError", "AuthError",
             "Timeout", "PoolTimeout", "CircuitOpen", "NotFound", "QueryError", "Conflict",
             "WrongType", "OutOfRange", "DecodeError", "Closed", "OtherError"]
    for n in names:
        assert issubclass(getattr(dbx, n), dbx.DbxError)
