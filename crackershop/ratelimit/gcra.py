"""The bucket arithmetic, once in Python and once in Lua, kept identical.

This is GCRA, the token bucket written as a single number per client: the
theoretical arrival time ``tat`` (microseconds). A bucket of ``limit`` tokens
refilled at one token per ``interval`` is full when ``tat <= now``, and holds
``(limit*interval - (tat - now)) / interval`` tokens otherwise. Taking a token
moves ``tat`` one interval later; a take is allowed while ``tat`` stays within
``limit*interval`` of now. All values are integers below 2**53, so Lua's
doubles compute them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from crackershop.ratelimit.interfaces import Bucket, Outcome, Policy


def check(
    tats: Sequence[Optional[int]], now: int, policies: Sequence[Policy], cost: int
) -> tuple[Outcome, list[int]]:
    """The outcome and the new ``tat`` of every bucket (stored only if allowed)."""
    starts: list[int] = []
    moved: list[int] = []
    allowed = True
    for stored, policy in zip(tats, policies):
        tat = max(stored if stored is not None else now, now)
        step = cost * policy.interval
        new = tat + step if cost > 0 else max(now, tat + step)
        if cost > 0 and new - policy.interval * policy.limit > now:
            allowed = False
        starts.append(tat)
        moved.append(new)
    buckets = []
    finals = moved if allowed else starts
    for new, final, policy in zip(moved, finals, policies):
        full = policy.interval * policy.limit
        remaining = max(0, (full - (final - now)) // policy.interval)
        retry = 0 if allowed else max(0, new - full - now)
        buckets.append(Bucket(policy, remaining, final - now, retry))
    return Outcome(allowed, buckets), finals


# The same steps as check(), over KEYS (one per policy) with
# ARGV = cost, interval1, limit1, interval2, limit2, ...; the clock is Redis's
# own, so servers with skewed clocks agree. Returns
# allowed, then remaining, reset and retry (microseconds) of every bucket.
LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local starts, moved = {}, {}
local allowed = 1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + cost * interval
  if cost > 0 then
    if new - interval * limit > now then allowed = 0 end
  elseif new < now then
    new = now
  end
  starts[i] = tat
  moved[i] = new
end
local out = {allowed}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local full = interval * tonumber(ARGV[2 * i + 1])
  local final = starts[i]
  local retry = 0
  if allowed == 1 then
    final = moved[i]
    if final > now then
      redis.call('SET', KEYS[i], string.format('%d', final),
                 'PX', math.ceil((final - now) / 1000) + 1)
    else
      redis.call('DEL', KEYS[i])
    end
  else
    retry = moved[i] - full - now
    if retry < 0 then retry = 0 end
  end
  local remaining = math.floor((full - (final - now)) / interval)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = final - now
  out[#out + 1] = retry
end
return out
"""
