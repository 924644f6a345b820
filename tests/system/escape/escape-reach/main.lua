-- Hostile: os, io, debug, package and require each hand a script the
-- worker process itself (commands, files, the VM's internals, native
-- code).  They must be absent however they are looked up.  "probe" returns
-- type() of every path it tries, and the whole list of globals; the other
-- variants just use a library, as a template author would, and must fail
-- with an error that names the missing global.
function run(input)
  local how = input.how
  if how == "os" then
    return os.execute("id")
  elseif how == "io" then
    return io.read("a")
  elseif how == "debug" then
    return debug.getregistry()
  elseif how == "require" then
    return require("os").getenv("HOME")
  end
  local paths = {
    os = os, io = io, debug = debug, package = package, require = require,
    dofile = dofile, loadfile = loadfile, loadstring = loadstring,
    getfenv = getfenv, setfenv = setfenv, module = module, newproxy = newproxy,
    G_os = _G.os, G_G_io = _G._G.io, ENV_io = _ENV.io,
    rawget_debug = rawget(_G, "debug"),
    load_os = load("return os")(),
    load_env_io = load("return _ENV.io", "=x", "t", _G)(),
    loaded = package and package.loaded,
    G_metatable = getmetatable(_G),
    string_dump = string.dump,
    string_os = ("").os,
  }
  local types = {}
  for _, name in ipairs({
    "os", "io", "debug", "package", "require", "dofile", "loadfile", "loadstring",
    "getfenv", "setfenv", "module", "newproxy", "G_os", "G_G_io", "ENV_io",
    "rawget_debug", "load_os", "load_env_io", "loaded", "G_metatable",
    "string_dump", "string_os",
  }) do
    types[name] = type(paths[name])
  end
  local globals = {}
  for k in pairs(_G) do globals[#globals + 1] = tostring(k) end
  table.sort(globals)
  return { types = types, globals = globals }
end
