local function f(n) return 1 + f(n + 1) end
local t = setmetatable({}, {__index = function(t, k) return t[k] end})
function run()
  pcall(f, 1)
  pcall(function() return t.x end)
  local function g(s) return (s:gsub(".", g)) end
  return pcall(g, "ab")
end
