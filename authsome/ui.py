"""What both of mitmproxy's UIs (web and console) lose or hide under authsome.

No flow ever holds a real credential (it exists only in the bytes sent
upstream, `addons/_wire.py`), so the flow list, detail views, exports,
filters, edits and saved flows are safe as they are. What is left to a UI:

- options that hold credentials (the proxy's password, an upstream proxy's)
  are shown and saved as `HIDDEN`, and the console does not list them;
- the default addons that run code or rewrite traffic are removed, with
  their commands (the options that remain are frozen by `authsome.proxy`).

mitmproxy is imported lazily: only the proxy thread loads this module.
"""

from __future__ import annotations

import sys

HIDDEN = "(hidden by authsome)"
# mitmproxy default addons a debugging UI for `authsome run` does without: loading
# scripts, rewriting requests and responses, serving canned responses, reading
# flows from files, the stock upstream auth (authsome has its own).
UNSAFE_ADDONS = ("scriptloader", "serverplayback", "mapremote", "maplocal", "modifybody", "modifyheaders",
                 "blocklist", "upstreamauth", "readfilestdin", "staticviewer", "browser")
SECRET_OPTIONS = ("proxyauth", "upstream_auth", "authsome_upstream_auth")


def strip_unsafe(master) -> None:
    """Remove the addons above from `master`, and the commands they leave behind."""
    removed = []
    for name in UNSAFE_ADDONS:
        if (addon := master.addons.get(name)) is not None:
            master.addons.remove(addon)
            removed.append(addon)
    for path, command in list(master.commands.commands.items()):
        if getattr(command.func, "__self__", None) in removed:
            del master.commands.commands[path]


def hide_secret_options() -> None:
    """Options pages, `options` dumps and `options.save` show no proxy credentials (idempotent).

    Used by both UIs, and by the Guard addon when a stock `mitmweb -s` or
    `mitmproxy -s` loads it.
    """
    from mitmproxy import optmanager

    if not getattr(optmanager, "authsome_patched", False):
        optmanager.authsome_patched = True
        original_dump = optmanager.dump_dicts

        def dump_dicts(opts, keys=None):
            out = original_dump(opts, keys)
            for name in SECRET_OPTIONS:
                if name in out and out[name].get("value"):
                    out[name] = {**out[name], "value": HIDDEN}
            return out

        def serialize(opts, file, text, defaults=False):
            import ruamel.yaml

            data = optmanager.parse(text)
            for name in opts.keys():
                if defaults or opts.has_changed(name):
                    value = getattr(opts, name)
                    data[name] = HIDDEN if name in SECRET_OPTIONS and value else value
            for name in [n for n in data if n not in opts._options]:
                del data[name]
            ruamel.yaml.YAML().dump(data, file)

        optmanager.dump_dicts = dump_dicts
        optmanager.serialize = serialize
    if "mitmproxy.tools.console.options" in sys.modules:
        _console_lists_no_secrets()


def _console_lists_no_secrets() -> None:
    """The console's options view leaves out the options that hold credentials (frozen anyway)."""
    from mitmproxy.tools.console import options as view

    if getattr(view, "authsome_patched", False):
        return
    view.authsome_patched = True

    def listed(names) -> list[str]:
        return sorted(name for name in names if name not in SECRET_OPTIONS)

    class Walker(view.OptionListWalker):
        def __init__(self, master, help_widget) -> None:
            super().__init__(master, help_widget)
            self.sig_mod()

        def sig_mod(self, *args, **kwargs) -> None:
            # The stock one lists every option again whenever any option changes.
            self.opts = listed(self.master.options.keys())
            self.maxlen = max(len(name) for name in self.opts)
            self._modified()
            self.set_focus(min(self.index, len(self.opts) - 1))

    view.OptionListWalker = Walker
