-- Hostile: exhaust the worker's memory so that it, or its neighbours on
-- the machine, die.  The run's own allocator cap must stop both first:
--   string  doubling a string: 2^n bytes after n steps
--   table   endless small tables, all held by one growing array
function run(input)
  if input.how == "string" then
    local s = "x"
    while true do s = s .. s end
  end
  local t = {}
  while true do t[#t + 1] = {} end
end
