-- Hostile: a library call is one VM instruction, so a C function asked for
-- huge work would run outside the instruction budget.  Each variant asks
-- one string or table function for far more than one call may do:
--   rep     string.rep of a gigabyte
--   find    a pattern that backtracks catastrophically (stock Lua: hours)
--   format  string.format asked to build a 20 MiB string
--   concat  table.concat of 17 references to one 1 MiB string (17 MiB)
--   gsub    gsub whose result (64 MiB) is far above the memory limit
--   width   a printf width Lua refuses (%5000d) rather than pads
function run(input)
  local how = input.how
  if how == "rep" then
    return #string.rep("x", 1 << 30)
  elseif how == "find" then
    return ("a"):rep(100000):find(".-.-.-.-b")
  elseif how == "format" then
    local big = ("x"):rep(1 << 20):rep(10)
    return #string.format("%s%s", big, big)
  elseif how == "concat" then
    local mib, t = ("x"):rep(1 << 20), {}
    for i = 1, 17 do t[i] = mib end
    return #table.concat(t)
  elseif how == "gsub" then
    return #(("x"):rep(1 << 20):gsub("x", ("y"):rep(64)))
  elseif how == "width" then
    return string.format("%5000d", 1)
  end
end
