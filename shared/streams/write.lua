-- write.lua: append a chunk of one shard's events to the shard's feed and,
-- under the same ids, to each channel's history; trim history by count and
-- age (limits per history key: they depend on the channel's kind), let
-- quiet histories expire, and record the channels. See write.go.
--
-- KEYS: feed, channel set, writer mark, fence, the h history keys of the
--   chunk, then the collector lease when the holder is compared (ARGV[3]
--   not empty).
-- ARGV: feed MAXLEN, epoch, lease holder ("": not compared), lease term
--   ("": no fence), generation for a new mark, h; then per history key (in
--   KEYS order): its MAXLEN, MINID ("0": none) and TTL in ms ("0": none),
--   both "0" when that history is not due its maintenance (write.go paces
--   it); then per event: index into KEYS of its history, seq, ch, ts, data.
-- Returns {n, last id, skipped} with n the events written, or {-1} when the
-- caller does not hold the lease. skipped lists channel, error pairs of
-- histories that refused their XADD (a key of another type).
local feed, chans, mark, fence = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local feedLen, epoch, holder, term, gen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = tonumber(ARGV[6])
local first = 7 + 3 * h
-- limit returns the j-th limit (0: MAXLEN, 1: MINID, 2: TTL) of KEYS[k].
local function limit(k, j) return ARGV[7 + 3 * (k - 5) + j] end

-- Fence: a collector that lost its lease writes nothing. The holder is
-- compared where the lease shares the server (not on Cluster); the term
-- everywhere: the shard's fence keeps the highest term that wrote to it,
-- and a lower one is a holder from before.
if holder ~= '' and redis.call('GET', KEYS[#KEYS]) ~= holder then
  return {-1}
end
if term ~= '' then
  local f = redis.call('GET', fence)
  if f and tonumber(f) > tonumber(term) then return {-1} end
  if f ~= term then redis.call('SET', fence, term) end
end

-- The mark is "<generation>/<epoch>:<seq>". The generation names this
-- incarnation of the shard's data: it is kept while the mark lives, and a
-- new one starts when the mark is gone (Redis restarted empty, FLUSHALL).
-- Readers compare it to tell a new feed from the one they were reading.
local done = -1
local prev = redis.call('GET', mark)
if prev then
  local g, rest = string.match(prev, '^([^/]*)/(.*)$')
  if g then gen = g else gen, rest = '', prev end -- a mark without generation
  local e, s = string.match(rest, '^(.+):(%d+)$')
  if e == epoch then done = tonumber(s) end
end

local touched, names = {}, {}
for i = first, #ARGV, 5 do
  local k = tonumber(ARGV[i])
  if tonumber(ARGV[i+1]) > done and not touched[k] then
    touched[k] = true
    names[#names+1] = ARGV[i+2]
  end
end
if #names == 0 then
  -- All written before (a retry). Set the mark again all the same: a WAIT
  -- after this call must cover the earlier write, and WAIT only waits for
  -- what its own connection wrote.
  redis.call('SET', mark, prev)
  return {0, '', {}}
end
-- Everything that can fail the script runs before the first XADD.
redis.call('SADD', chans, unpack(names))

local bad, reported, skipped, n, last, lastSeq = {}, {}, {}, 0, '', nil
for i = first, #ARGV, 5 do
  local k, seq, ch, ts, data = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  if tonumber(seq) > done then
    last = redis.call('XADD', feed, 'MAXLEN', '~', feedLen, '*', 'ch', ch, 'ts', ts, 'data', data)
    if not bad[k] then
      local r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', limit(k, 0), last, 'ch', ch, 'ts', ts, 'data', data)
      if type(r) == 'table' and r.err then
        -- Another type: skip the key for the rest of the chunk. Another
        -- error (an id at or below the history's top, written by hand)
        -- fails this event only.
        if string.sub(r.err, 1, 9) == 'WRONGTYPE' then bad[k] = true end
        if not reported[k] then
          reported[k] = true
          skipped[#skipped+1] = ch
          skipped[#skipped+1] = r.err
        end
      end
    end
    lastSeq = seq
    n = n + 1
  end
end
redis.call('SET', mark, gen .. '/' .. epoch .. ':' .. lastSeq)
for k in pairs(touched) do
  if not bad[k] then
    local minID, ttl = limit(k, 1), limit(k, 2)
    if minID ~= '0' then redis.pcall('XTRIM', KEYS[k], 'MINID', '~', minID) end
    if ttl ~= '0' then redis.pcall('PEXPIRE', KEYS[k], ttl) end
  end
end
return {n, last, skipped}
