function run()
  local bin = "\27Lua\84\0\25\147\r\n\26\n"
  local f = load(bin) or load(bin, "x", "b") or load(function() return nil end)
  local r = {load("return os")(), load("return io", "c", "t", _G)(), rawget(_G, "debug"), _ENV.require}
  return #r, string.dump, string.pack
end
