import datetime as dt
import decimal
import uuid

import pytest

import dbx

from conftest import unique

INJECTIONS = [
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE students;--",
    "$1",
    "\" OR 1=1 --",
    "\\'; SELECT pg_sleep(10); --",
    "ünïcødé ✓ 'quoted' \"double\"",
]


async def test_round_trip_every_type_postgres(postgres):
    t = unique("pyt_types")
    await postgres.sql.execute(
        f"CREATE TABLE {t} (i BIGINT, f DOUBLE PRECISION, s TEXT, b BYTEA, o BOOLEAN,"
        " t TIMESTAMPTZ, d DATE, n NUMERIC(30,4), u UUID, j JSONB, l JSONB, z TEXT)"
    )
    when = dt.datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    values = [
        -(2**63), 1.5, "héllo", b"\x00\xff\x10", True, when, dt.date(2024, 2, 29),
        decimal.Decimal("-12345678901234567890.1234"), uuid.uuid4(),
        {"a": [1, 2.5, None, "x"], "b": {"c": True}}, [1, "two", {"three": 3}], None,
    ]
    affected = await postgres.sql.execute(
        f"INSERT INTO {t} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)", values
    )
    assert affected == 1
    [row] = await postgres.sql.query(f"SELECT * FROM {t}")
    assert row["i"] == -(2**63) and type(row["i"]) is int
    assert row["f"] == 1.5 and type(row["f"]) is float
    assert row["s"] == "héllo"
    assert row["b"] == b"\x00\xff\x10" and type(row["b"]) is bytes
    assert row["o"] is True
    assert row["t"] == when and row["t"].tzinfo is not None
    assert row["t"].utcoffset() == dt.timedelta(0)
    # dbx has no date value: DATE columns read back as ISO text.
    assert row["d"] == "2024-02-29"
    assert row["n"] == decimal.Decimal("-12345678901234567890.1234")
    assert isinstance(row["n"], decimal.Decimal)
    assert row["u"] == values[8] and isinstance(row["u"], uuid.UUID)
    assert row["j"] == values[9]
    assert row["l"] == values[10]
    assert row["z"] is None
    await postgres.sql.execute(f"DROP TABLE {t}")


async def test_round_trip_every_type_sqlite(sqlite):
    t = unique("pyt_types")
    await sqlite.sql.execute(
        f"CREATE TABLE {t} (i INTEGER, f REAL, s TEXT, b BLOB, o BOOLEAN, t TIMESTAMP,"
        " u UUID, j JSON, z TEXT)"
    )
    when = dt.datetime(2001, 9, 9, 1, 46, 40, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    values = [2**63 - 1, -0.25, "multi\nline", b"\x00bin", False, when, uuid.uuid4(), {"k": [1, {"n": None}]}, None]
    assert await sqlite.sql.execute(f"INSERT INTO {t} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", values) == 1
    [row] = await sqlite.sql.query(f"SELECT * FROM {t}")
    assert row == {
        "i": 2**63 - 1, "f": -0.25, "s": "multi\nline", "b": b"\x00bin", "o": False,
        "t": when, "u": values[6], "j": values[7], "z": None,
    }
    assert row["t"].tzinfo is not None


async def test_naive_datetime_is_taken_as_utc(postgres):
    [row] = await postgres.sql.query("SELECT $1::timestamptz AS t", [dt.datetime(2020, 1, 2, 3, 4, 5)])
    assert row["t"] == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


async def test_injection_strings_are_stored_verbatim(sql_db):
    t = unique("pyt_inj")
    await sql_db.sql.execute(f"CREATE TABLE {t} (id BIGINT, s TEXT)")
    try:
        for i, s in enumerate(INJECTIONS):
            assert await sql_db.sql.execute(f"INSERT INTO {t} (id, s) VALUES ($1, $2)", (i, s)) == 1
        rows = await sql_db.sql.query(f"SELECT id, s FROM {t} ORDER BY id")
        assert [r["s"] for r in rows] == INJECTIONS
        # Bound in a WHERE clause too: matches exactly one row, never all.
        hit = await sql_db.sql.query(f"SELECT id FROM {t} WHERE s = $1", [INJECTIONS[3]])
        assert hit == [{"id": 3}]
    finally:
        await sql_db.sql.execute(f"DROP TABLE {t}")


async def test_execute_counts_rows(sql_db):
    t = unique("pyt_count")
    await sql_db.sql.execute(f"CREATE TABLE {t} (id BIGINT)")
    try:
        for i in range(5):
            await sql_db.sql.execute(f"INSERT INTO {t} VALUES ($1)", [i])
        assert await sql_db.sql.execute(f"UPDATE {t} SET id = id + 10 WHERE id >= $1", [2]) == 3
        assert await sql_db.sql.execute(f"DELETE FROM {t}") == 5
        assert await sql_db.sql.query(f"SELECT * FROM {t}") == []
    finally:
        await sql_db.sql.execute(f"DROP TABLE {t}")


async def test_execute_script(sqlite):
    await sqlite.sql.execute_script("CREATE TABLE s1 (a INTEGER); INSERT INTO s1 VALUES (7); INSERT INTO s1 VALUES (8)")
    assert await sqlite.sql.query("SELECT sum(a) AS total FROM s1") == [{"total": 15}]


async def test_sql_errors(sql_db):
    with pytest.raises(dbx.QueryError) as e:
        await sql_db.sql.query("SELEKT nonsense")
    assert e.value.kind == "query" and isinstance(e.value, dbx.DbxError)
    assert e.value.transient is False
    with pytest.raises(dbx.InvalidInput):
        await sql_db.sql.query("SELECT $1", [object()])
    with pytest.raises(dbx.OutOfRange):
        await sql_db.sql.query("SELECT $1", [2**64])
    with pytest.raises(dbx.InvalidInput):
        await sql_db.sql.query("SELECT $1", "not a list")
    with pytest.raises(dbx.InvalidInput):
        await sql_db.sql.query("SELECT $1", [decimal.Decimal("NaN")])
    with pytest.raises(dbx.InvalidInput):
        await sql_db.sql.query("SELECT $1", [{1: "non-str key"}])


async def test_unique_violation_is_conflict(postgres):
    t = unique("pyt_uniq")
    await postgres.sql.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY)")
    await postgres.sql.execute(f"INSERT INTO {t} VALUES (1)")
    with pytest.raises(dbx.Conflict) as e:
        await postgres.sql.execute(f"INSERT INTO {t} VALUES (1)")
    assert e.value.code == "23505" and e.value.backend == "postgresql"
    await postgres.sql.execute(f"DROP TABLE {t}")
