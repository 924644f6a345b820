function run()
  pcall(function() local s = "x" while true do s = s .. s end end)
  local t = {}
  for i = 1, 1e9 do t[i] = {i} end
end
