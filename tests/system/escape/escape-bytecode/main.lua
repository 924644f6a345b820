-- Hostile: Lua trusts precompiled bytecode.  A crafted chunk skips the
-- compiler's checks and can read and write memory outside the VM, so
-- every way of loading or making bytecode must fail:
--   sig     load() of a string that starts with the "\27Lua" signature
--   mode_b  load(chunk, name, "b"): asking for binary mode outright
--   reader  load() from a reader function that hands the chunk over
--   dump    string.dump, the way to make bytecode, must be absent
--   method  ("").dump: the same, reached through the string metatable
local CHUNK = "\27LuaT\0\25\147\r\n\26\n\4\8\8" .. string.rep("\0", 32)

function run(input)
  local how = input.how
  if how == "sig" then
    assert(load(CHUNK))()
  elseif how == "mode_b" then
    assert(load(CHUNK, "=chunk", "b"))()
  elseif how == "reader" then
    local given = false
    assert(load(function()
      if given then return nil end
      given = true
      return CHUNK
    end, "=chunk", "bt"))()
  elseif how == "dump" then
    return string.dump(run)
  elseif how == "method" then
    return ("x"):dump()
  end
  return "unreachable"
end
