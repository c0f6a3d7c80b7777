"""mitmproxy's console for `authsome run --ui console` and `authsome proxy --ui console`.

The console runs on the proxy's thread; the main thread keeps the command
and the signals. urwid installs signal handlers when it starts, which only
the main thread may do, so the screen here installs none: the main thread
forwards window size changes (`resized`) and Ctrl-C (`ask_to_quit`).

Quitting (q at the flow list, Q, Ctrl-C) asks first while the command still
runs. What the console hides and loses is in `authsome.ui`; no flow ever
holds a credential. mitmproxy is imported lazily, on the proxy thread only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from authsome.ui import SECRET_OPTIONS, hide_secret_options, strip_unsafe


def console_master(opts, still_running: Callable[[], str | None]):
    """A ConsoleMaster for a background thread. `still_running()` names what quitting would stop, or None."""
    from mitmproxy.log import LogEntry
    from mitmproxy.tools.console import master as console
    from mitmproxy.tools.console import signals, window

    class Screen(window.Screen):
        def signal_init(self) -> None:
            pass  # the main thread forwards SIGWINCH (see `resized`)

        def signal_restore(self) -> None:
            pass

    class Master(console.ConsoleMaster):
        def __init__(self, options) -> None:
            super().__init__(options)
            self.commands.add("console.exit", self.exit_asking)  # Q: asks too while the command runs
            self._held: list[logging.Handler] | None = None

        async def running(self) -> None:
            stock, window.Screen = window.Screen, Screen  # the one screen ConsoleMaster.running() makes
            try:
                self._authsome_logs_here()
                await super().running()
            finally:
                window.Screen = stock

        async def done(self) -> None:
            await super().done()
            self._authsome_logs_back()

        def prompt_for_exit(self) -> None:
            what = still_running()
            if what is None:
                super().prompt_for_exit()
            else:
                self.prompt_for_user_choice(f"{what} still runs. Quit and stop it", self.quit)

        def exit_asking(self) -> None:
            """Exit (asks first while the command still runs)."""
            if still_running() is None:
                self.shutdown()
            else:
                self.prompt_for_exit()

        # -- called from the main thread ------------------------------------------

        def say(self, text: str) -> None:
            """Show `text` in the status bar until the next message, and in the event log."""
            def show() -> None:
                entry = LogEntry(text, "info")
                self.events.data.append(entry)
                self.events.sig_add.send(entry)
                signals.status_message.send(message=text, expire=None)

            self.event_loop.call_soon_threadsafe(show)

        def ask_to_quit(self) -> None:
            self.event_loop.call_soon_threadsafe(self.exit_asking)

        def resized(self) -> None:
            ui = getattr(self, "ui", None)
            if ui is not None:
                self.event_loop.call_soon_threadsafe(ui._sigwinch_handler, 28, None)

        def suspend(self, timeout: float = 2.0) -> None:
            """Ctrl-Z: give the terminal back as it was (returns once done); `resume` takes it again."""
            ui, done = getattr(self, "ui", None), threading.Event()

            def stop() -> None:
                try:
                    if ui is not None:
                        ui.stop()
                finally:
                    done.set()

            self.event_loop.call_soon_threadsafe(stop)
            done.wait(timeout)

        def resume(self) -> None:
            ui = getattr(self, "ui", None)

            def start() -> None:
                if ui is not None:
                    ui.start()
                    self.loop.screen_size = None
                    self.loop.draw_screen()

            self.event_loop.call_soon_threadsafe(start)

        # -- authsome's own warnings go to the event log, not over the screen ----------

        def _authsome_logs_here(self) -> None:
            logger = logging.getLogger("authsome")
            self._held = list(logger.handlers)
            for handler in self._held:
                logger.removeHandler(handler)
            logger.propagate = True  # to the root logger, where the event log listens

        def _authsome_logs_back(self) -> None:
            logger = logging.getLogger("authsome")
            if self._held is not None:
                logger.propagate = False
                for handler in self._held:
                    logger.addHandler(handler)
                self._held = None

    def no_server_replay() -> int:
        """Server replay is not available under authsome (it serves canned responses)."""
        return 0

    def command_set(option_name: str) -> None:
        """Prompt the user to set an option (an option holding credentials shows no value)."""
        value = "" if option_name in SECRET_OPTIONS else getattr(m.options, option_name, None) or ""
        partial = f"set {option_name} {value!r}" if value else f"set {option_name} "
        signals.status_prompt_command.send(partial=partial, cursor=len(partial) - (1 if value else 0))

    m = Master(opts)
    hide_secret_options()  # after the console modules are imported: its options view too
    strip_unsafe(m)
    m.commands.add("replay.server.count", no_server_replay)  # the status bar asks for it at every redraw
    m.commands.add("console.command.set", command_set)  # the stock one puts the value in the prompt
    return m
