-- Hostile: the instruction budget is the template author's to set, up to
-- 10^12 (template.yaml does), so it cannot be all that stands between a
-- loop and a worker spinning for an hour.  The wall clock must end this
-- run about limits.wall_time (200 ms) after it starts.
function run()
  while true do end
end
