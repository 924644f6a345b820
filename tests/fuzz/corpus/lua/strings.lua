function run()
  pcall(string.rep, "x", 2^40)
  local e = string.rep("", 2^40)
  pcall(string.format, "%s%s", ("x"):rep(1e6), ("y"):rep(1e6))
  return #e, string.format("%-5s|%99.99f", "a", 1.5):len(), utf8.char(72, 228, 8364)
end
