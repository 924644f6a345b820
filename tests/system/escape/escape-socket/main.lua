-- Hostile: open a network connection from the worker, to send data out or
-- reach services behind the gateway.  Lua has no sockets of its own, so:
--   require  require("socket"): LuaSocket, if the host has it installed
--   loadlib  package.loadlib: native code with socket() in it
--   popen    io.popen: a shell, which has sockets
--   ctx      ctx.call to an operation the template did not declare (the
--            only road out is the governed path, to declared operations)
function run(input, ctx)
  local how = input.how
  if how == "require" then
    return require("socket").connect("127.0.0.1", 80) and "connected"
  elseif how == "loadlib" then
    return package.loadlib("libc.so.6", "socket")()
  elseif how == "popen" then
    return io.popen("nc 127.0.0.1 80"):read("a")
  elseif how == "ctx" then
    local ok, err = pcall(ctx.call, "mail.send",
                          { to = { "x@example.com" }, subject = "s", body = "b" })
    return { ok = ok, code = type(err) == "table" and err.code or tostring(err) }
  end
end
