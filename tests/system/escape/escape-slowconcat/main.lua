-- Hostile: work the instruction budget cannot see.  One `..` is one VM
-- instruction however long its operands, so growing a string a little at
-- a time copies all of it every time: quadratic work for linear
-- instructions, while memory stays modest (old copies are garbage).  Only
-- the wall clock stops this inside its budgets.
function run()
  local s = ""
  while true do s = s .. "........" end
end
