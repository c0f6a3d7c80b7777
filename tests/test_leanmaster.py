"""The lean master's addon dispatch (`HookTable`) does what mitmproxy's own manager does, only cheaper."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading

from mitmproxy import exceptions, hooks, master, options
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import tflow

from authsome.leanmaster import HookTable, LeanMaster


class Recorder:
    """An addon that writes down each hook it gets, under its own name."""

    def __init__(self, name: str, calls: list, *, hooks_: tuple[str, ...] = ("request", "response"),
                 fail: str | None = None, halt: str | None = None, asynchronous: bool = False):
        self.name = name
        for hook in hooks_:
            setattr(self, hook, self._hook(hook, calls, fail, halt, asynchronous))

    def _hook(self, hook, calls, fail, halt, asynchronous):
        def record(*args):
            calls.append((self.name, hook, args))
            if hook == fail:
                raise ValueError(f"{self.name} failed")
            if hook == halt:
                raise exceptions.AddonHalt()

        if not asynchronous:
            return record

        async def later(*args):
            await asyncio.sleep(0)
            record(*args)

        return later


class Parent:
    """An addon with sub-addons (as mitmproxy's script loader has)."""

    def __init__(self, name: str, calls: list, children: list):
        self.name = name
        self.addons = children
        self.request = lambda flow: calls.append((name, "request", (flow,)))


def _run(coroutine):
    """asyncio.run on a thread of its own: the suite's session browser (Playwright's sync API)
    keeps an event loop running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


@contextlib.contextmanager
def _master(make_master):
    m = make_master(options.Options())
    try:
        yield m
    finally:
        m._legacy_log_events.uninstall()  # as `Master.done` does: its log handler would outlive this loop


def _events(flow) -> list[hooks.Hook]:
    return [HttpRequestHook(flow), HttpResponseHook(flow)]


def _dispatch(make_master, build) -> list:
    """Run the same addons and events through a master; return the calls in order (flows by id)."""

    async def main():
        calls: list = []
        flow = tflow.tflow(resp=True)
        with _master(make_master) as m:
            m.addons.add(*build(calls))
            for event in _events(flow):
                await m.addons.handle_lifecycle(event)
        def shown(a):
            return ["flow" if x is flow else x for x in a] if isinstance(a, list) else "flow" if a is flow else a

        return [(name, hook, tuple(shown(a) for a in args)) for name, hook, args in calls]

    return _run(main())


def _stock(opts):
    return master.Master(opts)


def _scenario(calls: list) -> list:
    return [
        Recorder("a", calls),
        Recorder("quiet", calls, hooks_=("tls_start_client",)),  # implements neither event
        Recorder("b", calls, asynchronous=True),
        Recorder("fails", calls, fail="request"),
        Parent("parent", calls, [Recorder("child", calls, hooks_=("request",))]),
        Recorder("listener", calls, hooks_=("update",)),
        Recorder("c", calls, halt="response"),
        Recorder("after-halt", calls),
    ]


def test_same_calls_in_the_same_order_as_mitmproxys_manager(caplog):
    with caplog.at_level(logging.ERROR):
        stock = _dispatch(_stock, _scenario)
        lean = _dispatch(LeanMaster, _scenario)
    assert lean == stock
    # What the scenario exercises (so that agreement means something):
    assert [c[0] for c in lean if c[1] == "request"] == ["a", "b", "fails", "parent", "child", "c", "after-halt"]
    assert [c[0] for c in lean if c[1] == "response"] == ["a", "b", "fails", "c"]  # halted after c
    assert lean.count(("listener", "update", (["flow"],))) == 2  # after each of the two hooks
    assert sum("fails failed" in r.getMessage() for r in caplog.records) == 2  # each run logged it, and went on


def test_the_table_follows_addons_added_and_removed():
    async def main():
        with _master(LeanMaster) as m:
            return await steps(m)

    async def steps(m):
        assert isinstance(m.addons, HookTable)
        calls: list = []
        first = Recorder("first", calls)
        m.addons.add(first)
        flow = tflow.tflow()
        await m.addons.handle_lifecycle(HttpRequestHook(flow))
        late = Recorder("late", calls)
        m.addons.add(late)
        await m.addons.handle_lifecycle(HttpRequestHook(flow))
        m.addons.remove(first)
        await m.addons.handle_lifecycle(HttpRequestHook(flow))
        return [name for name, _, _ in calls]

    assert _run(main()) == ["first", "first", "late", "late"]


def test_updates_reach_a_listener_and_cost_nothing_without_one():
    async def main(with_listener: bool):
        with _master(LeanMaster) as m:
            return await steps(m, with_listener)

    async def steps(m, with_listener: bool):
        calls: list = []
        m.addons.add(Recorder("a", calls, hooks_=("request",)))
        if with_listener:
            m.addons.add(Recorder("view", calls, hooks_=("update",)))
        built = []
        here = threading.get_ident()
        original = hooks.UpdateHook.__init__

        def counting(self, *a, **k):
            if threading.get_ident() == here:  # not another master's, should one run in this process
                built.append(1)
            original(self, *a, **k)

        hooks.UpdateHook.__init__ = counting
        try:
            await m.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
        finally:
            hooks.UpdateHook.__init__ = original
        return [h for _, h, _ in calls], len(built)

    assert _run(main(True)) == (["request", "update"], 1)
    assert _run(main(False)) == (["request"], 0)


def test_an_addon_whose_hook_is_not_callable_is_left_out_and_said(caplog):
    async def main():
        with _master(LeanMaster) as m:
            calls: list = []
            broken = Recorder("broken", calls)
            broken.request = "not a function"
            m.addons.add(broken, Recorder("next", calls))
            await m.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
            return [name for name, _, _ in calls]

    with caplog.at_level(logging.ERROR):
        assert _run(main()) == ["next"]
    assert any("not callable" in r.getMessage() for r in caplog.records)
