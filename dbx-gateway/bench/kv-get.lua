-- wrk: GET a random key of 1000 (bench:kv:1..1000, loaded by run.sh) from
-- the Redis database through the gateway, with the bearer token in $TOKEN.
local token = os.getenv("TOKEN")
local prefix = os.getenv("KV_DB") or "red"
local paths = {}
for i = 1, 1000 do
  paths[i] = "/v1/db/" .. prefix .. "/kv/bench:kv:" .. i
end
local headers = { ["Authorization"] = "Bearer " .. token }

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  return wrk.format("GET", paths[math.random(1, 1000)], headers)
end

function done(summary, latency, requests)
  io.write(string.format("non2xx=%d p50_us=%d p99_us=%d rps=%.0f requests=%d\n",
    summary.errors.status, latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests))
end
