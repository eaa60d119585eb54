import asyncio
import contextlib

from kubeglobe.kube.ttl import TtlCache


def test_values_are_reused_within_the_bound_and_reloaded_after() -> None:
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    async def scenario() -> list[int]:
        cache: TtlCache[str, int] = TtlCache(0.2)
        first = await cache.get("k", load)
        second = await cache.get("k", load)
        await asyncio.sleep(0.25)
        third = await cache.get("k", load)
        cache.forget("k")
        fourth = await cache.get("k", load)
        return [first, second, third, fourth]

    assert asyncio.run(scenario()) == [1, 1, 2, 3]


def test_failures_are_not_remembered() -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("hub unreachable")
        return 7

    async def scenario() -> int:
        cache: TtlCache[str, int] = TtlCache(10)
        with contextlib.suppress(RuntimeError):
            await cache.get("k", flaky)
        return await cache.get("k", flaky)

    assert asyncio.run(scenario()) == 7
