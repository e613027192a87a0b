-- wrk script of bench/api: counts answers other than 200 and prints every answer's
-- Server-Timing app and cpu (milliseconds) as "TIMING app 1.23" lines once the run is done.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  app = {}
  cpu = {}
end

function response(status, headers, body)
  if status ~= 200 then
    non2xx = non2xx + 1
  end
  local timing = headers["Server-Timing"]
  if timing then
    app[#app + 1] = tonumber(timing:match("app;dur=([%d.]+)"))
    cpu[#cpu + 1] = tonumber(timing:match("cpu;dur=([%d.]+)"))
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    for _, value in ipairs(thread:get("app")) do
      io.write(string.format("TIMING app %.2f\n", value))
    end
    for _, value in ipairs(thread:get("cpu")) do
      io.write(string.format("TIMING cpu %.2f\n", value))
    end
  end
  io.write(string.format("NON2XX %d\n", failed))
end
