-- wrk: POST a JSON signup with an address and a client address no other request uses (or,
-- with "GET" as the second argument, GET the path); count every answer that is not 2xx
-- (wrk's own count lets 3xx through) and print the total as "Not 2xx: N".
-- Every RECONNECT-th request of a connection asks the server to close it afterwards and wrk
-- connects anew: gunicorn's first worker to wake accepts all of a round's connections at
-- once, and kept for the whole round they would leave the other worker idle in some rounds
-- and not in others (validate-only swung 887 to 2,722 rps between rounds). Both sides of
-- the ratio pay the same reconnects.
local RECONNECT = 25
local thread_id = 0
local counter = 0
local path = "/api/subscribe"
local method = "POST"
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or path
  method = args[2] or method
  not2xx = 0
  math.randomseed(os.time() + (tid or 0))
  run = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  -- Each request from its own client, as a trusted proxy reports it (TRUSTED_PROXIES=1):
  -- the per-IP limits are read and counted as in production, and none is reached.
  local headers = {
    ["X-Forwarded-For"] = string.format(
      "10.%d.%d.%d", tid or 0, math.floor(counter / 256) % 256, counter % 256)
  }
  if counter % RECONNECT == 0 then
    headers["Connection"] = "close"
  end
  if method == "GET" then
    return wrk.format("GET", path, headers)
  end
  headers["Content-Type"] = "application/json"
  local body = string.format('{"email": "b%d.%d.%d@example.com", "consent": true}', run, tid or 0, counter)
  return wrk.format("POST", path, headers, body)
end

response = function(status, headers, body)
  if status < 200 or status > 299 then
    not2xx = not2xx + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("not2xx")
  end
  io.write(string.format("Not 2xx: %d\n", total))
end
