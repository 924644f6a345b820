-- Not hostile by itself: Lua cannot fork.  A gateway started with
-- SANDGATE_TEST_FORK_TEMPLATE=escape-fork (a test hook) makes the worker
-- running this template call fork(), as a worker whose VM had been broken
-- might, to leave a process behind that outlives the run.  clone is not on
-- the seccomp allowlist: the run must fail with forbidden_syscall, and only
-- that worker may die.
function run()
  return { reached = "the end, so the hook did not fire" }
end
