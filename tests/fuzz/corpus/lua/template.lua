-- An ordinary template: calls, logs, JSON, strings.
local function trim(s) return (s:match("^%s*(.-)%s*$")) end

function run(input, ctx)
  ctx.log("starting", input.n, #input.tags)
  local r = ctx.call("crm.get", {id = input.n, tags = input.tags})
  local ok, e = pcall(ctx.call, "fail.now", {})
  local words = {}
  for w in ("  alpha beta  gamma "):gmatch("%a+") do words[#words + 1] = w:upper() end
  table.sort(words)
  local doc = ctx.json.decode(ctx.json.encode({a = 1, b = {1, 2, 3}, c = "x"}))
  return {
    called = r.called, error = not ok and e.code, when = ctx.now(),
    words = table.concat(words, ","), trimmed = trim("  hi  "),
    doc = doc, s = string.format("%5.2f|%q|%d", 3.14159, "a\n", 7),
  }
end
