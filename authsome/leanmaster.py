"""The master of a run without a UI: mitmproxy's own, with a faster addon dispatch.

mitmproxy's addon manager, for every event and every addon in the chain,
starts a coroutine, a context manager and two generators, and lists the
event's dataclass fields again, whether or not the addon implements the
event. A request inside a tunnel raises eight events (each of the four
request and response hooks is followed by an `update`), so with eleven
addons that was most of what the addons cost per request.

`HookTable` looks up, once per event name, which addons implement it, and
calls only those: in chain order, awaiting what they return, with the stock
error handling (`safecall`: an addon's exception is logged and the next
addon runs; `AddonHalt` stops the event). The table is built again
whenever an addon is added or removed; a hook an addon assigns itself
later is not seen until then, and an addon with a hook that is not
callable is left out (said once) rather than half-called. None of ours
does either. The addons themselves are the ones a stock `mitmproxy -s`
loads; the UIs keep the stock manager.

It also drops mitmproxy's debug-only type checks of message fields, as
`python -O` would (`_without_debug_type_checks`).

Import after `authsome.proxy._lean_addons_package()`: this imports
`mitmproxy.master`.
"""

from __future__ import annotations

import inspect

from mitmproxy import addonmanager, exceptions, flow, hooks, http, master


class HookTable(addonmanager.AddonManager):
    def __init__(self, m) -> None:
        super().__init__(m)
        # event name -> for each addon in the chain that implements it: its callables (its sub-addons' too)
        self._table: dict[str, tuple[tuple, ...]] = {}

    def register(self, addon):  # add() comes here too
        self._table.clear()
        return super().register(addon)

    def remove(self, addon) -> None:
        self._table.clear()
        super().remove(addon)

    def clear(self) -> None:
        self._table.clear()
        super().clear()

    def _callables(self, event: hooks.Hook) -> tuple[tuple, ...]:
        found = self._table.get(event.name)
        if found is None:
            per_addon = (self._implementing(a, event) for a in self.chain)
            found = self._table[event.name] = tuple(funcs for funcs in per_addon if funcs)
        return found

    def _implementing(self, addon, event: hooks.Hook) -> tuple:
        """The addon's (and its sub-addons') callables for the event; none if one is not callable."""
        with addonmanager.safecall():  # logs the AddonManagerError, as the stock manager would
            return tuple(func for _, func in self._iter_hooks(addon, event))
        return ()

    async def trigger_event(self, event: hooks.Hook) -> None:
        table = self._callables(event)
        if not table:
            return
        args = event.args()
        for funcs in table:
            try:
                with addonmanager.safecall():
                    for func in funcs:
                        result = func(*args)
                        if result is not None and inspect.isawaitable(result):
                            await result
            except exceptions.AddonHalt:
                return

    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        if not self._callables(_UPDATE):
            return  # nobody listens for updates: no UpdateHook per hook
        if isinstance(message := event.args()[0], flow.Flow):
            await self.trigger_event(hooks.UpdateHook([message]))


_UPDATE = hooks.UpdateHook([])  # for the table lookup only


class LeanMaster(master.Master):
    """A `mitmproxy.master.Master` whose addons are dispatched through a `HookTable`."""

    def __init__(self, opts) -> None:
        super().__init__(opts)
        # The stock manager made above holds no addons yet, and options hold it only weakly.
        self.addons = HookTable(self)
        _without_debug_type_checks()


def _without_debug_type_checks() -> None:
    """Build requests and responses as mitmproxy does under `python -O`.

    `MessageData.__post_init__` exists only `if __debug__:`; it type-checks
    every field of every request and response built, formatting an error
    message each time whether or not it fails: about 13% of the proxy's CPU
    per injected request (BENCHMARKS.md). The fields come from mitmproxy's
    own parsers, and later changes go through its property setters, which
    this does not touch. Process-wide, from the first lean master on.
    """
    http.MessageData.__post_init__ = _unchecked


def _unchecked(self) -> None:
    pass
