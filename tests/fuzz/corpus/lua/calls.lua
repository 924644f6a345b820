function run(input, ctx)
  for i = 1, 10 do pcall(ctx.call, "svc.op", {i = i}) end
  return "escaped"
end
