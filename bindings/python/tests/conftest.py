"""Servers the tests talk to: SQLite in memory, Redis and PostgreSQL on
loopback (DBX_TEST_REDIS_URL / DBX_TEST_POSTGRES_URL override), MongoDB
when DBX_TEST_MONGO_URL is set (scripts/test.sh sets it)."""

import os
import uuid

import pytest

import dbx

SQLITE_URL = "sqlite::memory:"
REDIS_URL = os.environ.get("DBX_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_URL = os.environ.get("DBX_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
MONGO_URL = os.environ.get("DBX_TEST_MONGO_URL")


def unique(prefix: str) -> str:
    """A name no other test run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def sqlite():
    async with await dbx.Dbx.connect(SQLITE_URL) as db:
        yield db


@pytest.fixture
async def postgres():
    async with await dbx.Dbx.connect(POSTGRES_URL) as db:
        yield db


@pytest.fixture
async def redis():
    async with await dbx.Dbx.connect(REDIS_URL) as db:
        yield db


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_db(request):
    url = SQLITE_URL if request.param == "sqlite" else POSTGRES_URL
    async with await dbx.Dbx.connect(url) as db:
        yield db


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def kv_db(request):
    url = {"sqlite": SQLITE_URL, "postgres": POSTGRES_URL, "redis": REDIS_URL}[request.param]
    async with await dbx.Dbx.connect(url) as db:
        yield db
