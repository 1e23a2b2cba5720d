-- wrk: POST a JSON signup with an address no other request uses.
local thread_id = 0
local counter = 0
local path = "/api/subscribe"

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

function init(args)
  path = args[1] or path
  math.randomseed(os.time() + (tid or 0))
  run = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  local body = string.format('{"email": "b%d.%d.%d@example.com", "consent": true}', run, tid or 0, counter)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
