"""The switchboard's Lua scripts on a real Redis: order, skills, tokens, and no double booking."""

from __future__ import annotations

import random
import threading

import pytest

from queue_workers.switchboard import (
    PRESENCE,
    TIMERS,
    OperatorState,
    Priority,
    Stage,
    Switchboard,
)


class Tick:
    """A clock in seconds that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def board(redis_conn):
    return Switchboard(redis_conn, Tick())


def add(board, sid, priority=Priority.SOS, need="sos", dialect="", since=None):
    return board.add_call(
        sid,
        queue="sos" if priority is Priority.SOS else "service",
        priority=priority,
        need=need,
        dialect=dialect,
        since_ms=since if since is not None else board.now(),
    )


def operator(board, op_id, skills=("sos",), available=True):
    board.register_operator(
        op_id, name=op_id, phone="+86138" + op_id.rjust(8, "0")[-8:], skills=skills
    )
    if available:
        board.set_state(op_id, OperatorState.AVAILABLE)
        board.clock.now += 1


def test_priority_then_arrival_even_within_one_millisecond(board):
    add(board, "hot", Priority.HOTLINE, "service")
    add(board, "cb", Priority.CALLBACK)
    for i in range(60):  # all in the same millisecond
        add(board, f"sos{i:02d}")
    assert board.waiting()[:3] == ["sos00", "sos01", "sos02"]
    assert board.waiting()[-2:] == ["cb", "hot"]
    assert board.waiting()[:60] == [f"sos{i:02d}" for i in range(60)]
    assert board.position("hot") == 62


def test_adding_twice_keeps_one_place(board):
    assert add(board, "a") == (True, 1)
    add(board, "b")
    assert add(board, "a") == (False, 1)


def answered(board, offer, target):
    """A person picked up the leg to ``target`` (the whisper plays)."""
    assert board.leg_placed(offer.call_sid, offer.token, target, f"leg-{target}")
    assert board.leg_answered(offer.call_sid, offer.token, target, f"leg-{target}", 45_000)


def ended(board, offer, target, *, miss=True, max_misses=3):
    return board.leg_ended(
        offer.call_sid, offer.token, target, miss=miss, max_misses=max_misses, wrapup_ms=1000
    )


def test_claim_longest_idle_with_fitting_skill(board):
    operator(board, "svc", ("service",))
    operator(board, "s1")
    operator(board, "s2", ("sos", "fuzhou"))
    add(board, "c1", dialect="fuzhou")
    offer = board.claim(20_000)
    assert offer.operator_ids == ("s2",), "dialect preferred among sos operators"
    add(board, "c2")
    assert board.claim(20_000).operator_ids == ("s1",)
    add(board, "c3")
    assert board.claim(20_000).operator_ids == ("svc",), "anyone rather than wait"
    add(board, "c4")
    assert board.claim(20_000) is None


def test_accept_is_first_wins_and_tokens_guard_everything(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(20_000)
    assert offer.targets == ("op:a",)
    assert board.accept("c", offer.token, "op:a") is None, "not answered yet"
    answered(board, offer, "op:a")
    assert board.accept("c", offer.token + 1, "op:a") is None, "an old or future token"
    assert board.accept("c", offer.token, "op:b") is None, "not offered to b"
    assert board.accept("c", offer.token, "op:a") == ()
    assert board.accept("c", offer.token, "op:a") is None
    assert board.operator("a")["state"] == "on_call"
    assert board.call("c")["state"] == "accepted"
    assert board.bridged("c", offer.token)
    assert ended(board, offer, "op:b").result == "stale"
    assert board.end("c", 30_000) == "op:a"
    assert board.end("c", 30_000) is None
    assert board.operator("a")["state"] == "wrap_up"


def test_a_missed_single_offer_puts_the_call_back_and_counts_the_miss(board):
    operator(board, "a")
    operator(board, "b")
    add(board, "first")
    add(board, "second")
    offer = board.claim(20_000)
    assert offer.call_sid == "first"
    assert ended(board, offer, "op:a", max_misses=2).result == "released"
    assert ended(board, offer, "op:a", max_misses=2).result == "stale", "a repeated callback"
    assert board.waiting() == ["first", "second"]
    assert board.operator("a")["misses"] == "1"
    # after a miss the operator goes to the back of the line
    assert board.claim(20_000).operator_ids == ("b",)


def test_max_misses_sets_away(board):
    operator(board, "a")
    for i in range(2):
        add(board, f"c{i}")
        offer = board.claim(20_000)
        result = ended(board, offer, "op:a", max_misses=2)
        board.gone(offer.call_sid)
    assert result.now_away == ("a",)
    assert board.operator("a")["state"] == "away"


def test_gone_frees_the_ringing_operator_without_a_miss_and_arms_the_callback(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(20_000)
    board.leg_placed("c", offer.token, "op:a", "leg-a")
    gone = board.gone("c")
    assert (gone.state, gone.freed, gone.legs) == ("offered", ("a",), ("leg-a",))
    assert board.gone("c").state == "gone"
    assert board.operator("a")["state"] == "available"
    assert board.operator("a").get("misses", "0") == "0"
    assert board.waiting() == []
    assert board.redis.zscore(TIMERS, "abandoned|c") is not None
    assert ended(board, offer, "op:a").result == "stale", "the leg's own end changes nothing"


def test_escalation_widens_a_ringing_single_offer_to_everyone(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(20_000)
    for i in range(12):
        operator(board, f"x{i}")
    wide = board.widen("c", Stage.ESCALATED, ["sup:+8613700000009"], 20_000)
    assert wide.token == offer.token, "the operator already ringing keeps ringing"
    assert len(wide.targets) == 13 and "sup:+8613700000009" in wide.targets
    assert "op:a" not in wide.targets
    assert all(board.operator(f"x{i}")["state"] == "ringing" for i in range(12))
    # the first miss of a ring-all is nobody's miss, and other legs still ring
    assert ended(board, offer, "op:a", max_misses=1).result == "partial"
    assert board.operator("a")["state"] == "available"
    answered(board, wide, "op:x3")
    assert board.accept("c", offer.token, "op:x3") == (), "no other leg was placed yet"
    assert board.operator("x3")["state"] == "on_call"
    assert all(board.operator(f"x{i}")["state"] == "available" for i in range(12) if i != 3)


def test_accept_returns_the_other_legs_to_end(board):
    operator(board, "a")
    operator(board, "b")
    add(board, "c")
    wide = board.widen("c", Stage.ESCALATED, ["sup:+8613700000009"], 20_000)
    for target in wide.targets:
        board.leg_placed("c", wide.token, target, f"leg-{target}")
    board.leg_answered("c", wide.token, "op:b", "leg-op:b", 45_000)
    others = board.accept("c", wide.token, "op:b")
    assert sorted(others) == ["leg-op:a", "leg-sup:+8613700000009"]
    assert board.accept("c", wide.token, "sup:+8613700000009") is None


def test_escalated_rounds_end_when_every_leg_ended_and_nobody_is_away(board):
    operator(board, "a")
    add(board, "c")
    wide = board.widen("c", Stage.DUTY, ["duty:+8613900000001"], 20_000)
    assert set(wide.targets) == {"op:a", "duty:+8613900000001"}
    assert ended(board, wide, "op:a", max_misses=1).result == "partial"
    last = ended(board, wide, "duty:+8613900000001", max_misses=1)
    assert (last.result, last.stage) == ("released", "duty")
    assert board.operator("a")["state"] == "available", "a ring-all round is nobody's miss"
    # the next round rings everyone again, the duty phone included
    again = board.widen("c", Stage.DUTY, [], 20_000)
    assert again.token == wide.token + 1
    assert set(again.targets) == {"op:a", "duty:+8613900000001"}
    # and a dispatch claim of an escalated call is a ring-all too
    board.gone("c")
    board.set_state("a", OperatorState.AWAY)
    add(board, "d")
    assert board.widen("d", Stage.ESCALATED, [], 20_000) is None
    assert board.call("d")["state"] == "waiting", "nobody to ring: the call waits"
    operator(board, "b")
    operator(board, "e")
    assert set(board.claim(20_000).targets) == {"op:b", "op:e"}


def test_a_leg_placed_after_the_offer_ended_is_not_wanted(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(20_000)
    board.gone("c")
    assert not board.leg_placed("c", offer.token, "op:a", "leg-a")


def test_expiry_takes_back_an_offer_and_an_unbridged_acceptance(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(5_000)
    answered(board, offer, "op:a")
    board.accept("c", offer.token, "op:a", 5_000)
    board.clock.now += 60
    assert board.expired_offers() == [("c", offer.token)]
    applied, legs, _ = board.expire("c", offer.token)
    assert applied and legs == ("leg-op:a",)
    assert board.waiting() == ["c"]
    assert board.operator("a")["state"] == "available"
    assert not board.bridged("c", offer.token)


def test_deactivated_operator_is_never_made_available(board):
    operator(board, "a")
    board.register_operator("a", name="a", phone="+8613800000001", skills=("sos",), active=False)
    assert board.operator("a")["state"] == "offline"
    assert board.set_state("a", OperatorState.AVAILABLE)[1] == "inactive"
    add(board, "c")
    assert board.claim(20_000) is None


def test_manual_state_cannot_interrupt_a_call(board):
    operator(board, "a")
    add(board, "c")
    board.claim(20_000)
    assert board.set_state("a", OperatorState.AWAY) == ("ringing", "busy")
    assert board.set_state("nobody", OperatorState.AWAY) == ("", "unknown")


def test_expired_offers_and_timers(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(5_000)
    assert board.expired_offers() == []
    board.clock.now += 6
    assert board.expired_offers() == [("c", offer.token)]
    board.schedule("escalate|c", 1000)
    assert board.due_timers() == []
    board.clock.now += 1.5
    assert board.due_timers() == ["escalate|c"]
    assert board.due_timers() == []


def test_presence_stream_records_every_change(board):
    operator(board, "a")
    add(board, "c")
    offer = board.claim(20_000)
    answered(board, offer, "op:a")
    board.accept("c", offer.token, "op:a")
    board.bridged("c", offer.token)
    board.end("c", 1000)
    states = [state for _, _, state, _ in board.presence_changes()]
    assert states == ["available", "ringing", "on_call", "wrap_up"]
    last = board.presence_changes()[-1][0]
    board.trim(PRESENCE, last)
    assert board.presence_changes() == []


def test_threads_hammering_never_double_book(redis_conn):
    board = Switchboard(redis_conn, Tick())
    for i in range(20):
        operator(board, f"op{i}", ("sos", "service"))
    for i in range(300):
        add(board, f"call{i:03d}")
    busy: dict[str, str] = {}
    offered_calls: set[str] = set()
    done: list[str] = []
    problems: list[str] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        mine = Switchboard(redis_conn, board.clock)
        while True:
            offer = mine.claim(20_000)
            if offer is None:
                if not mine.waiting():
                    return
                continue
            (op,) = offer.operator_ids
            with lock:
                if op in busy:
                    problems.append(f"{op} offered {offer.call_sid} while on {busy[op]}")
                if offer.call_sid in offered_calls:
                    problems.append(f"{offer.call_sid} offered twice at once")
                busy[op] = offer.call_sid
                offered_calls.add(offer.call_sid)
            answer = rng.random() < 0.8
            with lock:  # forget before the script frees them, so no false alarm
                del busy[op]
                offered_calls.discard(offer.call_sid)
            target = f"op:{op}"
            if answer:
                assert mine.leg_answered(offer.call_sid, offer.token, target, "leg", 45_000)
                assert mine.accept(offer.call_sid, offer.token, target) == ()
                assert mine.bridged(offer.call_sid, offer.token)
                mine.end(offer.call_sid, 0)
                mine.set_state(op, OperatorState.AVAILABLE, expected=OperatorState.WRAP_UP)
                with lock:
                    done.append(offer.call_sid)
            else:
                mine.leg_ended(
                    offer.call_sid, offer.token, target, miss=False, max_misses=99, wrapup_ms=0
                )

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert sorted(done) == [f"call{i:03d}" for i in range(300)]
