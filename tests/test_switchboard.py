"""The switchboard's Lua scripts on a real Redis: order, skills, tokens, and no double booking."""

from __future__ import annotations

import random
import threading

import pytest

from queue_workers.switchboard import PRESENCE, OperatorState, Priority, Switchboard


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
    assert not board.accept("c", offer.token + 1, "a"), "an old or future token"
    assert not board.accept("c", offer.token, "b"), "not offered to b"
    assert board.accept("c", offer.token, "a")
    assert not board.accept("c", offer.token, "a")
    assert board.operator("a")["state"] == "on_call"
    assert not board.release("c", offer.token, miss=True, max_misses=3).applied
    assert board.end("c", 30_000) == "a"
    assert board.end("c", 30_000) is None
    assert board.operator("a")["state"] == "wrap_up"


def test_release_puts_the_call_back_at_its_place_and_counts_misses(board):
    operator(board, "a")
    operator(board, "b")
    add(board, "first")
    add(board, "second")
    offer = board.claim(20_000)
    assert offer.call_sid == "first"
    released = board.release("first", offer.token, miss=True, max_misses=2)
    assert released.applied and released.operators == ("a",)
    assert board.waiting() == ["first", "second"]
    assert board.operator("a")["misses"] == "1"
    # after a miss the operator goes to the back of the line
    assert board.claim(20_000).operator_ids == ("b",)


def test_max_misses_sets_away(board):
    operator(board, "a")
    for i in range(2):
        add(board, f"c{i}")
        offer = board.claim(20_000)
        released = board.release(offer.call_sid, offer.token, miss=True, max_misses=2)
        board.gone(offer.call_sid)
    assert released.now_away == ("a",)
    assert board.operator("a")["state"] == "away"


def test_gone_frees_the_ringing_operator(board):
    operator(board, "a")
    add(board, "c")
    board.claim(20_000)
    assert board.gone("c") == ("offered", ("a",))
    assert board.gone("c") == ("gone", ())
    assert board.operator("a")["state"] == "available"
    assert board.waiting() == []


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
    board.accept("c", offer.token, "a")
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
            if answer:
                assert mine.accept(offer.call_sid, offer.token, op)
                mine.end(offer.call_sid, 0)
                mine.set_state(op, OperatorState.AVAILABLE, expected=OperatorState.WRAP_UP)
                with lock:
                    done.append(offer.call_sid)
            else:
                mine.release(offer.call_sid, offer.token, miss=False, max_misses=99)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert problems == []
    assert sorted(done) == [f"call{i:03d}" for i in range(300)]
