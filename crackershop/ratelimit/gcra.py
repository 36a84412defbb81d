"""The bucket arithmetic: :func:`check` for the buckets kept by crackershop
itself, and :func:`lease` once in Python and once in Lua (for Redis), kept
identical.

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


def lease(
    tats: Sequence[Optional[int]],
    now: int,
    policies: Sequence[Policy],
    wants: Sequence[int],
    spread: int,
) -> tuple[bool, list[int], list[Bucket], list[int]]:
    """Tokens handed out in advance (a lease), all or none: a positive want
    asks for up to that many tokens of a bucket, granted only if every
    bucket asked holds at least one; a worker then admits requests from its
    grant without asking again. A grant is at most ``1/spread`` of what the
    bucket holds (at least 1, never more than it holds), so a bucket near
    empty hands out one token at a time. A negative want gives tokens back
    (never beyond full), whatever the others get. Returns whether allowed,
    the tokens granted (negative: given back) and each bucket after it, and
    the new ``tat`` of every bucket (stored in any case: unchanged where
    nothing was taken)."""
    allowed = True
    starts: list[int] = []
    grants: list[int] = []
    for stored, policy, want in zip(tats, policies, wants):
        tat = max(stored if stored is not None else now, now)
        if want > 0:
            available = (policy.interval * policy.limit - (tat - now)) // policy.interval
            if available < 1:
                allowed = False
            grants.append(max(1, min(want, available // spread)))
        else:
            grants.append(want)
        starts.append(tat)
    given: list[int] = []
    buckets: list[Bucket] = []
    finals: list[int] = []
    for tat, grant, policy in zip(starts, grants, policies):
        full = policy.interval * policy.limit
        retry = 0
        if grant < 0:
            final = max(now, tat + grant * policy.interval)
        elif allowed:
            final = tat + grant * policy.interval
        else:
            final, grant = tat, 0
            retry = max(0, tat + policy.interval - full - now)
        remaining = max(0, (full - (final - now)) // policy.interval)
        given.append(grant)
        buckets.append(Bucket(policy, remaining, final - now, retry))
        finals.append(final)
    return allowed, given, buckets, finals


# The same steps as lease(), over KEYS (one per bucket) with ARGV = spread,
# then interval, limit and want of every key; the clock is Redis's own, so
# servers with skewed clocks agree. Returns allowed, then granted,
# remaining, reset and retry (microseconds) of every bucket.
LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spread = tonumber(ARGV[1])
local starts, grants = {}, {}
local allowed = 1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local limit = tonumber(ARGV[3 * i])
  local want = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local grant = want
  if want > 0 then
    local available = math.floor((interval * limit - (tat - now)) / interval)
    if available < 1 then allowed = 0 end
    grant = math.floor(available / spread)
    if grant > want then grant = want end
    if grant < 1 then grant = 1 end
  end
  starts[i] = tat
  grants[i] = grant
end
local out = {allowed}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local full = interval * tonumber(ARGV[3 * i])
  local tat = starts[i]
  local grant = grants[i]
  local final = tat
  local retry = 0
  if grant < 0 then
    final = tat + grant * interval
    if final < now then final = now end
  elseif allowed == 1 then
    final = tat + grant * interval
  else
    grant = 0
    retry = tat + interval - full - now
    if retry < 0 then retry = 0 end
  end
  if final ~= tat then
    if final > now then
      redis.call('SET', KEYS[i], string.format('%d', final),
                 'PX', math.ceil((final - now) / 1000) + 1)
    else
      redis.call('DEL', KEYS[i])
    end
  end
  local remaining = math.floor((full - (final - now)) / interval)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = grant
  out[#out + 1] = remaining
  out[#out + 1] = final - now
  out[#out + 1] = retry
end
return out
"""
