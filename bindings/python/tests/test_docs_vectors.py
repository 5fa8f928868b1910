import pytest

import dbx

from conftest import MONGO_URL, SQLITE_URL, unique


async def test_vectors_on_sqlite():
    async with await dbx.Dbx.connect(SQLITE_URL) as db:
        c = db.vectors.collection(unique("pyt_vec"))
        assert await c.create_if_missing(3, "cosine") is True
        assert await c.create_if_missing(3, "cosine") is False
        await c.upsert([
            {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"kind": "a", "n": 1}},
            {"id": 2, "vector": [0.0, 1.0, 0.0], "payload": {"kind": "b", "n": 2}},
            {"id": 3, "vector": [0.9, 0.1, 0.0], "payload": {"kind": "a", "n": 3}},
        ])
        assert await c.count() == 3
        hits = await c.search([1.0, 0.0, 0.0], 2)
        assert [h["id"] for h in hits] == [1, 3]
        assert hits[0]["payload"] == {"kind": "a", "n": 1}
        assert hits[0]["score"] >= hits[1]["score"]
        flt = {"must": [{"key": "kind", "match": {"value": "b"}}]}
        assert [h["id"] for h in await c.search([1.0, 0.0, 0.0], 5, filter=flt)] == [2]
        assert await c.count(flt) == 1
        [rec] = await c.get([3], with_vectors=True)
        assert rec["id"] == 3 and len(rec["vector"]) == 3
        await c.delete([1])
        assert await c.count() == 2
        with pytest.raises(dbx.InvalidInput):
            await c.upsert([{"id": -1, "vector": [1.0, 0.0, 0.0]}])
        with pytest.raises(dbx.DbxError):
            await c.upsert([{"id": 9, "vector": [1.0, 0.0]}])  # wrong dimension
        assert await c.drop() is True


@pytest.mark.skipif(not MONGO_URL, reason="DBX_TEST_MONGO_URL not set (scripts/test.sh sets it)")
async def test_docs_on_mongo():
    async with await dbx.Dbx.connect(MONGO_URL) as db:
        c = db.docs.collection(unique("pyt_docs"))
        try:
            id1 = await c.insert_one({"name": "Ada", "age": 36, "tags": ["math"]})
            assert id1 is not None
            ids = await c.insert_many([{"name": "Grace", "age": 45}, {"name": "Alan", "age": 41}])
            assert len(ids) == 2
            assert await c.count() == 3
            assert await c.count({"age": {"$gt": 40}}) == 2
            found = await c.find({"age": {"$gt": 40}}, sort={"age": 1})
            assert [d["name"] for d in found] == ["Alan", "Grace"]
            ada = await c.find_one({"name": "Ada"})
            assert ada["tags"] == ["math"]
            r = await c.update_one({"name": "Ada"}, {"$inc": {"age": 1}})
            assert r["matched"] == 1 and r["modified"] == 1
            assert (await c.find_one({"name": "Ada"}))["age"] == 37
            assert await c.delete_many({"age": {"$gt": 40}}) == 2
            assert await c.find_one({"name": "Nobody"}) is None
        finally:
            await c.drop()
