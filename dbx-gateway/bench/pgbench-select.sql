\set id random(1, 10000)
SELECT id, name, score FROM dbx_bench_items WHERE id = :id;
