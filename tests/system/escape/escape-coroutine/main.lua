-- Hostile: each coroutine is a Lua thread with its own hook.  A budget
-- kept per thread, or a stop that resume turns into a return value, would
-- let a script run forever by hopping between coroutines:
--   yield   ping-pong forever with a coroutine that yields
--   busy    a coroutine that loops without ever yielding
--   resume  resume returns errors as values: ignore the stop and go again
--   spawn   fresh coroutines forever, hoping each brings a fresh budget
function run(input)
  local how = input.how
  if how == "yield" then
    local gen = coroutine.wrap(function() while true do coroutine.yield(1) end end)
    while true do gen() end
  elseif how == "busy" then
    coroutine.wrap(function() while true do end end)()
  elseif how == "resume" then
    while true do
      coroutine.resume(coroutine.create(function() while true do end end))
    end
  elseif how == "spawn" then
    while true do
      coroutine.resume(coroutine.create(function() return 1 end))
    end
  end
  return "escaped the budget"
end
