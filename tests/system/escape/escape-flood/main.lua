-- Hostile: flood the log.  Each run's log is kept in its run document, in
-- the gateway's memory and in the store, so unbounded logging would fill
-- both.  ctx.log keeps a bounded amount and counts what it drops; the
-- loop itself ends on the instruction budget.
function run(input, ctx)
  local line = ("x"):rep(4000)
  while true do ctx.log(line) end
end
