"""The Lua scripts of the Redis join store: each call's checks and writes, atomically.

Redis runs a script to its end before it serves any other command, so two replicas
that send a label for the same id at the same moment cannot both find the prediction
waiting: the first script to run joins it (and removes it), the second finds the id
among the joined ones and reports a duplicate. That is the whole at-most-once argument;
no WATCH/MULTI retry loop is needed.

Keys of one model (all with the hash tag ``{model}``, so that a script's keys live in one
cluster slot), in the order every script takes them:

- ``KEYS[1]`` hash ``p``: waiting prediction id -> its payload (JSON, see the store);
- ``KEYS[2]`` sorted set ``pa``: waiting prediction id -> arrival time (the replica's
  clock): eviction (``max_pending``) and expiry (``ttl``) take the oldest first;
- ``KEYS[3]`` sorted set ``j``: joined id -> its prediction's arrival time, so that a
  second label or a resent prediction is a duplicate until the ``ttl`` ends (at most
  ``max_pending`` joined ids are kept, the oldest forgotten first);
- ``KEYS[4]`` hash ``o`` and ``KEYS[5]`` sorted set ``oa``: orphan labels (payload,
  arrival time), waiting for their prediction.

Ids of equal arrival time are ordered by id (a sorted set's tie rule), where SQLite
orders them by insertion. Scripts work on at most a chunk of ids each (the store sends a
large call as several scripts in one pipeline), so Redis is never blocked for long.
"""

from __future__ import annotations

# Deletes a list of members from a hash and a sorted set, in slices that stay well below
# Lua's limit on unpack() arguments.
_DROP = """
local function drop(hash, zset, ids)
  for s = 1, #ids, 500 do
    local e = math.min(s + 499, #ids)
    redis.call('HDEL', hash, unpack(ids, s, e))
    redis.call('ZREM', zset, unpack(ids, s, e))
  end
end
"""

#: ARGV: now, max_pending, then id, payload pairs (ids unique within the call).
#: Returns {duplicates, evicted, {id, label payload, ...} of the joined rows}.
ADD_PENDING = (
    _DROP
    + """
local now = ARGV[1]
local has_orphans = redis.call('ZCARD', KEYS[5]) > 0
local duplicates, joined = 0, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[3], id) then
    duplicates = duplicates + 1
  else
    local label = has_orphans and redis.call('HGET', KEYS[4], id)
    if label then
      redis.call('HDEL', KEYS[4], id)
      redis.call('ZREM', KEYS[5], id)
      redis.call('ZADD', KEYS[3], now, id)
      joined[#joined + 1] = id
      joined[#joined + 1] = label
    elseif redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
      redis.call('ZADD', KEYS[2], now, id)
    else
      duplicates = duplicates + 1
    end
  end
end
local evicted = 0
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  drop(KEYS[1], KEYS[2], oldest)
  evicted = #oldest
end
return {duplicates, evicted, joined}
"""
)

#: ARGV: now, max_orphans, max_joined, then id, label payload pairs (ids unique).
#: Returns {{id, prediction payload, ...} of the joined rows, {duplicate ids}, unmatched}.
ADD_LABELS = (
    _DROP
    + """
local now = ARGV[1]
local joined, duplicates = {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local prediction = redis.call('HGET', KEYS[1], id)
  if prediction then
    local arrived = redis.call('ZSCORE', KEYS[2], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], arrived, id)
    joined[#joined + 1] = id
    joined[#joined + 1] = prediction
  elseif redis.call('ZSCORE', KEYS[3], id)
      or redis.call('HSETNX', KEYS[4], id, ARGV[i + 1]) == 0 then
    duplicates[#duplicates + 1] = id
  else
    redis.call('ZADD', KEYS[5], now, id)
  end
end
local unmatched = 0
local excess = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[2])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[5], 0, excess - 1)
  drop(KEYS[4], KEYS[5], oldest)
  unmatched = #oldest
end
if #joined > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
end
return {joined, duplicates, unmatched}
"""
)

#: ARGV: prediction cutoff, orphan cutoff, max_joined, limit (rows per kind and call).
#: Drops waiting predictions and orphans that arrived before their cutoff (at most
#: ``limit`` of each), forgets joined ids older than the cutoff and beyond max_joined.
#: Returns {expired, unmatched}; the store calls it again while either equals ``limit``.
EXPIRE = (
    _DROP
    + """
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[4])
drop(KEYS[1], KEYS[2], old)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]) - 1)
local orphans = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[4])
drop(KEYS[4], KEYS[5], orphans)
return {#old, #orphans}
"""
)
