function run(input, ctx)
  local cyc = {} cyc.self = cyc
  local results = {}
  for _, v in ipairs({{1, nil, 3}, {1, x = 2}, {[1.5] = 1}, cyc, {0/0}, "\255", print}) do
    results[#results + 1] = select(2, pcall(ctx.json.encode, v))
  end
  results[#results + 1] = select(2, pcall(ctx.json.decode, '{"a": [1, null, {"b": true}]}'))
  results[#results + 1] = select(2, pcall(ctx.json.decode, '{"a": }'))
  return #results
end
