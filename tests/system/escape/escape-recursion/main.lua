-- Hostile: unbounded recursion grows the Lua stack (memory the VM takes
-- for itself) or the C stack (a real overflow would crash the worker).
-- Both must end in a named error, never in a crash:
--   plain     Lua recursion that is not a tail call
--   index     an __index that indexes itself: recursion through C calls
--   tostring  a __tostring that calls tostring on itself
function run(input)
  local how = input.how
  if how == "plain" then
    local function f() return 1 + f() end
    return f()
  elseif how == "index" then
    local t
    t = setmetatable({}, { __index = function(_, k) return t[k] end })
    return t.x
  elseif how == "tostring" then
    local t = setmetatable({}, { __tostring = function(self) return tostring(self) end })
    return tostring(t)
  end
end
