-- CSV downloads back to back (closed loop): each connection asks for the next CSV once the last
-- has arrived, every other one gzipped. No response() hook, so wrk counts the bodies' bytes
-- without copying them into Lua.
--
-- Arguments (after `--`): the report ids downloaded in turn.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local tally = require("tally")

local requests, sent = {}, 0

function setup(thread)
    tally.keep(thread)
end

function init(args)
    for i = 1, #args do
        for _, encoding in ipairs({ "identity", "gzip" }) do
            local headers = { ["Accept-Encoding"] = encoding }
            for name, value in pairs(wrk.headers) do
                headers[name] = value
            end
            requests[#requests + 1] = wrk.format("GET", "/reports/" .. args[i] .. "/csv", headers)
        end
    end
end

function request()
    sent = sent + 1
    return requests[(sent + thread_index) % #requests + 1]
end

function done(summary)
    tally.print(tally.summary(summary))
end
