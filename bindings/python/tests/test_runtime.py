"""Cancellation, fork safety, the context manager and concurrency."""

import asyncio
import os
import signal

import pytest

import dbx
import dbx._native as native

from conftest import POSTGRES_URL, SQLITE_URL


async def wait_no_rust_futures():
    # Bounded: the aborted task is dropped on the runtime's next turn.
    for _ in range(200):
        if native._in_flight() == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{native._in_flight()} Rust futures still alive")


async def test_cancel_drops_the_rust_future(postgres):
    await wait_no_rust_futures()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(postgres.sql.query("SELECT pg_sleep(5)"), 0.2)
    # The Rust future was dropped, not left running to completion.
    await wait_no_rust_futures()
    # And the database is usable afterwards.
    assert await postgres.sql.query("SELECT 1 AS one") == [{"one": 1}]


async def test_cancel_a_task(postgres):
    task = asyncio.ensure_future(postgres.sql.query("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_no_rust_futures()
    assert await postgres.sql.execute("SELECT 1") >= 0


async def test_many_concurrent_queries(postgres):
    results = await asyncio.gather(*(postgres.sql.query("SELECT $1::bigint AS n", [i]) for i in range(50)))
    assert [r[0]["n"] for r in results] == list(range(50))


async def test_context_manager_closes():
    async with await dbx.Dbx.connect(SQLITE_URL) as db:
        assert db.backend == "sqlite"
        assert (await db.health())["backend"] == "sqlite"
    assert db.closed


async def child_main(parent_db) -> int:
    # The parent's handle fails clearly instead of hanging.
    try:
        await parent_db.sql.query("SELECT 1")
        return 10
    except dbx.Closed as e:
        if "fork" not in str(e):
            return 11
    # A new connection in the child works, on a runtime of its own.
    async with await dbx.Dbx.connect(POSTGRES_URL) as db:
        if await db.sql.query("SELECT 2 AS two") != [{"two": 2}]:
            return 12
    async with await dbx.Dbx.connect(SQLITE_URL) as db:
        if await db.sql.query("SELECT 3 AS three") != [{"three": 3}]:
            return 13
    return 0


def test_fork_gives_the_child_a_fresh_runtime():
    async def connect():
        db = await dbx.Dbx.connect(POSTGRES_URL)
        assert await db.sql.query("SELECT 1 AS one") == [{"one": 1}]
        return db

    db = asyncio.run(connect())
    pid = os.fork()
    if pid == 0:  # the child
        code = 20
        try:
            signal.alarm(30)  # a deadlock ends the child instead of the test run
            code = asyncio.run(child_main(db))
        finally:
            os._exit(code)
    status = None
    for _ in range(600):  # bounded wait for the child
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        asyncio.run(asyncio.sleep(0.1))
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the child process hung")
    assert os.WIFEXITED(status), f"child died: status {status}"
    assert os.WEXITSTATUS(status) == 0, f"child failed with code {os.WEXITSTATUS(status)}"

    async def parent_again():
        assert await db.sql.query("SELECT 4 AS four") == [{"four": 4}]
        await db.close()

    asyncio.run(parent_again())
