function run()
  local mt = {__gc = false}
  pcall(setmetatable, {}, mt)
  pcall(setmetatable, {}, {__gc = function() while true do end end})
  local m = getmetatable("")
  pcall(rawset, m, "__index", {})
  pcall(collectgarbage)
  return m, collectgarbage("count") > 0, ("x").dump
end
