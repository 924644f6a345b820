function run()
  local t = setmetatable({}, {__len = function() return 2^40 end})
  pcall(table.insert, t, 1, "x")
  local u = {}
  for k = 30, 0, -1 do u[1 << k] = 1 end
  pcall(table.sort, u, rawequal)
  pcall(table.move, {}, 1, math.maxinteger - 1, 2)
  return table.concat({1, 2, 3}, ","), select("#", table.unpack({1, nil, 3}, 1, 3))
end
