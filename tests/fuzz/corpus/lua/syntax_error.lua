function run()
  local x = = 1
end
