-- group.lua: create a reader's consumer group on a shard's feed and return
-- the feed's generation with it, atomically, so that a reader knows which
-- incarnation of the feed its group belongs to. See group.go.
--
-- KEYS: feed, writer mark.
-- ARGV: group, mode ("tail": destroy any group of that name and start after
--   the last entry; "after": the group was lost, start after ARGV[3] if the
--   feed is the one of generation ARGV[4], else at the start), id, known
--   generation, generation for a new mark.
-- Returns {start id, generation}.
local feed, mark = KEYS[1], KEYS[2]
local group, mode, after, known, newGen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

-- The mark is "<generation>/<epoch>:<seq>" (write.lua); a mark without a
-- generation has the empty one. A missing mark means no collector wrote
-- since the data was lost: start a generation, which the writer keeps.
local gen
local prev = redis.call('GET', mark)
if prev then
  gen = string.match(prev, '^([^/]*)/') or ''
else
  gen = newGen
  redis.call('SET', mark, gen .. '/')
end

local start = '0-0'
if mode == 'tail' then
  if redis.call('EXISTS', feed) == 1 then
    redis.call('XGROUP', 'DESTROY', feed, group)
    local lastEntry = redis.call('XREVRANGE', feed, '+', '-', 'COUNT', 1)
    if #lastEntry == 1 then start = lastEntry[1][1] end
  end
elseif gen == known then
  start = after
end
local r = redis.pcall('XGROUP', 'CREATE', feed, group, start, 'MKSTREAM')
if type(r) == 'table' and r.err and string.sub(r.err, 1, 9) ~= 'BUSYGROUP' then
  return redis.error_reply(r.err)
end
return {start, gen}
