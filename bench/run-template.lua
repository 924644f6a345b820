-- wrk script: run a template through the HTTP API, POST
-- /v1/templates/$TEMPLATE/runs with the key in $KEY and the JSON input in
-- $INPUT (default {}).  Used by bench/sandbox.sh.  Any answer but 200 (a
-- failed run is a 422, a refused one 429 or 503) shows in wrk's
-- "Non-2xx or 3xx responses" line, which the script checks.
local key = os.getenv("KEY") or error("run-template.lua: set KEY to an API key")
local template = os.getenv("TEMPLATE") or "trivial"

wrk.method = "POST"
wrk.path = "/v1/templates/" .. template .. "/runs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = os.getenv("INPUT") or "{}"

-- An answer that is not 200 is rare and must say what it was: each thread
-- keeps the first one (status and problem body) and how many there were,
-- and done() prints them after wrk's summary.  Only a string comparison per
-- answer, next to a sandbox run of a millisecond.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

bad = 0
function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad == 1 then
      first_bad = status .. " " .. (headers["Content-Type"] or "") .. " " .. (body or ""):sub(1, 1000)
    end
  end
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local n = t:get("bad")
    if n and n > 0 then
      io.write(string.format("not 200: %d answers in one wrk thread; the first: %s\n", n, t:get("first_bad")))
    end
  end
end
