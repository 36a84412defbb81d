-- GET /api/v1/products/:id over the seeded products (BENCH_IDS, comma separated).
local ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS"), "[^,]+") do ids[#ids + 1] = id end
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/products/" .. ids[(n % #ids) + 1])
end
