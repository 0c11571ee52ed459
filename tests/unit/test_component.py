"""The lifecycle base: start and stop run once each, a failed start releases what it opened."""

import pytest

from emostream.runtime.component import Component


class Recorder(Component):
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    async def _start(self) -> None:
        self.calls.append("start")
        if self.fail:
            raise RuntimeError("cannot connect")

    async def _stop(self) -> None:
        self.calls.append("stop")


async def test_start_and_stop_are_idempotent():
    c = Recorder()
    assert await c.start() is c
    await c.start()
    assert c.started
    await c.stop()
    await c.stop()
    assert c.calls == ["start", "stop"] and not c.started


async def test_never_started_component_is_still_closed_once():
    c = Recorder()
    await c.stop()
    await c.stop()
    assert c.calls == ["stop"]


async def test_failed_start_stops_and_reraises():
    c = Recorder(fail=True)
    with pytest.raises(RuntimeError, match="cannot connect"):
        await c.start()
    assert c.calls == ["start", "stop"] and not c.started


async def test_async_with_and_restart():
    c = Recorder()
    async with c as entered:
        assert entered is c and c.started
    async with c:
        pass
    assert c.calls == ["start", "stop", "start", "stop"]
