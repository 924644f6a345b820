-- Hostile: read a file of the worker's machine (/etc/passwd) and return
-- it as the run's output:
--   io         io.open, the obvious way
--   dofile     dofile runs a file as Lua; its syntax error would quote it
--   loadfile   compiles a file
--   load       load() takes source text, never a path: the path is parsed
--   chunkname  a chunk named "@/etc/passwd" only borrows the name
local PATH = "/etc/passwd"

function run(input)
  local how = input.how
  if how == "io" then
    return io.open(PATH):read("a")
  elseif how == "dofile" then
    return dofile(PATH)
  elseif how == "loadfile" then
    return loadfile(PATH)()
  elseif how == "load" then
    return assert(load(PATH))()
  elseif how == "chunkname" then
    return assert(load("error('read me')", "@" .. PATH))()
  end
end
