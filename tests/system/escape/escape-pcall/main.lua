-- Hostile: if the instruction budget's stop were an ordinary error, a
-- script could catch it and carry on forever.  Each variant tries:
--   pcall   pcall around an endless loop, itself in an endless loop
--   xpcall  the same through xpcall, with a message handler that loops too
--   nested  a pcall at every level of a recursion, each one looping
--   close   a to-be-closed variable whose __close loops while the stop unwinds
local function spin() while true do end end

function run(input)
  local how = input.how
  if how == "pcall" then
    while true do pcall(function() while true do end end) end
  elseif how == "xpcall" then
    while true do xpcall(spin, spin) end
  elseif how == "nested" then
    local function dive(n)
      pcall(dive, n + 1)
      spin()
    end
    dive(1)
  elseif how == "close" then
    local trap <close> = setmetatable({}, { __close = spin })
    spin()
  end
  return "escaped the budget"
end
