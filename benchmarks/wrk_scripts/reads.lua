-- Status reads at a fixed rate, open loop (as wrk2 does; Debian packages only wrk): run with as
-- many threads as connections, so each connection is a thread of its own with its own schedule,
-- a read every `connections / rate` seconds. A read's latency counts from when it was due, not
-- from when it was sent: a connection held up by a slow answer sends its next reads late, and
-- that wait counts (no coordinated omission). wrk's own figures count from the send.
--
-- Arguments (after `--`): reads a second in all, connections, then the report ids read in turn.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local tally = require("tally")

local interval, first_offset, paths
local next_due, sent_due
latencies_ms, statuses = {}, {}

function setup(thread)
    tally.keep(thread)
end

function init(args)
    local rate, connections = tonumber(args[1]), tonumber(args[2])
    interval = connections / rate
    first_offset = thread_index / rate -- the connections' reads interleave evenly
    paths = {}
    for i = 3, #args do
        paths[#paths + 1] = wrk.format("GET", "/reports/" .. args[i])
    end
end

function delay()
    local now = tally.now()
    next_due = next_due or now + first_offset
    return math.max(0, (next_due - now) * 1000)
end

function request()
    if next_due == nil then
        return paths[1] -- wrk's check of the script, before any connection
    end
    sent_due, next_due = next_due, next_due + interval
    return paths[math.floor(sent_due / interval) % #paths + 1]
end

function response(status)
    latencies_ms[#latencies_ms + 1] = (tally.now() - sent_due) * 1000
    tally.count(statuses, tostring(status))
end

function done(summary, latency)
    local result = tally.summary(summary)
    result.statuses = tally.sum("statuses")
    result.latency_ms = tally.percentiles(tally.concat("latencies_ms"), { p50 = 50, p99 = 99, max = 100 })
    result.latency_from_send_ms = {
        p50 = latency:percentile(50) / 1000,
        p99 = latency:percentile(99) / 1000,
        max = latency.max / 1000,
    }
    tally.print(result)
end
