-- wrk: a point select by a random id of 10000 (table dbx_bench_items,
-- loaded by run.sh) through the gateway. $SQL_DB names the database
-- (pg or lite); the bearer token is in $TOKEN.
local token = os.getenv("TOKEN")
local db = os.getenv("SQL_DB") or "pg"
local rows = tonumber(os.getenv("ROWS") or "10000")
local path = "/v1/db/" .. db .. "/sql/query"
local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}
local fmt = '{"sql":"SELECT id, name, score FROM dbx_bench_items WHERE id = $1","params":[%d]}'

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  return wrk.format("POST", path, headers, string.format(fmt, math.random(1, rows)))
end

function done(summary, latency, requests)
  io.write(string.format("non2xx=%d p50_us=%d p99_us=%d rps=%.0f requests=%d\n",
    summary.errors.status, latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests))
end
