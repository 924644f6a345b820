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
