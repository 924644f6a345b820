-- Hostile: a template as a way up.  It declares calendar.create_event,
-- which an explorer may not call, hoping the run calls it with the
-- template's power rather than the runner's.  A template never gives its
-- runner more than the runner has: the run must be refused before it
-- starts (403 capability_forbidden naming the operation), so this script
-- never runs for an explorer.
function run(input, ctx)
  return ctx.call("calendar.create_event", {
    title = "Owned", start = "2030-01-01T09:00:00Z", ["end"] = "2030-01-01T10:00:00Z",
  })
end
