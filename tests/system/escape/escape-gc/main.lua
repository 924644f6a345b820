-- Hostile: Lua runs __gc finalizers with hooks off, so a finalizer that
-- loops would run outside the instruction budget, at a moment the script
-- does not even choose.  setmetatable refuses any __gc field:
--   gc        the classic: a finalizer that never returns
--   gc_false  {__gc = false} gets past a check for functions, and Lua marks
--             the object then; setting __gc to a function later would run it
--   late      __gc added only after setmetatable: Lua never marks the
--             object, so the finalizer must simply never run
local function spin() while true do end end

function run(input)
  local how = input.how
  if how == "gc" then
    setmetatable({}, { __gc = spin })
  elseif how == "gc_false" then
    local mt = { __gc = false }
    setmetatable({}, mt)
    mt.__gc = spin
  elseif how == "late" then
    local mt = {}
    for _ = 1, 1000 do setmetatable({}, mt) end
    mt.__gc = spin
    local churn = {}
    for i = 1, 50000 do churn[i % 64 + 1] = { i } end  -- let collections run
    return "no finalizer ran"
  end
  return "unreachable"
end
