function run()
  pcall(function() while true do end end)
  xpcall(function() while true do end end, function() while true do end end)
  local co = coroutine.wrap(function()
    local x <close> = setmetatable({}, {__close = function() while true do end end})
    while true do end
  end)
  pcall(co)
  return "escaped"
end
