-- Not hostile by itself: Lua cannot make a system call.  A gateway started
-- with SANDGATE_TEST_SECCOMP_TEMPLATE=escape-seccomp (a test hook) makes the
-- worker running this template make one the seccomp filter forbids, as a
-- worker whose VM had been broken might.  The run must fail with
-- forbidden_syscall, and only that worker may die.
function run()
  return { reached = "the end, so the hook did not fire" }
end
