-- One request per connection, all at once (a burst): each connection sends wrk's request once.
-- A thread whose connections are all answered stops and prints `finished`: the benchmark then
-- interrupts wrk, which otherwise waits out its whole duration. Records when the first
-- request left, when the last answer arrived, the answers by status, and one 202's report id.
--
-- Arguments (after `--`): connections per thread, the method, the path.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local tally = require("tally")

local NEVER_MS = 3600 * 1000
local per_thread, delays, answered = 0, 0, 0
statuses = {}

function setup(thread)
    tally.keep(thread)
end

function init(args)
    per_thread = tonumber(args[1])
    wrk.method, wrk.path = args[2], args[3]
end

-- Asked before each request: the first of each connection goes at once, later ones never.
function delay()
    delays = delays + 1
    if delays > per_thread then
        return NEVER_MS
    end
    first_sent = first_sent or tally.now()
    return 0
end

function response(status, headers, body)
    last_answered = tally.now()
    tally.count(statuses, tostring(status))
    if status == 202 and accepted == nil then
        accepted = body:match('"report_id"%s*:%s*"([^"]+)"')
    end
    answered = answered + 1
    if answered >= per_thread then
        wrk.thread:stop()
        io.write("finished\n")
        io.stdout:flush()
    end
end

function done(summary)
    local result = tally.summary(summary)
    result.statuses = tally.sum("statuses")
    local first, last = tally.extreme("first_sent"), tally.extreme("last_answered", true)
    result.all_answered_seconds = last and first and last - first
    for _, thread in ipairs(tally.threads) do
        result.accepted = result.accepted or thread:get("accepted")
    end
    tally.print(result)
end
