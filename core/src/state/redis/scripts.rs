//! The Lua scripts behind [`RedisState`](super::RedisState).
//!
//! Both scripts read the time once, at the top. In production that is Redis
//! `TIME`; the unit tests swap in a time passed as the last argument, so the
//! very same body can be replayed at chosen instants (governor's and
//! redis-cell's test vectors, local midnight, DST days).

use redis::Script;

/// Where a script takes "now" from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSource {
    /// Redis `TIME`: every process shares the server's clock.
    Server,
    /// Microseconds since the Unix epoch, passed as the last `ARGV` (tests).
    #[cfg(test)]
    Argument,
}

/// Effects replication is the default from Redis 5 and the only mode from 7;
/// older servers need it switched on before a script that calls `TIME`
/// writes.
const PRELUDE: &str = "if redis.replicate_commands then pcall(redis.replicate_commands) end\n";

fn now_line(time: TimeSource) -> &'static str {
    match time {
        TimeSource::Server => {
            "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        }
        #[cfg(test)]
        TimeSource::Argument => "local now = tonumber(ARGV[#ARGV])\n",
    }
}

/// Reply codes of the admit script other than 0 (admitted: quota unit(s) and
/// limiter token(s) taken).
pub(crate) mod code {
    /// The day's quota has fewer units left than the cost; nothing taken.
    pub const QUOTA_EXHAUSTED: i64 = 1;
    /// The limiter does not conform now; nothing taken.
    pub const RATE_LIMITED: i64 = 2;
    /// The cost exceeds the burst: never admitted.
    pub const INSUFFICIENT_CAPACITY: i64 = 3;
    /// The day window sent does not contain the server's time; nothing read
    /// or written. The reply carries the server's time.
    pub const WRONG_DAY: i64 = 4;
}

/// Daily quota, then GCRA, for one request; takes from both or neither
/// (the admit script).
///
/// `KEYS[1]` quota counter, `KEYS[2]` limiter TAT (same hash tag).
/// `ARGV`: cost, quota limit (0: no quota), day start ms, day end ms,
/// expire-at ms, emission interval µs (0: no limiter), burst.
///
/// Reply `{code, now_ms, quota_left, allowed, remaining, retry_after_ms,
/// reset_after_ms}`: the last four are the GCRA answer in redis-cell's shape
/// with `limit = burst`; `retry_after_ms` is 0 when allowed and −1 when the
/// cost can never conform; `quota_left` is −1 without a quota.
const ADMIT_BODY: &str = r"
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local day_start = tonumber(ARGV[3])
local day_end = tonumber(ARGV[4])
local expire_at = tonumber(ARGV[5])
local interval = tonumber(ARGV[6])
local burst = tonumber(ARGV[7])
local now_ms = math.floor(now / 1000)

local quota_left = -1
if limit > 0 then
  if now_ms < day_start or now_ms >= day_end then
    return {4, now_ms, 0, 0, 0, 0, 0}
  end
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  quota_left = math.max(limit - used, 0)
  if cost > quota_left then
    if used ~= 0 and redis.call('PTTL', KEYS[1]) == -1 then
      redis.call('PEXPIREAT', KEYS[1], expire_at)
    end
    return {1, now_ms, quota_left, 0, 0, 0, 0}
  end
end

local remaining, reset_after = 0, 0
if interval > 0 then
  local tolerance = interval * burst
  local increment = interval * cost
  local stored = redis.call('GET', KEYS[2])
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  local left_now = math.floor((now - (tat - tolerance)) / interval)
  local busy_ms = math.ceil((tat - now) / 1000)
  if increment > tolerance then
    return {3, now_ms, quota_left, 0, left_now, -1, busy_ms}
  end
  local new_tat = tat + increment
  local slack = now - (new_tat - tolerance)
  if slack < 0 then
    if redis.call('PTTL', KEYS[2]) == -1 then
      redis.call('PEXPIRE', KEYS[2], math.max(busy_ms, 1))
    end
    return {2, now_ms, quota_left, 0, left_now, math.ceil(-slack / 1000), busy_ms}
  end
  reset_after = math.ceil((new_tat - now) / 1000)
  if increment > 0 then
    redis.call('SET', KEYS[2], string.format('%.0f', new_tat), 'PX', reset_after)
  end
  remaining = math.floor(slack / interval)
end

if limit > 0 then
  local used = redis.call('INCRBY', KEYS[1], cost)
  redis.call('PEXPIREAT', KEYS[1], expire_at)
  quota_left = math.max(limit - used, 0)
end
return {0, now_ms, quota_left, 1, remaining, 0, reset_after}
";

/// Adds a signed `delta` to a quota counter, never below zero, and sets its
/// expiry: refunds (negative) and the reconciliation of units spent locally
/// during an outage (positive, one `INCRBY`).
///
/// `KEYS[1]` quota counter; `ARGV`: delta, expire-at ms. Reply: the counter.
const ADJUST: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local delta = math.max(tonumber(ARGV[1]), -used)
if delta == 0 then
  if used ~= 0 and redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  end
  return used
end
local value = redis.call('INCRBY', KEYS[1], delta)
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return value
";

/// Reserves units on several budget counters, on all or none (the budget
/// script).
///
/// `KEYS`: the counters (one hash tag). `ARGV`, five per key: units, limit,
/// window start ms, window end ms, expire-at ms.
///
/// Reply `{code, now_ms, index, left, used…}`: code 0 (reserved; `used` is
/// each counter after it), [`code::QUOTA_EXHAUSTED`] (the 1-based `index`
/// of a counter with only `left` units; nothing taken) or
/// [`code::WRONG_DAY`] (a window does not contain the server's time;
/// nothing read or written). A counter may be past its limit: an answer
/// that used more than its estimate is charged in full.
const BUDGET_BODY: &str = r"
local now_ms = math.floor(now / 1000)
local n = #KEYS
for i = 1, n do
  local base = (i - 1) * 5
  if now_ms < tonumber(ARGV[base + 3]) or now_ms >= tonumber(ARGV[base + 4]) then
    return {4, now_ms, i, 0}
  end
end
for i = 1, n do
  local base = (i - 1) * 5
  local units = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if units > limit - used then
    return {1, now_ms, i, math.max(limit - used, 0)}
  end
end
local reply = {0, now_ms, 0, 0}
for i = 1, n do
  local base = (i - 1) * 5
  reply[4 + i] = redis.call('INCRBY', KEYS[i], ARGV[base + 1])
  redis.call('PEXPIREAT', KEYS[i], ARGV[base + 5])
end
return reply
";

/// The scripts of one store, hashed once.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub admit: Script,
    pub adjust: Script,
    pub budget: Script,
}

impl Scripts {
    pub fn new(time: TimeSource) -> Self {
        let admit = format!("{PRELUDE}{}{ADMIT_BODY}", now_line(time));
        let budget = format!("{PRELUDE}{}{BUDGET_BODY}", now_line(time));
        Self {
            admit: Script::new(&admit),
            adjust: Script::new(ADJUST),
            budget: Script::new(&budget),
        }
    }
}
