"""The switchboard: waiting calls and operators in Redis, changed only by Lua scripts.

Every change of a call or an operator is one Lua script, so it is atomic across any number
of worker processes: an operator is never offered two calls at once, and a call is never
offered to two operators at once (except the deliberate "ring everyone" of an SOS escalation,
which is one offer to several phones where the first to accept wins). Each offer has a token;
a late or repeated webhook that names an old token changes nothing.

Keys (prefix ``cc:``): ``waiting`` (zset of CallSids by priority then arrival), ``call:<sid>``
(hash), ``op:<id>`` (hash), ``available`` (zset of operator ids by idle-since), ``offers``
(zset of ``sid|token`` by deadline), ``timers`` (zset of ``kind|arg`` by due time).
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
OPERATORS = PREFIX + "operators"
PRESENCE = PREFIX + "presence"
JOURNAL = PREFIX + "journal"
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


# States a person (or the console) may set; the others belong to the switchboard.
MANUAL_STATES = frozenset({OperatorState.OFFLINE, OperatorState.AVAILABLE, OperatorState.AWAY})


@dataclass(frozen=True)
class Offer:
    """A call offered to one or more operators, identified by the call's offer token.

    ``seq`` numbers every offer the switchboard ever made, in the order it made them.
    """

    call_sid: str
    token: int
    operator_ids: tuple[str, ...]
    seq: int = 0


@dataclass(frozen=True)
class Release:
    """What a released offer did: whether it applied and who went away after misses."""

    applied: bool
    call_state: str
    operators: tuple[str, ...] = ()
    now_away: tuple[str, ...] = ()


_LIB = """
local P = 'cc:'
local SEQ = 64
local function call_key(sid) return P .. 'call:' .. sid end
local function op_key(id) return P .. 'op:' .. id end
local function split(s)
  local out = {}
  for part in string.gmatch(s or '', '[^,]+') do table.insert(out, part) end
  return out
end
local function has(skills, skill)
  return string.find(skills or '', ',' .. skill .. ',', 1, true) ~= nil
end
-- Every presence change goes through here, so the stream is a complete record for reports.
local function op_state(id, state, now, ...)
  redis.call('HSET', op_key(id), 'state', state, 'since', now, ...)
  redis.call('XADD', P .. 'presence', 'MAXLEN', '~', 100000, '*', 'op', id, 'state', state,
             'at', now)
end
-- Offers go to the call timeline through this stream, atomically with the claim itself, so
-- a worker killed right after claiming cannot lose the record (the timekeeper stores it).
local function journal(sid, kind, token, ops, seq, now)
  redis.call('XADD', P .. 'journal', 'MAXLEN', '~', 100000, '*', 'sid', sid, 'kind', kind,
             'offer', token, 'operators', ops, 'seq', seq, 'at', now)
end
local function make_available(id, now, idle_since)
  op_state(id, 'available', now, 'idle_since', idle_since, 'call', '', 'offer', '')
  redis.call('ZADD', P .. 'available', idle_since, id)
end
"""

_ADD_CALL = (
    _LIB
    + """
-- ARGV: sid, queue, priority, need, dialect, since_ms, now, score, origin
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if state and state ~= 'gone' and state ~= 'done' then
  local rank = redis.call('ZRANK', P .. 'waiting', ARGV[1])
  return {0, rank and (rank + 1) or 0}
end
if state then return {0, 0} end
-- Arrival order within one millisecond comes from a per-millisecond counter (FIFO for up to
-- 64 calls in the same millisecond).
local seq_key = P .. 'seq:' .. ARGV[6]
local seq = redis.call('INCR', seq_key)
if seq == 1 then redis.call('PEXPIRE', seq_key, 2000) end
local score = string.format('%d', tonumber(ARGV[8]) * SEQ + math.min(seq - 1, SEQ - 1))
redis.call('HSET', key, 'sid', ARGV[1], 'queue', ARGV[2], 'priority', ARGV[3], 'need', ARGV[4],
           'dialect', ARGV[5], 'since', ARGV[6], 'score', score, 'state', 'waiting',
           'offer', 0, 'operators', '', 'added', ARGV[7], 'origin', ARGV[9])
redis.call('ZADD', P .. 'waiting', score, ARGV[1])
return {1, redis.call('ZRANK', P .. 'waiting', ARGV[1]) + 1}
"""
)

_CLAIM = (
    _LIB
    + """
-- ARGV: now, deadline. Offer the head call to the best available operator.
local head = redis.call('ZRANGE', P .. 'waiting', 0, 0)[1]
if not head then return nil end
local ops = redis.call('ZRANGE', P .. 'available', 0, -1)
if #ops == 0 then return nil end
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
local token = redis.call('HINCRBY', call_key(head), 'offer', 1)
redis.call('ZREM', P .. 'waiting', head)
redis.call('ZREM', P .. 'available', best)
redis.call('HSET', call_key(head), 'state', 'offered', 'operators', best)
op_state(best, 'ringing', ARGV[1], 'call', head, 'offer', token)
redis.call('ZADD', P .. 'offers', ARGV[2], head .. '|' .. token)
local seq = redis.call('INCR', P .. 'claims')
journal(head, 'offered', token, best, seq, ARGV[1])
return {head, token, best, seq}
"""
)

_CLAIM_ALL = (
    _LIB
    + """
-- ARGV: sid, now, deadline, with_supervisors (1/0). Offer one waiting call to every available
-- operator at once, and to the supervisors' phones (the pseudo-operator 'supervisor').
local sid = ARGV[1]
if redis.call('HGET', call_key(sid), 'state') ~= 'waiting' then return nil end
local ops = redis.call('ZRANGE', P .. 'available', 0, -1)
if #ops == 0 and ARGV[4] ~= '1' then return nil end
local token = redis.call('HINCRBY', call_key(sid), 'offer', 1)
redis.call('ZREM', P .. 'waiting', sid)
for _, id in ipairs(ops) do
  redis.call('ZREM', P .. 'available', id)
  op_state(id, 'ringing', ARGV[2], 'call', sid, 'offer', token)
end
if ARGV[4] == '1' then table.insert(ops, 'supervisor') end
redis.call('HSET', call_key(sid), 'state', 'offered', 'operators', table.concat(ops, ','))
redis.call('ZADD', P .. 'offers', ARGV[3], sid .. '|' .. token)
local seq = redis.call('INCR', P .. 'claims')
journal(sid, 'offered', token, table.concat(ops, ','), seq, ARGV[2])
return {sid, token, table.concat(ops, ','), seq}
"""
)

_EXTEND = (
    _LIB
    + """
-- ARGV: sid, token, deadline. The operator's phone answered: give the whisper time.
local key = call_key(ARGV[1])
if redis.call('HGET', key, 'state') ~= 'offered' or redis.call('HGET', key, 'offer') ~= ARGV[2] then
  return 0
end
redis.call('ZADD', P .. 'offers', ARGV[3], ARGV[1] .. '|' .. ARGV[2])
return 1
"""
)

_ACCEPT = (
    _LIB
    + """
-- ARGV: sid, token, operator, now. First acceptance of a live offer wins.
local key = call_key(ARGV[1])
if redis.call('HGET', key, 'state') ~= 'offered' or redis.call('HGET', key, 'offer') ~= ARGV[2] then
  return 0
end
local offered = split(redis.call('HGET', key, 'operators'))
local found = false
for _, id in ipairs(offered) do if id == ARGV[3] then found = true end end
if not found then return 0 end
redis.call('HSET', key, 'state', 'connected', 'operators', ARGV[3], 'answered', ARGV[4])
redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. ARGV[2])
for _, id in ipairs(offered) do
  if id == ARGV[3] then
    if id ~= 'supervisor' then op_state(id, 'on_call', ARGV[4], 'misses', 0) end
  elseif redis.call('HGET', op_key(id), 'offer') == ARGV[2]
         and redis.call('HGET', op_key(id), 'call') == ARGV[1] then
    make_available(id, ARGV[4], redis.call('HGET', op_key(id), 'idle_since') or ARGV[4])
  end
end
return 1
"""
)

_RELEASE = (
    _LIB
    + """
-- ARGV: sid, token, now, miss (0/1), max_misses.
-- An offer that failed (no answer, refused, busy, expired): the call goes back to its place
-- in the queue and its operators are free again (after a miss, at the back of the line).
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if (state ~= 'offered' and state ~= 'gone') or redis.call('HGET', key, 'offer') ~= ARGV[2] then
  return {0, state or ''}
end
local offered = split(redis.call('HGET', key, 'operators'))
redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. ARGV[2])
if state == 'offered' then
  redis.call('HSET', key, 'state', 'waiting', 'operators', '')
  redis.call('ZADD', P .. 'waiting', redis.call('HGET', key, 'score'), ARGV[1])
end
local away = {}
for _, id in ipairs(offered) do
  local k = op_key(id)
  if redis.call('HGET', k, 'offer') == ARGV[2] and redis.call('HGET', k, 'call') == ARGV[1] then
    local idle = redis.call('HGET', k, 'idle_since') or ARGV[3]
    if ARGV[4] == '1' and #offered == 1 then
      local misses = redis.call('HINCRBY', k, 'misses', 1)
      if misses >= tonumber(ARGV[5]) then
        op_state(id, 'away', ARGV[3], 'call', '', 'offer', '')
        table.insert(away, id)
      else
        make_available(id, ARGV[3], ARGV[3])
      end
    else
      make_available(id, ARGV[3], idle)
    end
  end
end
return {1, state, table.concat(offered, ','), table.concat(away, ',')}
"""
)

_GONE = (
    _LIB
    + """
-- ARGV: sid, now. The caller hung up: leave the queue, free anyone ringing for the call.
local key = call_key(ARGV[1])
local state = redis.call('HGET', key, 'state')
if not state or state == 'gone' or state == 'done' or state == 'connected' then
  return {state or ''}
end
redis.call('ZREM', P .. 'waiting', ARGV[1])
redis.call('HSET', key, 'state', 'gone')
local freed = {}
if state == 'offered' then
  local token = redis.call('HGET', key, 'offer')
  redis.call('ZREM', P .. 'offers', ARGV[1] .. '|' .. token)
  for _, id in ipairs(split(redis.call('HGET', key, 'operators'))) do
    local k = op_key(id)
    if redis.call('HGET', k, 'offer') == token and redis.call('HGET', k, 'call') == ARGV[1] then
      make_available(id, ARGV[2], redis.call('HGET', k, 'idle_since') or ARGV[2])
      table.insert(freed, id)
    end
  end
end
return {state, table.concat(freed, ',')}
"""
)

_END = (
    _LIB
    + """
-- ARGV: sid, now, wrapup_due. A connected call ended: its operator wraps up.
local key = call_key(ARGV[1])
if redis.call('HGET', key, 'state') ~= 'connected' then return '' end
local id = redis.call('HGET', key, 'operators')
redis.call('HSET', key, 'state', 'done', 'ended', ARGV[2])
if redis.call('HGET', op_key(id), 'state') == 'on_call' then
  op_state(id, 'wrap_up', ARGV[2], 'call', '', 'offer', '')
  redis.call('ZADD', P .. 'timers', ARGV[3], 'wrapup|' .. id)
end
return id
"""
)

_SET_STATE = (
    _LIB
    + """
-- ARGV: id, state, now, expected old state ('' for any). Manual presence: an operator who is
-- ringing or on a call keeps that state (the switchboard ends it).
local k = op_key(ARGV[1])
if redis.call('EXISTS', k) == 0 then return {'', 'unknown'} end
local old = redis.call('HGET', k, 'state') or 'offline'
if ARGV[4] ~= '' and old ~= ARGV[4] then return {old, 'changed'} end
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


class Switchboard:
    """The call centre's live state in Redis; ``now`` is milliseconds from the given clock."""

    def __init__(self, conn: redis.Redis, clock: Callable[[], float]) -> None:
        self.redis = conn
        self.clock = clock
        self._scripts = {
            name: conn.register_script(source)
            for name, source in (
                ("add", _ADD_CALL),
                ("claim", _CLAIM),
                ("claim_all", _CLAIM_ALL),
                ("extend", _EXTEND),
                ("accept", _ACCEPT),
                ("release", _RELEASE),
                ("gone", _GONE),
                ("end", _END),
                ("set_state", _SET_STATE),
                ("due", _DUE),
            )
        }

    def now(self) -> int:
        """The clock in integer milliseconds."""
        return int(self.clock() * 1000)

    def _run(self, name: str, *args: Any, keys: Iterable[str] = ()) -> Any:
        return self._scripts[name](keys=list(keys), args=list(args))

    # -- operators ------------------------------------------------------------------------

    def register_operator(
        self, op_id: str, *, name: str, phone: str, skills: Iterable[str]
    ) -> None:
        """Make an operator known (or update their phone and skills); presence is kept."""
        skill_list = "," + ",".join(sorted(skills)) + ","
        key = f"{PREFIX}op:{op_id}"
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"id": op_id, "name": name, "phone": phone, "skills": skill_list})
        pipe.hsetnx(key, "state", OperatorState.OFFLINE.value)
        pipe.sadd(OPERATORS, op_id)
        pipe.execute()

    def set_state(
        self, op_id: str, state: OperatorState, *, expected: OperatorState | None = None
    ) -> tuple[str, str]:
        """Change an operator's presence; returns (old state, ok/same/busy/changed/unknown).

        With ``expected``, only change it if the operator is still in that state.
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
    ) -> tuple[bool, int]:
        """Put a call in the waiting line; returns (new?, 1-based position).

        ``origin`` names the SOS call a callback leg belongs to.
        """
        score = int(priority) * BAND + since_ms
        added, position = self._run(
            "add",
            sid,
            queue,
            int(priority),
            need,
            dialect or "",
            since_ms,
            self.now(),
            score,
            origin,
        )
        return bool(added), int(position)

    def call(self, sid: str) -> dict[str, str]:
        """One call's hash (empty when unknown)."""
        return _decode(self.redis.hgetall(f"{PREFIX}call:{sid}"))

    def position(self, sid: str) -> int | None:
        """1-based position of a waiting call."""
        rank = self.redis.zrank(WAITING, sid)
        return None if rank is None else rank + 1

    def waiting(self) -> list[str]:
        """CallSids waiting, in the order they will be served."""
        return [_text(s) for s in self.redis.zrange(WAITING, 0, -1)]

    def claim(self, ring_ms: int) -> Offer | None:
        """Offer the head of the line to the best available operator (atomically)."""
        now = self.now()
        result = self._run("claim", now, now + ring_ms)
        if not result:
            return None
        sid, token, op_id, seq = result
        return Offer(_text(sid), int(token), (_text(op_id),), int(seq))

    def claim_all(self, sid: str, ring_ms: int, *, supervisors: bool) -> Offer | None:
        """Offer a waiting call to every available operator (and supervisors) at once."""
        now = self.now()
        result = self._run("claim_all", sid, now, now + ring_ms, int(supervisors))
        if not result:
            return None
        sid_, token, ops, seq = result
        return Offer(_text(sid_), int(token), tuple(_text(ops).split(",")), int(seq))

    def extend(self, sid: str, token: int, extra_ms: int) -> bool:
        """The offered phone answered: keep the offer alive while the operator hears the whisper."""
        return bool(self._run("extend", sid, token, self.now() + extra_ms))

    def accept(self, sid: str, token: int, op_id: str) -> bool:
        """The operator pressed 1: connect them, unless someone else already accepted."""
        return bool(self._run("accept", sid, token, op_id, self.now()))

    def release(self, sid: str, token: int, *, miss: bool, max_misses: int) -> Release:
        """An offer failed: the call goes back in line and its operators are freed."""
        result = self._run("release", sid, token, self.now(), int(miss), max_misses)
        if not result[0]:
            return Release(False, _text(result[1]))
        ops = tuple(o for o in _text(result[2]).split(",") if o)
        away = tuple(o for o in _text(result[3]).split(",") if o)
        return Release(True, _text(result[1]), ops, away)

    def gone(self, sid: str) -> tuple[str, tuple[str, ...]]:
        """The caller hung up; returns (the state the call was in, operators freed)."""
        result = self._run("gone", sid, self.now())
        state = _text(result[0])
        freed = tuple(o for o in _text(result[1]).split(",") if o) if len(result) > 1 else ()
        return state, freed

    def end(self, sid: str, wrapup_ms: int) -> str | None:
        """A connected call ended; its operator goes to wrap-up. Returns the operator id."""
        now = self.now()
        op_id = _text(self._run("end", sid, now, now + wrapup_ms))
        return op_id or None

    # -- timers ---------------------------------------------------------------------------

    def schedule(self, member: str, delay_ms: int) -> None:
        """Arm a timer ``kind|arg`` to fire after ``delay_ms`` (re-arming moves it)."""
        self.redis.zadd(TIMERS, {member: self.now() + delay_ms})

    def due_timers(self, limit: int = 100) -> list[str]:
        """Pop the timers that are due."""
        return [_text(m) for m in self._run("due", self.now(), limit, keys=[TIMERS])]

    def expired_offers(self, limit: int = 100) -> list[tuple[str, int]]:
        """Offers whose deadline passed without an answer (the phone or a worker was lost)."""
        members = self.redis.zrangebyscore(OFFERS, "-inf", self.now(), start=0, num=limit)
        out = []
        for member in members:
            sid, _, token = _text(member).rpartition("|")
            out.append((sid, int(token)))
        return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(mapping: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}
