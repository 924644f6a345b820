function run()
  local a = ("a"):rep(800)
  pcall(string.find, a, ".-.-.-b")
  pcall(string.match, ("("):rep(1e4), "%b()")
  pcall(string.gsub, ("x"):rep(1e4), "(x+)%1y", "")
  for k, v in ("k=v, a=b"):gmatch("(%w+)=(%w+)") do end
  return ("x]y"):find("[]]"), ("THE (quick) fox"):find("%f[%a]%a+%f[%A]")
end
