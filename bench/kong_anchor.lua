-- The Kong-shaped anchor for bench/run: what Kong does per call (key-auth,
-- a request validator, rate limiting, a JSON reply and a JSON log line),
-- built from the same parts Kong is built from: nginx, lua-nginx-module and
-- Lua plugins, with lua-cjson.  bench/run writes the nginx.conf that loads
-- it; limit_req (keyed by the credential) and the buffered JSON access log
-- are nginx directives there.  Each check mirrors what sandgate does for
-- crm.create_contact (examples/connectors/crm.yaml), so that both servers
-- refuse and admit the same calls.
local cjson = require("cjson.safe")

local M = {}

local keys = ngx.shared.keys

-- Loaded once, in the master (init_by_lua), from the same file of keys
-- bench/run created for sandgate.  As sandgate keeps only a keyed hash of a
-- key, the dict is keyed by a hash (SHA-1 here, nginx's own) of the key.
function M.init(path)
  local n = 0
  for line in io.lines(path) do
    local id = line:match("^sgk_(%x+)_")
    if id then
      -- tenant, user (the key's public id), role: the principal identify makes.
      local ok, err = keys:safe_set(ngx.sha1_bin(line), "bench " .. id .. " bench")
      if not ok then error("kong_anchor: cannot store key " .. id .. ": " .. err) end
      n = n + 1
    end
  end
  if n == 0 then error("kong_anchor: no keys in " .. path) end
end

-- Each worker draws its own reply ids (init_worker_by_lua).
function M.init_worker()
  math.randomseed(ngx.worker.pid() * 1000003 + ngx.now() * 1000)
end

local function problem(status, code, detail)
  ngx.status = status
  ngx.header["Content-Type"] = "application/problem+json"
  ngx.var.kg_outcome = code
  local out = cjson.encode({ status = status, code = code, detail = detail,
                             request_id = ngx.var.request_id })
  ngx.header["Content-Length"] = #out
  ngx.print(out)
end

-- Characters, not bytes, as JSON Schema's lengths count them.  ASCII is
-- the common case: a string of at most `max` bytes has at most `max`
-- characters, so only longer ones are counted.
local function char_len_ok(s, min, max)
  local n = #s
  if n >= min and n <= max then return true end
  if n < min then return false end
  local _, chars = s:gsub("[^\128-\191]", "")
  return chars >= min and chars <= max
end

-- crm.create_contact's input schema: an object with email and name, an
-- optional company, nothing else.
local function invalid(doc)
  if type(doc) ~= "table" then return "the body must be a JSON object" end
  local email, name, company = doc.email, doc.name, doc.company
  if type(email) ~= "string" then return "/email: required string" end
  if #email > 254 or not email:find("^[^@ ]+@[^@ ]+%.[^@ ]+$") then
    return "/email: not an email address"
  end
  if type(name) ~= "string" or not char_len_ok(name, 1, 200) then
    return "/name: a string of 1 to 200 characters"
  end
  if company ~= nil and (type(company) ~= "string" or not char_len_ok(company, 0, 200)) then
    return "/company: a string of at most 200 characters"
  end
  for k in pairs(doc) do
    if k ~= "email" and k ~= "name" and k ~= "company" then
      return "unknown property " .. tostring(k)
    end
  end
  return nil
end

function M.call()
  -- key-auth: "Bearer <key>", looked up by its hash.
  local auth = ngx.var.http_authorization
  local key = auth and auth:match("^Bearer (%S+)$")
  local principal = key and keys:get(ngx.sha1_bin(key))
  if not principal then
    return problem(401, "key_unknown", "send 'Authorization: Bearer sgk_...' with a valid key")
  end
  local tenant, user, role = principal:match("^(%S+) (%S+) (%S+)$")
  ngx.var.kg_tenant, ngx.var.kg_user, ngx.var.kg_role = tenant, user, role

  -- request validator: a JSON body, decoded and checked against the schema.
  local ctype = ngx.var.http_content_type
  if not ctype or ctype:sub(1, 16) ~= "application/json" then
    return problem(415, "unsupported_media_type", "send the body as application/json")
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    return problem(400, "malformed_json", "the body is empty or too large")
  end
  local doc = cjson.decode(body)
  if doc == nil then
    return problem(400, "malformed_json", "the body is not JSON")
  end
  local why = invalid(doc)
  if why then
    return problem(400, "invalid_input", why)
  end

  -- The reply, built per call (as sandgate's simulator echoes the input).
  ngx.header["Content-Type"] = "application/json"
  ngx.header["RateLimit-Policy"] = '"bench";q=1000000;w=1'
  ngx.header["Cache-Control"] = "no-store"
  ngx.var.kg_outcome = "allowed"
  local out = cjson.encode({
    id = string.format("ct_%08x", math.random(0, 0x7fffffff)),
    email = doc.email,
    name = doc.name,
    company = doc.company or "",
    created_at = "2024-03-01T09:30:00Z",
  })
  ngx.header["Content-Length"] = #out
  ngx.print(out)
end

return M
