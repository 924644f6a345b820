function run()
  for i = 1, 1e6 do coroutine.wrap(function() for j = 1, 40 do end end)() end
  local co = coroutine.create(function(a) while true do a = coroutine.yield(a + 1) end end)
  for i = 1, 100 do coroutine.resume(co, i) end
  coroutine.close(co)
end
