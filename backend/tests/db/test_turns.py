"""Turns at the pool: first come, first served, each wait bounded, none lost."""

import asyncio

import pytest

from todo.db.turns import Turns

WAIT = 0.2


def _deadline() -> float:
    return asyncio.get_running_loop().time() + WAIT


async def test_turns_go_to_waiters_in_the_order_they_came() -> None:
    turns = Turns(1)
    await turns.take(_deadline())
    order: list[int] = []

    async def wait(number: int) -> None:
        await turns.take(_deadline())
        order.append(number)
        turns.give_back()

    waiters = [asyncio.create_task(wait(number)) for number in range(5)]
    await asyncio.sleep(0)  # all five are waiting
    turns.give_back()
    await asyncio.gather(*waiters)

    assert order == [0, 1, 2, 3, 4]
    # The turn is free again: taken at once.
    await asyncio.wait_for(turns.take(_deadline()), timeout=0.01)


async def test_every_waiter_past_its_deadline_fails_and_the_rest_still_wait() -> None:
    turns = Turns(1)
    await turns.take(_deadline())
    loop = asyncio.get_running_loop()
    early = [asyncio.create_task(turns.take(loop.time() + WAIT / 4)) for _ in range(3)]
    await asyncio.sleep(0)
    late = asyncio.create_task(turns.take(loop.time() + 10))

    started = loop.time()
    for waiter in early:
        with pytest.raises(TimeoutError):
            await waiter
    assert loop.time() - started < WAIT
    assert not late.done()

    turns.give_back()
    await asyncio.wait_for(late, timeout=1)


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    turns = Turns(1)
    await turns.take(_deadline())
    cancelled = asyncio.create_task(turns.take(_deadline()))
    after = asyncio.create_task(turns.take(_deadline()))
    await asyncio.sleep(0)

    # Handed the turn, then cancelled before it ran: the next waiter gets it.
    turns.give_back()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(after, timeout=1)

    # And one cancelled while still waiting takes nothing with it.
    waiting = asyncio.create_task(turns.take(_deadline()))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    turns.give_back()
    await asyncio.wait_for(turns.take(_deadline()), timeout=0.01)


async def test_as_many_hold_turns_at_once_as_there_are() -> None:
    turns = Turns(3)
    held = 0
    most = 0

    async def use() -> None:
        nonlocal held, most
        await turns.take(asyncio.get_running_loop().time() + 5)
        held += 1
        most = max(most, held)
        await asyncio.sleep(0)
        held -= 1
        turns.give_back()

    await asyncio.gather(*(use() for _ in range(50)))
    assert most == 3
