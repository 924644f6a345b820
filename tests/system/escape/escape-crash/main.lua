-- Not hostile by itself: Lua cannot crash its process.  A gateway started
-- with SANDGATE_TEST_CRASH_TEMPLATE=escape-crash (a test hook) makes the
-- worker running this template crash, as a worker hit by a VM bug might.
-- The run must fail with worker_crashed, and only that worker may die.
function run()
  return { reached = "the end, so the hook did not fire" }
end
