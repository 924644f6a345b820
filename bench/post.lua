-- wrk script: POST a governed call, rotating through the keys in $KEYS_FILE
-- (one per line) so that each request may come from a different caller.
local keys = {}
local path = os.getenv("KEYS_FILE")
if path then
  for line in io.lines(path) do keys[#keys + 1] = line end
end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"ada@example.com","name":"Ada Lovelace","company":"Engines"}'

request = function()
  i = i + 1
  wrk.headers["Authorization"] = "Bearer " .. keys[(i % #keys) + 1]
  return wrk.format(nil, os.getenv("TARGET_PATH") or "/v1/connectors/crm/create_contact")
end
