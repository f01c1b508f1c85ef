// Package redisclock is Redis's clock as the service's Lua scripts read it.
// Every replica's scripts agree on the time only if they ask Redis rather
// than their own host, and they agree on its units only if they convert
// TIME the same way: so the conversion is written once, here, and each
// script that needs the time starts with Lua.
package redisclock

// Lua defines two local functions for the script it is prepended to:
// redis_now_us(), Redis's clock in microseconds, and redis_now_ms(), the
// same in whole milliseconds (rounded down), the unit of stream ids,
// sorted-set due times and PEXPIRE. TIME answers seconds and the
// microseconds within them, both as strings; their sum stays below 2^53
// for the next few centuries, so Lua's doubles hold it exactly.
const Lua = `
local function redis_now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function redis_now_ms() return math.floor(redis_now_us() / 1000) end
`
