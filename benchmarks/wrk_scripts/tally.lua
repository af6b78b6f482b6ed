-- Shared by the benchmark's wrk scripts: a monotonic clock, each thread's tallies gathered in
-- done(), and the JSON line the benchmark reads. wrk copies a thread's globals to done() only
-- as flat tables (a nested one crashes it), so each tally is a global of its own.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } tally_timespec;
int clock_gettime(int clock_id, tally_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("tally_timespec")

local tally = { threads = {} }

--- Seconds on the system's monotonic clock: comparable between wrk's threads.
function tally.now()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

--- For setup(thread): keeps the thread for done(), and tells it its index (0, 1, ...).
function tally.keep(thread)
    thread:set("thread_index", #tally.threads)
    table.insert(tally.threads, thread)
end

function tally.count(counts, key)
    counts[key] = (counts[key] or 0) + 1
end

--- Every thread's list `name`, in one list.
function tally.concat(name)
    local all = {}
    for _, thread in ipairs(tally.threads) do
        for _, value in ipairs(thread:get(name) or {}) do
            all[#all + 1] = value
        end
    end
    return all
end

--- Every thread's counts `name` (a table of numbers by key), summed by key.
function tally.sum(name)
    local all = {}
    for _, thread in ipairs(tally.threads) do
        for key, value in pairs(thread:get(name) or {}) do
            all[key] = (all[key] or 0) + value
        end
    end
    return all
end

--- The least (or with `most`, the greatest) of every thread's number `name`; nil if none set it.
function tally.extreme(name, most)
    local found
    for _, thread in ipairs(tally.threads) do
        local value = thread:get(name)
        if value ~= nil and (found == nil or (most and value > found) or (not most and value < found)) then
            found = value
        end
    end
    return found
end

--- Nearest-rank percentiles of `values` (sorted here) by name, e.g. {p50 = 50, p99 = 99}.
function tally.percentiles(values, ranks)
    table.sort(values)
    local found = {}
    for name, rank in pairs(ranks) do
        found[name] = values[math.max(1, math.ceil(rank / 100 * #values))]
    end
    return found
end

--- wrk's own figures from done(): requests answered, bytes read, and its error counts.
function tally.summary(summary)
    return {
        requests = summary.requests,
        bytes = summary.bytes,
        duration_seconds = summary.duration / 1e6,
        errors = summary.errors,
    }
end

local function encode(value)
    local kind = type(value)
    if kind == "table" then
        local parts = {}
        for key, item in pairs(value) do
            parts[#parts + 1] = encode(tostring(key)) .. ":" .. encode(item)
        end
        return "{" .. table.concat(parts, ",") .. "}"
    elseif kind == "string" then
        return '"' .. value:gsub('[%c"\\]', function(c)
            return string.format("\\u%04x", c:byte())
        end) .. '"'
    elseif kind == "number" then
        return value == value and string.format("%.10g", value) or "null"
    elseif kind == "boolean" then
        return tostring(value)
    end
    return "null"
end

--- Prints `result` (tables of tables, strings, numbers) as one line of JSON, the output's last.
function tally.print(result)
    io.write(encode(result), "\n")
end

return tally
