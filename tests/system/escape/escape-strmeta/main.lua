-- Hostile: all strings share one metatable whose __index is the string
-- library.  Whoever reaches it can swap in the stock library (with
-- string.dump) or change what every string method does.  getmetatable("")
-- must answer false (locked), and nothing else may hand the table out:
--   index   read getmetatable("").__index
--   set     assign getmetatable("").__index
--   rawset  rawset(getmetatable(""), "__index", ...)
--   setmt   setmetatable("", ...): give strings a new metatable
--   probe   report what the script can see (must be the sandbox's table)
function run(input)
  local how = input.how
  if how == "index" then
    local real = getmetatable("").__index
    return type(real.dump)
  elseif how == "set" then
    getmetatable("").__index = { upper = function() return "pwned" end }
  elseif how == "rawset" then
    rawset(getmetatable(""), "__index", {})
  elseif how == "setmt" then
    setmetatable("", { __index = {} })
  elseif how == "probe" then
    return {
      metatable = getmetatable(""),    -- false: locked
      dump = type(("").dump),          -- "nil": no string.dump behind strings
      pack = type(("").pack),          -- "nil": left out of the sandbox too
      same = ("").rep == string.rep,   -- true: strings index the sandbox table
    }
  end
  return "unreachable"
end
