-- Hostile: a worker serves many runs of its tenant, one after another.
-- If anything survived a run, one run could plant code that a later run
-- (another user's template, say) executes.  "poison" plants a global,
-- a string method every string sees, a patched table and math library and
-- a replaced builtin; "check", a later run, reports what it finds.
function run(input)
  if input.phase == "poison" then
    POISON = "planted"
    string.upper = function() return "pwned" end
    string.evil = function() return "pwned" end   -- ("x"):evil() in this run
    table.insert = function() error("pwned") end
    math.pi = 3
    local planted = ("x"):evil()
    rawset(_G, "type", function() return "pwned" end)
    return { planted = planted }
  end
  return {
    global = type(POISON),                  -- "nil"
    upper = ("a"):upper(),                  -- "A"
    evil = type(("x").evil),                -- "nil"
    insert = (pcall(table.insert, {}, 1)),  -- true: the real insert
    pi = math.pi == 3,                      -- false
    type = type(1),                         -- "number"
  }
end
