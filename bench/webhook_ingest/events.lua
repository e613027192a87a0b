-- wrk script: POST pre-signed, distinct Stripe events, one per request.
-- The file (PAYDESK_BENCH_EVENTS) holds one "signature<TAB>body" per line; thread k of n takes
-- lines k, k+n, k+2n... so no event is sent twice. Running out is reported, not hidden.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  events = {}
  local i = 0
  for line in io.lines(os.getenv("PAYDESK_BENCH_EVENTS")) do
    if i % tonumber(os.getenv("PAYDESK_BENCH_THREADS")) == index then
      local tab = line:find("\t", 1, true)
      table.insert(events, {line:sub(1, tab - 1), line:sub(tab + 1)})
    end
    i = i + 1
  end
  position = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #events then
    position = 1
    wrapped = wrapped + 1
  end
  local event = events[position]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Stripe-Signature"] = event[1],
  }, event[2])
end

function done(summary, latency, requests)
  local total_wrapped = 0
  for _, thread in ipairs(threads) do
    total_wrapped = total_wrapped + thread:get("wrapped")
  end
  io.write(string.format("WRAPPED %d\n", total_wrapped))
  io.write(string.format("NON2XX %d\n", summary.errors.status))
end
