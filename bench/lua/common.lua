-- Shared by every workload: the seeded ids, random picks, and error accounting.
-- wrk runs this file in its main Lua state and in one state per thread; the
-- thread states make the requests, the main state reports in done().
--
-- Usage: wrk ... -s bench/lua/<workload>.lua URL -- <data.lua>

local threads = {}
-- The data file: {{user = id, tasks = "<36-char ids>..."}, ..., large = id}, where
-- `large` is the one user with many tasks, whom only the searches ask for.
local seeded
local created = 0

-- Globals, so that done() can read them from each thread with thread:get().
non2xx = 0
first_failure = ""

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

function init(args)
  seeded = dofile(args[1])
  math.randomseed(os.time() * 100 + thread_number)
end

local function pick_user()
  return seeded[math.random(#seeded)]
end

local function pick_task(user)
  local i = math.random(#user.tasks / 36)
  return user.tasks:sub((i - 1) * 36 + 1, i * 36)
end

function list_request()
  local user = pick_user()
  return wrk.format("GET", "/api/tasks?limit=100", {["X-User-ID"] = user.user})
end

function get_request()
  local user = pick_user()
  return wrk.format("GET", "/api/tasks/" .. pick_task(user), {["X-User-ID"] = user.user})
end

function summary_request()
  return wrk.format("GET", "/api/tasks/summary", {["X-User-ID"] = pick_user().user})
end

-- On the large user: a word in about one title in eighteen, a word in about one
-- description in seven (in capitals: the search ignores case), a title number held
-- by a handful of tasks ("#4242", URL-encoded), and a word in none.
local search_terms = {"milk", "RECEIPT", "%234242", "quokka"}

function search_request()
  local term = search_terms[math.random(#search_terms)]
  return wrk.format("GET", "/api/tasks?limit=100&q=" .. term, {["X-User-ID"] = seeded.large})
end

function create_request()
  local user = pick_user()
  created = created + 1
  local body = string.format(
    '{"title":"Benchmark task %d-%d","description":"Created under load by wrk."}',
    thread_number, created)
  return wrk.format("POST", "/api/tasks",
    {["X-User-ID"] = user.user, ["Content-Type"] = "application/json"}, body)
end

function toggle_request()
  local user = pick_user()
  return wrk.format("PATCH", "/api/tasks/" .. pick_task(user) .. "/complete",
    {["X-User-ID"] = user.user})
end

-- wrk itself counts only socket errors and statuses >= 400; any non-2xx is a
-- failure here.
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_failure == "" then
      first_failure = status .. " " .. (body or ""):sub(1, 300)
    end
  end
end

function done(summary, latency, requests)
  local failures = 0
  local example = ""
  for _, thread in ipairs(threads) do
    failures = failures + thread:get("non2xx")
    if example == "" then example = thread:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, failures, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  if example ~= "" then
    io.write("BENCH-FAILURE " .. example:gsub("\n", " ") .. "\n")
  end
end
