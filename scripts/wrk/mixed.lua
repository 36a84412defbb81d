-- A shop's traffic, in every 50 requests: 30 product list pages (some
-- filtered by category or searched), 16 product views, 2 logins and 2
-- orders placed by the benchmark customer.
--   BENCH_IDS      product ids, comma separated
--   BENCH_ORDERS   "id:qty" pairs that make a valid order, comma separated
--   BENCH_TOKEN    the customer's bearer token
--   BENCH_EMAIL, BENCH_PASSWORD   the customer's credentials
local ids, orders = {}, {}
for id in string.gmatch(os.getenv("BENCH_IDS"), "[^,]+") do ids[#ids + 1] = id end
for line in string.gmatch(os.getenv("BENCH_ORDERS"), "[^,]+") do
  local id, qty = string.match(line, "([^:]+):(%d+)")
  orders[#orders + 1] = {id = id, qty = qty}
end
local token = os.getenv("BENCH_TOKEN")
local login = string.format('{"email":"%s","password":"%s"}',
  os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD"))
local address = '{"address":"3 Temple Road","district":"Sivakasi","state":"TN","pincode":"626123"}'
local searches = {"sparkler", "rocket", "pot", "bomb", "chakkar"}
local n = 0

request = function()
  n = n + 1
  local step = n % 50
  if step < 30 then
    if step % 5 == 0 then
      return wrk.format("GET", "/api/v1/products?search=" .. searches[(n % #searches) + 1])
    end
    return wrk.format("GET", "/api/v1/products?page=" .. ((step % 3) + 1) .. "&limit=10")
  elseif step < 46 then
    return wrk.format("GET", "/api/v1/products/" .. ids[(n % #ids) + 1])
  elseif step < 48 then
    return wrk.format("POST", "/api/v1/auth/login", {["Content-Type"] = "application/json"}, login)
  else
    local o = orders[(n % #orders) + 1]
    local body = string.format(
      '{"orderItems":[{"product":"%s","qty":%s}],"shippingAddress":%s,"paymentMethod":"COD"}',
      o.id, o.qty, address)
    return wrk.format("POST", "/api/v1/orders",
      {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
  end
end
