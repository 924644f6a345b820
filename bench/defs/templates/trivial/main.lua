function run(input, ctx) return 1 end
