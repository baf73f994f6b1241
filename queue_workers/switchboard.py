"""The switchboard: waiting calls and operators in Redis, changed only by Lua scripts.

Every change of a call or an operator is one Lua script, so it is atomic across any number
of worker processes: an operator is never offered two calls at once, and a call is never
accepted by two people. Each offer has a token; a late or repeated webhook that names an old
token changes nothing.

An offer rings one or more *targets*, each with its own outbound call (a *leg*): ``op:<id>``
(an operator), ``sup:<number>`` (a supervisor's phone), ``duty:<number>`` (a duty phone).
A normal offer rings one operator (``ring=single``); an SOS call that waited
``SOS_ESCALATE_SECONDS`` is *escalated* and from then on rings in rounds everyone available
plus the supervisors (``ring=all``), and from ``SOS_FALLBACK_SECONDS`` the duty phones too
(stage ``duty``). The first leg whose person presses 1 wins (``accepted``); the caller is then
bridged to them (``connected``). A round ends when every leg has ended or its deadline passed;
the call goes back to its place in line. Only an unanswered *single* offer is someone's miss.

Keys (prefix ``cc:``): ``waiting`` (zset of CallSids by priority then arrival), ``call:<sid>``
(hash), ``legs:<sid>:<token>`` (hash: target -> placing/ringing/answered/accepted/ended,
``sid:<target>`` -> the leg's CallSid), ``op:<id>`` (hash), ``available`` (zset of operator
ids by idle-since), ``offers`` (zset of ``sid|token`` by deadline), ``timers`` (zset of
``kind|arg`` by due time), ``callbacks`` (zset of abandoned SOS calls awaiting a callback,
by hang-up time), ``presence``, ``journal`` and ``opened`` (streams for the store),
``dispatch-pending`` (set while a dispatch job is queued and has not started: a burst of new
calls queues one).

A new call is one script (``arrive``): its place in line, its SOS timers and whether it must
queue a dispatch job, on Redis's own clock (``TIME`` inside the script) — one round trip. The
SOS webhook hands its call log (the call's row and first events, ``opening``) to the same
script, which appends it to ``opened`` with the position it gave: the webhook writes nothing
to SQLite, and the log is kept as safely as the call's place in line (the timekeeper, the
dispatch job and ``queue_workers.openings`` store it).

A caller who hangs up before anyone pressed 1 on an SOS call arms the ``abandoned|<sid>``
timer in the same script that marks the call gone, so the callback decision is recorded before
anything else can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import redis

PREFIX = "cc:"
WAITING = PREFIX + "waiting"
AVAILABLE = PREFIX + "available"
OFFERS = PREFIX + "offers"
TIMERS = PREFIX + "timers"
# Set while a dispatch job is queued and not yet started (``Switchboard.arrive`` sets it).
DISPATCH_PENDING = PREFIX + "dispatch-pending"
OPERATORS = PREFIX + "operators"
PRESENCE = PREFIX + "presence"
JOURNAL = PREFIX + "journal"
OPENED = PREFIX + "opened"
CALLBACKS = PREFIX + "callbacks"
# A waiting call's score: priority band, then arrival in ms, then 6 bits of arrival counter
# (ADD_CALL multiplies by 64), all exact in a double: 2 * 2**50 + 1.8e12 * 64 < 2**53.
BAND = 2**50 // 64


class Priority(IntEnum):
    """Who is served first: SOS before everything, then callbacks, then the hotline."""

    SOS = 0
    CALLBACK = 1
    HOTLINE = 2


class OperatorState(StrEnum):
    """Presence of an operator."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    AWAY = "away"


class Stage(StrEnum):
    """How hard the switchboard tries for an SOS call."""

    NORMAL = ""
    ESCALATED = "escalated"
    DUTY = "duty"


# States a person (or the console) may set; the others belong to the switchboard.
MANUAL_STATES = frozenset({OperatorState.OFFLINE, OperatorState.AVAILABLE, OperatorState.AWAY})


def op_target(op_id: str) -> str:
    """The target naming an operator."""
    return f"op:{op_id}"


def split_target(target: str) -> tuple[str, str]:
    """``op:op01`` -> (``op``, ``op01``); ``sup:+86…``; ``duty:+86…``."""
    kind, _, value = target.partition(":")
    return kind, value


@dataclass(frozen=True)
class Offer:
    """Targets to ring for a call under the call's offer token.

    ``seq`` numbers every offer the switchboard ever made, in the order it made them;
    ``targets`` are the ones this change added (a widened offer keeps its token).
    """

    call_sid: str
    token: int
    targets: tuple[str, ...]
    seq: int = 0

    @property
    def operator_ids(self) -> tuple[str, ...]:
        """The operators among the targets."""
        return tuple(v for k, v in map(split_target, self.targets) if k == "op")


@dataclass(frozen=True)
class LegEnd:
    """What the end of one leg did.

    ``result``: ``partial`` (other legs still ring), ``released`` (the round is over, the
    call waits again), ``ended`` (the person who took the call hung up), ``requeued`` (the
    person who pressed 1 was gone before the caller joined), ``stale`` (nothing changed).
    """

    result: str
    now_away: tuple[str, ...] = ()
    stage: str = ""
    operator: str = ""


@dataclass(frozen=True)
class Gone:
    """What a caller hanging up did: the state they were in, operators freed, legs to end."""

    state: str
    freed: tuple[str, ...] = ()
    legs: tuple[str, ...] = ()
    callback_armed: bool = False


_LIB = """
local P = 'cc:'
local SEQ = 64
local function call_key(sid) return P .. 'call:' .. sid end
local function op_key(id) return P .. 'op:' .. id end
local function legs_key(sid, token) return P .. 'legs:' .. sid .. ':' .. token end
local function split(s)
  local out = {}
  for part in string.gmatch(s or '', '[^,]+') do table.insert(out, part) end
  return out
end
local function has(skills, skill)
  return string.find(skills or '', ',' .. skill .. ',', 1, true) ~= nil
end
local function op_of(target)
  if string.sub(target, 1, 3) == 'op:' then return string.sub(target, 4) end
  return nil
end
-- Every presence change goes through here, so the stream is a complete record for reports.
local function op_state(id, state, now, ...)
  redis.call('HSET', op_key(id), 'state', state, 'since', now, ...)
  redis.call('XADD', P .. 'presence', 'MAXLEN', '~', 100000, '*', 'op', id, 'state', state,
             'at', now)
end
-- Offers go to the call timeline through this stream, atomically with the claim itself, so
-- a worker killed right after claiming cannot lose the record (the timekeeper stores it).
local function journal(sid, kind, token, targets, seq, now)
  redis.call('XADD', P .. 'journal', 'MAXLEN', '~', 100000, '*', 'sid', sid, 'kind', kind,
             'offer', token, 'operators', targets, 'seq', seq, 'at', now)
end
local function make_available(id, now, idle_since)
  op_state(id, 'available', now, 'idle_since', idle_since, 'call', '', 'offer', '')
  redis.call('ZADD', P .. 'available', idle_since, id)
end
-- Free an operator still ringing for this call and offer (a newer offer is not touched).
local function free_op(id, sid, token, now)
  local k = op_key(id)
  if redis.call('HGET', k, 'call') == sid and redis.call('HGET', k, 'offer') == token then
    make_available(id, now, redis.call('HGET', k, 'idle_since') or now)
    return true
  end
  return false
end
local function ringing(id, sid, token, now)
  redis.call('ZREM', P .. 'available', id)
  op_state(id, 'ringing', now, 'call', sid, 'offer', token)
end
local function set_deadline(member, deadline)
  local cur = redis.call('ZSCORE', P .. 'offers', member)
  if not cur or tonumber(cur) < tonumber(deadline) then
    redis.call('ZADD', P .. 'offers', deadline, member)
  end
end
-- Everyone a ring-all round rings: every available operator and the call's extra phones.
local function everyone(sid)
  local out = {}
  for _, id in ipairs(redis.call('ZRANGE', P .. 'available', 0, -1)) do
    table.insert(out, 'op:' .. id)
  end
  for _, t in ipairs(split(redis.call('HGET', call_key(sid), 'extra'))) do
    table.insert(out, t)
  end
  return out
end
local function start_offer(sid, targets, ring, now, deadline)
  local key = call_key(sid)
  local token = tostring(redis.call('HINCRBY', key, 'offer', 1))
  local csv = table.concat(targets, ',')
  redis.call('ZREM', P .. 'waiting', sid)
  redis.call('HSET', key, 'state', 'offered', 'targets', csv, 'ring', ring, 'accepted', '')
  local lk = legs_key(sid, token)
  for _, t in ipairs(targets) do
    redis.call('HSET', lk, t, 'placing')
    local id = op_of(t)
    if id then ringing(id, sid, token, now) end
  end
  redis.call('EXPIRE', lk, 86400)
  redis.call('ZADD', P .. 'offers', deadline, sid .. '|' .. token)
  local seq = redis.call('INCR', P .. 'claims')
  journal(sid, 'offered', token, csv, seq, now)
  return {sid, token, csv, seq}
end
local function back_in_line(sid)
  local key = call_key(sid)
  redis.call('HSET', key, 'state', 'waiting', 'targets', '', 'accepted', '')
  redis.call('ZADD', P .. 'waiting', redis.call('HGET', key, 'score'), sid)
end
-- End every leg of an offer that has not ended; returns the CallSids of those that exist.
local function end_legs(sid, token, now, except)
  local lk = legs_key(sid, token)
  local out = {}
  for _, t in ipairs(split(redis.call('HGET', call_key(sid), 'targets'))) do
    if t ~= except then
      local s = redis.call('HGET', lk, t)
      if s and s ~= 'ended' then
        redis.call('HSET', lk, t, 'ended')
        local leg = redis.call('HGET', lk, 'sid:' .. t)
        if leg then table.insert(out, leg) end
      end
      local id = op_of(t)
      if id then free_op(id, sid, token, now) end
    end
  end
  return out
end
"""

# The arrival script runs on every new call: only the definitions it uses, not ``_LIB``'s
# twenty functions built again on each run (measured: 56-75 -> 30-40 us of Redis's time a call).
_ARRIVE_LIB = """
local P = 'cc:'
local SEQ = 64
local function call_key(sid) return P .. 'call:' .. sid end
"""

_ADD_CALL = (
    _ARRIVE_LIB
    + """
-- ARGV: sid, queue, priority, need, dialect, since_ms, now, band, origin, caller, line,
-- reason (why the caller wants a person, for the whisper), escalate_ms, duty_ms, wake_px,
-- opening. An empty now is Redis's TIME; an empty since_ms is now (the caller arrives now).
-- With escalate_ms / duty_ms the new call's escalation and duty-stage timers are armed,
-- counted from since_ms; with wake_px, while an operator is available, the dispatch-pending
-- mark is set (NX) and returned as 1 when this call must queue a dispatch job; an opening
-- (the webhook's call log, JSON) goes to the opened stream with the position given. One
-- round trip for everything a new call needs.
local function opened(result)
  if (ARGV[16] or '') ~= '' then
    redis.call('XADD', P .. 'opened', 'MAXLEN', '~', 100000, '*', 'sid', ARGV[1],
               'opening', ARGV[16], 'position', result[2])
  end
  return result
end
local now
if (ARGV[7] or '') == '' then
  redis.replicate_commands()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[7])
end
local since = now
if (ARGV[6] or '') ~= '' then since = tonumber(ARGV[6]) end
local since_text = string.format('%d', since)
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if state and state ~= 'gone' and state ~= 'done' then
  local rank = redis.call('ZRANK', P .. 'waiting', ARGV[1])
  return opened({0, rank and (rank + 1) or 0, 0, since_text})
end
if state then return opened({0, 0, 0, since_text}) end
-- Arrival order within one millisecond comes from a per-millisecond counter (FIFO for up to
-- 64 calls in the same millisecond).
local seq_key = P .. 'seq:' .. since_text
local seq = redis.call('INCR', seq_key)
if seq == 1 then redis.call('PEXPIRE', seq_key, 2000) end
local score = string.format('%d', (tonumber(ARGV[8]) + since) * SEQ + math.min(seq - 1, SEQ - 1))
redis.call('HSET', key, 'sid', ARGV[1], 'queue', ARGV[2], 'priority', ARGV[3], 'need', ARGV[4],
           'dialect', ARGV[5], 'since', since_text, 'score', score, 'state', 'waiting',
           'offer', 0, 'targets', '', 'added', string.format('%d', now), 'origin', ARGV[9],
           'stage', '', 'extra', '', 'caller', ARGV[10], 'line', ARGV[11],
           'reason', ARGV[12] or '')
redis.call('ZADD', P .. 'waiting', score, ARGV[1])
local waited = now - since
if (ARGV[13] or '') ~= '' then
  local at = now + math.max(0, tonumber(ARGV[13]) - waited)
  redis.call('ZADD', P .. 'timers', string.format('%d', at), 'escalate|' .. ARGV[1])
end
if (ARGV[14] or '') ~= '' then
  local at = now + math.max(0, tonumber(ARGV[14]) - waited)
  redis.call('ZADD', P .. 'timers', string.format('%d', at), 'duty|' .. ARGV[1])
end
local wake = 0
-- Nobody available: no dispatch to queue (it could only find nobody). Whoever becomes
-- available wakes one (set_state's callers, the timekeeper's nudge), so a storm of calls
-- with every operator busy costs the workers nothing.
if (ARGV[15] or '') ~= '' and redis.call('ZCARD', P .. 'available') > 0 then
  if redis.call('SET', P .. 'dispatch-pending', 1, 'NX', 'PX', ARGV[15]) then wake = 1 end
end
return opened({1, redis.call('ZRANK', P .. 'waiting', ARGV[1]) + 1, wake, since_text})
"""
)

_CLAIM = (
    _LIB
    + """
-- ARGV: now, deadline. Offer the first waiting call that available operators can take: a
-- normal call to the best operator, an escalated one to everyone (ring-all round).
local ops = redis.call('ZRANGE', P .. 'available', 0, -1)
if #ops == 0 then return nil end
local head = redis.call('ZRANGE', P .. 'waiting', 0, 0)[1]
if not head then return nil end
if (redis.call('HGET', call_key(head), 'stage') or '') ~= '' then
  return start_offer(head, everyone(head), 'all', ARGV[1], ARGV[2])
end
local need = redis.call('HGET', call_key(head), 'need') or ''
local dialect = redis.call('HGET', call_key(head), 'dialect') or ''
local best, best_rank = nil, 99
for _, id in ipairs(ops) do
  local skills = redis.call('HGET', op_key(id), 'skills')
  local rank = 3
  if need == '' or has(skills, need) then
    rank = 2
    if dialect ~= '' and has(skills, dialect) then rank = 1 end
  elseif dialect ~= '' and has(skills, dialect) then
    rank = 2.5
  end
  if rank < best_rank then best, best_rank = id, rank end
  if rank == 1 then break end
end
return start_offer(head, {'op:' .. best}, 'single', ARGV[1], ARGV[2])
"""
)

_WIDEN = (
    _LIB
    + """
-- ARGV: sid, now, deadline, stage, extra targets (csv). Escalate a call: raise its stage, add
-- phones to every round, and ring everyone now (a new round, or added to the one ringing).
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if state ~= 'waiting' and state ~= 'offered' then return nil end
local rank = {[''] = 0, escalated = 1, duty = 2}
if rank[ARGV[4]] > rank[redis.call('HGET', key, 'stage') or ''] then
  redis.call('HSET', key, 'stage', ARGV[4])
end
local extra = split(redis.call('HGET', key, 'extra'))
local known = {}
for _, t in ipairs(extra) do known[t] = true end
for _, t in ipairs(split(ARGV[5])) do
  if not known[t] then table.insert(extra, t); known[t] = true end
end
redis.call('HSET', key, 'extra', table.concat(extra, ','))
if state == 'waiting' then
  local targets = everyone(ARGV[1])
  if #targets == 0 then return nil end
  return start_offer(ARGV[1], targets, 'all', ARGV[2], ARGV[3])
end
local token = redis.call('HGET', key, 'offer')
local lk = legs_key(ARGV[1], token)
local targets = split(redis.call('HGET', key, 'targets'))
local added = {}
for _, t in ipairs(everyone(ARGV[1])) do
  if redis.call('HEXISTS', lk, t) == 0 then
    redis.call('HSET', lk, t, 'placing')
    local id = op_of(t)
    if id then ringing(id, ARGV[1], token, ARGV[2]) end
    table.insert(targets, t)
    table.insert(added, t)
  end
end
redis.call('HSET', key, 'targets', table.concat(targets, ','), 'ring', 'all')
set_deadline(ARGV[1] .. '|' .. token, ARGV[3])
if #added == 0 then return {ARGV[1], token, '', 0} end
local seq = redis.call('INCR', P .. 'claims')
journal(ARGV[1], 'widened', token, table.concat(added, ','), seq, ARGV[2])
return {ARGV[1], token, table.concat(added, ','), seq}
"""
)

_LEG_PLACED = (
    _LIB
    + """
-- ARGV: sid, token, target, leg sid. 1 while the leg is still wanted, else 0 (end it).
local lk = legs_key(ARGV[1], ARGV[2])
redis.call('HSET', lk, 'sid:' .. ARGV[3], ARGV[4])
if redis.call('HGET', lk, ARGV[3]) == 'placing' then
  redis.call('HSET', lk, ARGV[3], 'ringing')
  return 1
end
local s = redis.call('HGET', lk, ARGV[3])
if s == 'ringing' or s == 'answered' then return 1 end
return 0
"""
)

_LEG_ANSWERED = (
    _LIB
    + """
-- ARGV: sid, token, target, deadline, leg sid. A person picked up: the offer lives on while
-- they hear the whisper (one clock for both).
local key = call_key(ARGV[1])
local lk = legs_key(ARGV[1], ARGV[2])
local s = redis.call('HGET', lk, ARGV[3])
if redis.call('HGET', key, 'state') ~= 'offered' or redis.call('HGET', key, 'offer') ~= ARGV[2]
   or (s ~= 'placing' and s ~= 'ringing' and s ~= 'answered') then
  return 0
end
redis.call('HSET', lk, ARGV[3], 'answered', 'sid:' .. ARGV[3], ARGV[5])
set_deadline(ARGV[1] .. '|' .. ARGV[2], ARGV[4])
return 1
"""
)

_ACCEPT = (
    _LIB
    + """
-- ARGV: sid, token, target, now, deadline. The first person to press 1 wins; everyone else
-- is freed and their legs are returned to be ended. ``deadline``: the caller must be bridged
-- by then, or the call goes back in line.
local key = call_key(ARGV[1])
local lk = legs_key(ARGV[1], ARGV[2])
if redis.call('HGET', key, 'state') ~= 'offered' or redis.call('HGET', key, 'offer') ~= ARGV[2]
   or redis.call('HGET', lk, ARGV[3]) ~= 'answered' then
  return {0, ''}
end
local others = end_legs(ARGV[1], ARGV[2], ARGV[4], ARGV[3])
redis.call('HSET', lk, ARGV[3], 'accepted')
redis.call('HSET', key, 'state', 'accepted', 'accepted', ARGV[3], 'answered', ARGV[4])
redis.call('ZADD', P .. 'offers', ARGV[5], ARGV[1] .. '|' .. ARGV[2])
local id = op_of(ARGV[3])
if id then op_state(id, 'on_call', ARGV[4], 'misses', 0, 'call', ARGV[1], 'offer', ARGV[2]) end
return {1, table.concat(others, ',')}
"""
)

_BRIDGED = (
    _LIB
    + """
-- ARGV: sid, token, now. The caller reached the person who pressed 1.
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if redis.call('HGET', key, 'offer') ~= ARGV[2] then return 0 end
if state == 'connected' then return 1 end
if state ~= 'accepted' then return 0 end
redis.call('HSET', key, 'state', 'connected', 'connected_at', ARGV[3])
redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. ARGV[2])
return 1
"""
)

_END_CONNECTED = """
local function end_connected(sid, now, wrapup_due)
  local key = call_key(sid)
  local target = redis.call('HGET', key, 'accepted') or ''
  redis.call('HSET', key, 'state', 'done', 'ended', now)
  local id = op_of(target)
  if id and redis.call('HGET', op_key(id), 'state') == 'on_call' then
    op_state(id, 'wrap_up', now, 'call', '', 'offer', '')
    redis.call('ZADD', P .. 'timers', wrapup_due, 'wrapup|' .. id)
  end
  return target
end
"""

_LEG_ENDED = (
    _LIB
    + _END_CONNECTED
    + """
-- ARGV: sid, token, target, now, miss (0/1), max_misses, wrapup_due.
local sid, token, target, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = call_key(sid)
local state = redis.call('HGET', key, 'state')
local lk = legs_key(sid, token)
local s = redis.call('HGET', lk, target)
if redis.call('HGET', key, 'offer') == token and redis.call('HGET', key, 'accepted') == target
   and (state == 'accepted' or state == 'connected') then
  redis.call('HSET', lk, target, 'ended')
  if state == 'connected' then
    return {'ended', '', '', end_connected(sid, now, ARGV[7])}
  end
  -- Pressed 1, then gone before the caller was bridged: the caller waits again.
  redis.call('ZREM', P .. 'offers', sid .. '|' .. token)
  back_in_line(sid)
  local id = op_of(target)
  if id and redis.call('HGET', op_key(id), 'call') == sid then
    make_available(id, now, now)
  end
  return {'requeued', '', redis.call('HGET', key, 'stage') or '', target}
end
if not s or s == 'ended' or s == 'accepted' then return {'stale'} end
redis.call('HSET', lk, target, 'ended')
if state ~= 'offered' or redis.call('HGET', key, 'offer') ~= token then return {'stale'} end
local targets = split(redis.call('HGET', key, 'targets'))
local single = #targets == 1 and redis.call('HGET', key, 'ring') == 'single'
local away = ''
local id = op_of(target)
if id and redis.call('HGET', op_key(id), 'call') == sid
   and redis.call('HGET', op_key(id), 'offer') == token then
  if single and ARGV[5] == '1' then
    local misses = redis.call('HINCRBY', op_key(id), 'misses', 1)
    if misses >= tonumber(ARGV[6]) then
      op_state(id, 'away', now, 'call', '', 'offer', '')
      away = id
    else
      make_available(id, now, now)
    end
  else
    make_available(id, now, redis.call('HGET', op_key(id), 'idle_since') or now)
  end
end
for _, t in ipairs(targets) do
  if redis.call('HGET', lk, t) ~= 'ended' then return {'partial', away, '', ''} end
end
redis.call('ZREM', P .. 'offers', sid .. '|' .. token)
back_in_line(sid)
return {'released', away, redis.call('HGET', key, 'stage') or '', ''}
"""
)

_EXPIRE = (
    _LIB
    + """
-- ARGV: sid, token, now. An offer past its deadline (nobody pressed 1 in time, the caller was
-- never bridged, or a worker died): back in line, nobody's miss; returns the legs to end.
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. ARGV[2])
if (state ~= 'offered' and state ~= 'accepted') or redis.call('HGET', key, 'offer') ~= ARGV[2] then
  return {0, '', ''}
end
local legs = end_legs(ARGV[1], ARGV[2], ARGV[3], '')
back_in_line(ARGV[1])
return {1, table.concat(legs, ','), redis.call('HGET', key, 'stage') or ''}
"""
)

_GONE = (
    _LIB
    + """
-- ARGV: sid, now, gone/left. The caller hung up before a person took the call (``gone``) or
-- left the line for a direct dial of the duty phones (``left``): leave the line, free
-- everyone ringing for it, return their legs to end; a gone SOS call arms the abandoned timer.
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if state ~= 'waiting' and state ~= 'offered' and state ~= 'accepted' then
  return {state or '', '', ''}
end
redis.call('ZREM', P .. 'waiting', ARGV[1])
local freed, legs = {}, {}
if state ~= 'waiting' then
  local token = redis.call('HGET', key, 'offer')
  redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. token)
  for _, t in ipairs(split(redis.call('HGET', key, 'targets'))) do
    local id = op_of(t)
    if id and redis.call('HGET', op_key(id), 'call') == ARGV[1] then table.insert(freed, id) end
  end
  legs = end_legs(ARGV[1], token, ARGV[2], '')
end
redis.call('HSET', key, 'state', ARGV[3], 'ended', ARGV[2])
if ARGV[3] == 'gone' and redis.call('HGET', key, 'queue') == 'sos' then
  redis.call('ZADD', P .. 'timers', ARGV[2], 'abandoned|' .. ARGV[1])
  if (redis.call('HGET', key, 'origin') or '') == '' then
    redis.call('ZADD', P .. 'callbacks', ARGV[2], ARGV[1])
  end
end
local armed = 0
if ARGV[3] == 'gone' and redis.call('HGET', key, 'queue') == 'sos' then armed = 1 end
return {state, table.concat(freed, ','), table.concat(legs, ','), armed}
"""
)

_END = (
    _LIB
    + _END_CONNECTED
    + """
-- ARGV: sid, now, wrapup_due. A connected call ended: the person who took it wraps up.
if redis.call('HGET', call_key(ARGV[1]), 'state') ~= 'connected' then return '' end
return end_connected(ARGV[1], ARGV[2], ARGV[3])
"""
)

_SET_STATE = (
    _LIB
    + """
-- ARGV: id, state, now, expected old state ('' for any). Manual presence: an operator who is
-- ringing or on a call keeps that state (the switchboard ends it); a deactivated operator is
-- never made available.
local k = op_key(ARGV[1])
if redis.call('EXISTS', k) == 0 then return {'', 'unknown'} end
local old = redis.call('HGET', k, 'state') or 'offline'
if ARGV[4] ~= '' and old ~= ARGV[4] then return {old, 'changed'} end
if ARGV[2] == 'available' and redis.call('HGET', k, 'active') == '0' then
  return {old, 'inactive'}
end
if old == ARGV[2] then return {old, 'same'} end
if old == 'ringing' or old == 'on_call' then return {old, 'busy'} end
if ARGV[2] == 'available' then
  local idle = redis.call('HGET', k, 'idle_since')
  if old == 'wrap_up' or not idle or idle == '' then idle = ARGV[3] end
  make_available(ARGV[1], ARGV[3], idle)
  redis.call('HSET', k, 'misses', 0)
else
  redis.call('ZREM', P .. 'available', ARGV[1])
  op_state(ARGV[1], ARGV[2], ARGV[3])
end
return {old, 'ok'}
"""
)

_DUE = """
-- KEYS: zset. ARGV: now, limit. Pop the members due by now.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZREM', KEYS[1], m) end
return due
"""


@dataclass(frozen=True)
class Arrival:
    """What putting a call in line did: new?, its position, must it wake a dispatch, and when
    it arrived (ms on the switchboard's clock)."""

    added: bool
    position: int
    wake: bool
    since_ms: int


class Switchboard:
    """The call centre's live state in Redis; ``now`` is milliseconds from the given clock."""

    def __init__(self, conn: redis.Redis, clock: Callable[[], float] | None = None) -> None:
        # ``clock`` (seconds) is for tests that move time by hand; without it every web and
        # worker process reads Redis's own clock, so deadlines written on one host and
        # compared on another never depend on the hosts' clocks agreeing.
        self.redis = conn
        self.clock = clock
        self._scripts = {
            name: conn.register_script(source)
            for name, source in (
                ("add", _ADD_CALL),
                ("claim", _CLAIM),
                ("widen", _WIDEN),
                ("leg_placed", _LEG_PLACED),
                ("leg_answered", _LEG_ANSWERED),
                ("accept", _ACCEPT),
                ("bridged", _BRIDGED),
                ("leg_ended", _LEG_ENDED),
                ("expire", _EXPIRE),
                ("gone", _GONE),
                ("end", _END),
                ("set_state", _SET_STATE),
                ("due", _DUE),
            )
        }

    def now(self) -> int:
        """The clock in integer milliseconds (Redis's ``TIME`` unless a clock was given)."""
        if self.clock is None:
            seconds, micros = self.redis.time()
            return int(seconds) * 1000 + int(micros) // 1000
        return int(self.clock() * 1000)

    def _run(self, name: str, *args: Any, keys: Iterable[str] = ()) -> Any:
        return self._scripts[name](keys=list(keys), args=list(args))

    # -- operators ------------------------------------------------------------------------

    def register_operator(
        self, op_id: str, *, name: str, phone: str, skills: Iterable[str], active: bool = True
    ) -> None:
        """Make an operator known (or update their phone, skills and whether they are active).

        Presence is kept, except that a deactivated operator leaves the available line at once
        and is never made available again.
        """
        skill_list = "," + ",".join(sorted(skills)) + ","
        key = f"{PREFIX}op:{op_id}"
        pipe = self.redis.pipeline()
        pipe.hset(
            key,
            mapping={
                "id": op_id,
                "name": name,
                "phone": phone,
                "skills": skill_list,
                "active": int(active),
            },
        )
        pipe.hsetnx(key, "state", OperatorState.OFFLINE.value)
        pipe.sadd(OPERATORS, op_id)
        pipe.execute()
        if not active:
            self.set_state(op_id, OperatorState.OFFLINE)

    def set_state(
        self, op_id: str, state: OperatorState, *, expected: OperatorState | None = None
    ) -> tuple[str, str]:
        """Change an operator's presence; returns (old state, result).

        Results: ok, same, busy (ringing or on a call), changed (not in ``expected``),
        inactive (a deactivated operator cannot be made available), unknown.
        """
        want = expected.value if expected else ""
        old, result = self._run("set_state", op_id, state.value, self.now(), want)
        return _text(old), _text(result)

    def presence_changes(self, count: int = 1000) -> list[tuple[str, str, str, int]]:
        """Presence changes not yet stored: (stream id, operator, state, at_ms)."""
        return [
            (entry_id, f["op"], f["state"], int(f["at"]))
            for entry_id, f in self.read_stream(PRESENCE, count)
        ]

    def journal(self, count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        """Call-timeline records not yet stored (offers), with their stream ids."""
        return self.read_stream(JOURNAL, count)

    def openings(self, count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        """Call logs new calls handed in (``arrive``) not yet stored, with their stream ids."""
        return self.read_stream(OPENED, count)

    def read_stream(self, key: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """The oldest ``count`` entries of one of the switchboard's streams."""
        return [(_text(i), _decode(f)) for i, f in self.redis.xrange(key, count=count)]

    def trim(self, key: str, upto: str) -> None:
        """Forget a stream's entries up to and including ``upto`` (once stored)."""
        self.redis.xtrim(key, minid=upto, approximate=False)
        self.redis.xdel(key, upto)

    def operator(self, op_id: str) -> dict[str, str]:
        """One operator's hash."""
        return _decode(self.redis.hgetall(f"{PREFIX}op:{op_id}"))

    def operators(self) -> list[dict[str, str]]:
        """Every known operator."""
        ids = sorted(_text(i) for i in self.redis.smembers(OPERATORS))
        return [self.operator(op_id) for op_id in ids]

    def available_with(self, skill: str) -> int:
        """How many available operators have ``skill``."""
        ids = [_text(i) for i in self.redis.zrange(AVAILABLE, 0, -1)]
        return sum(1 for i in ids if f",{skill}," in self.operator(i).get("skills", ""))

    # -- calls ----------------------------------------------------------------------------

    def add_call(
        self,
        sid: str,
        *,
        queue: str,
        priority: Priority,
        need: str,
        dialect: str,
        since_ms: int,
        origin: str = "",
        caller: str = "",
        line: str = "",
        reason: str = "",
    ) -> tuple[bool, int]:
        """Put a call in the waiting line; returns (new?, 1-based position).

        ``origin`` names the SOS call a callback leg belongs to; ``caller`` and ``line`` are
        the numbers a callback needs, kept here so it never depends on the database;
        ``reason`` is why the caller wants a person (``callflows.operator.Reason``), the
        first thing the person rung for the call hears.
        """
        arrival = self.arrive(
            sid,
            queue=queue,
            priority=priority,
            need=need,
            dialect=dialect,
            since_ms=since_ms,
            origin=origin,
            caller=caller,
            line=line,
            reason=reason,
        )
        return arrival.added, arrival.position

    def arrive(
        self,
        sid: str,
        *,
        queue: str,
        priority: Priority,
        need: str,
        dialect: str,
        since_ms: int | None = None,
        origin: str = "",
        caller: str = "",
        line: str = "",
        reason: str = "",
        escalate_ms: int | None = None,
        duty_ms: int | None = None,
        wake_px: int = 0,
        opening: str = "",
    ) -> Arrival:
        """``add_call`` and everything a new call needs, in one script (one round trip).

        ``since_ms`` None: the call arrives now, on the switchboard's clock. ``escalate_ms``
        and ``duty_ms`` arm a new SOS call's timers (counted from its arrival); ``wake_px``
        sets the dispatch-pending mark for that long and says whether this call must queue
        the dispatch job (``Arrival.wake``: never while nobody is available); ``opening``
        (JSON) is the call's log for the store, appended to the ``opened`` stream with the
        position (``openings``).
        """
        now = "" if self.clock is None else self.now()
        added, position, wake, since = self._run(
            "add",
            sid,
            queue,
            int(priority),
            need,
            dialect or "",
            "" if since_ms is None else since_ms,
            now,
            int(priority) * BAND,
            origin,
            caller,
            line,
            reason,
            "" if escalate_ms is None else escalate_ms,
            "" if duty_ms is None else duty_ms,
            wake_px or "",
            opening,
        )
        return Arrival(bool(added), int(position), bool(wake), int(since))

    def call(self, sid: str) -> dict[str, str]:
        """One call's hash (empty when unknown)."""
        return _decode(self.redis.hgetall(f"{PREFIX}call:{sid}"))

    def legs(self, sid: str, token: int | str) -> dict[str, str]:
        """The legs of one offer: target -> state, and ``sid:<target>`` -> leg CallSid."""
        return _decode(self.redis.hgetall(f"{PREFIX}legs:{sid}:{token}"))

    def position(self, sid: str) -> int | None:
        """1-based position of a waiting call."""
        rank = self.redis.zrank(WAITING, sid)
        return None if rank is None else rank + 1

    def waiting(self) -> list[str]:
        """CallSids waiting, in the order they will be served."""
        return [_text(s) for s in self.redis.zrange(WAITING, 0, -1)]

    def claim(self, ring_ms: int) -> Offer | None:
        """Offer the head of the line to available operators (one, or all when escalated)."""
        now = self.now()
        return _offer(self._run("claim", now, now + ring_ms))

    def widen(self, sid: str, stage: Stage, extra: Iterable[str], ring_ms: int) -> Offer | None:
        """Escalate a waiting or ringing call to ``stage`` with ``extra`` targets in every round.

        Returns the targets to ring now (added to the offer ringing, or a new round).
        """
        now = self.now()
        result = self._run("widen", sid, now, now + ring_ms, stage.value, ",".join(extra))
        return _offer(result)

    def leg_placed(self, sid: str, token: int, target: str, leg_sid: str) -> bool:
        """The leg to ``target`` was created; False when it is no longer wanted (end it)."""
        return bool(self._run("leg_placed", sid, token, target, leg_sid))

    def leg_answered(
        self, sid: str, token: int, target: str, leg_sid: str, whisper_ms: int
    ) -> bool:
        """A person answered the leg: keep the offer alive through the whisper."""
        deadline = self.now() + whisper_ms
        return bool(self._run("leg_answered", sid, token, target, deadline, leg_sid))

    def accept(
        self, sid: str, token: int, target: str, bridge_ms: int = 30_000
    ) -> tuple[str, ...] | None:
        """The person at ``target`` pressed 1: theirs unless someone was first.

        Returns the other legs' CallSids to end, or None when the call is not theirs.
        """
        now = self.now()
        won, others = self._run("accept", sid, token, target, now, now + bridge_ms)
        return _csv(others) if won else None

    def bridged(self, sid: str, token: int) -> bool:
        """The caller reached the person who accepted."""
        return bool(self._run("bridged", sid, token, self.now()))

    def leg_ended(
        self, sid: str, token: int, target: str, *, miss: bool, max_misses: int, wrapup_ms: int
    ) -> LegEnd:
        """A leg ended (status callback)."""
        now = self.now()
        result = [
            _text(r)
            for r in self._run(
                "leg_ended", sid, token, target, now, int(miss), max_misses, now + wrapup_ms
            )
        ]
        result += [""] * (4 - len(result))
        return LegEnd(result[0], _csv(result[1]), result[2], result[3])

    def expire(self, sid: str, token: int) -> tuple[bool, tuple[str, ...], str]:
        """Take back an offer past its deadline: (applied, legs to end, stage)."""
        applied, legs, stage = self._run("expire", sid, token, self.now())
        return bool(applied), _csv(legs), _text(stage)

    def gone(self, sid: str, *, left: bool = False) -> Gone:
        """The caller hung up before a person took the call (or ``left`` for the duty dial)."""
        result = self._run("gone", sid, self.now(), "left" if left else "gone")
        armed = len(result) > 3 and bool(result[3])
        return Gone(_text(result[0]), _csv(result[1]), _csv(result[2]), armed)

    def end(self, sid: str, wrapup_ms: int) -> str | None:
        """A connected call ended; returns the target who took it (an operator wraps up)."""
        now = self.now()
        target = _text(self._run("end", sid, now, now + wrapup_ms))
        return target or None

    def awaiting_callback(self) -> list[tuple[str, int]]:
        """Abandoned SOS calls nobody has reached yet: (CallSid, hang-up ms), oldest first."""
        return [(_text(m), int(t)) for m, t in self.redis.zrange(CALLBACKS, 0, -1, withscores=True)]

    def callback_settled(self, sid: str) -> None:
        """The resident answered a callback, or a supervisor took over: no longer awaited."""
        self.redis.zrem(CALLBACKS, sid)

    # -- timers ---------------------------------------------------------------------------

    def schedule(self, member: str, delay_ms: int, *, now: int | None = None) -> None:
        """Arm a timer ``kind|arg`` to fire after ``delay_ms`` (re-arming moves it).

        ``now``: the switchboard's time when the caller already has it (one round trip less).
        """
        self.redis.zadd(TIMERS, {member: (self.now() if now is None else now) + delay_ms})

    def due_timers(self, limit: int = 100) -> list[str]:
        """Pop the timers that are due."""
        return [_text(m) for m in self._run("due", self.now(), limit, keys=[TIMERS])]

    def expired_offers(self, limit: int = 100) -> list[tuple[str, int]]:
        """Offers whose deadline passed (nobody pressed 1, or the caller was never bridged)."""
        members = self.redis.zrangebyscore(OFFERS, "-inf", self.now(), start=0, num=limit)
        out = []
        for member in members:
            sid, _, token = _text(member).rpartition("|")
            out.append((sid, int(token)))
        return out


def _offer(result: Any) -> Offer | None:
    if not result:
        return None
    sid, token, targets, seq = result
    return Offer(_text(sid), int(token), _csv(targets), int(seq))


def _csv(value: Any) -> tuple[str, ...]:
    return tuple(part for part in _text(value).split(",") if part)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(mapping: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}
