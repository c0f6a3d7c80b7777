"""HTML of the local login pages. Every interpolated value goes through `esc`."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.4rem} label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;margin-top:.25rem}
button{margin-top:1.25rem;padding:.55rem 1.2rem;font:inherit;cursor:pointer}
.muted{color:#555;font-size:.9rem} .error{color:#b00020;font-weight:600}
.ok{color:#0a7d32} code{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}
.row{display:flex;gap:.5rem;align-items:center} .row input{flex:1}
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str, nonce: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style nonce='{esc(nonce)}'>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def form_page(*, title: str, intro: str, fields: list[Any], csrf: str, nonce: str,
              redirect_uri: str | None = None, error: str | None = None, values: dict[str, str] | None = None) -> bytes:
    values = values or {}
    parts = [f"<h1>{esc(title)}</h1><p>{esc(intro)}</p>"]
    if redirect_uri:
        parts.append(
            "<label for=redirect_uri>Redirect URI to register with the provider</label>"
            f"<div class=row><input id=redirect_uri readonly value='{esc(redirect_uri)}'>"
            "<button type=button id=copy>Copy</button></div>"
        )
    if error:
        parts.append(f"<p class=error role=alert>{esc(error)}</p>")
    parts.append(f"<form method=post action='/' autocomplete=off><input type=hidden name=csrf value='{esc(csrf)}'>")
    for f in fields:
        kind = "password" if f.secret else "text"
        keep = "" if f.secret else esc(values.get(f.name, ""))
        req = " required" if f.required else ""
        hint = f"<div class=muted>{esc(f.hint)}</div>" if f.hint else ""
        parts.append(
            f"<label for={esc(f.name)}>{esc(f.label)}</label>"
            f"<input id={esc(f.name)} name={esc(f.name)} type={kind} value='{keep}'{req} spellcheck=false>{hint}"
        )
    parts.append("<button type=submit id=submit>Continue</button></form>")
    parts.append("<p class=muted>Values are stored encrypted in your local authsome vault and never leave this machine.</p>")
    if redirect_uri:
        parts.append(
            f"<script nonce='{esc(nonce)}'>document.getElementById('copy').onclick=function(){{"
            "var i=document.getElementById('redirect_uri');i.select();"
            "if(navigator.clipboard){navigator.clipboard.writeText(i.value)}else{document.execCommand('copy')}"
            "this.textContent='Copied'}</script>"
        )
    return _page(title, "".join(parts), nonce)


def result_page(*, ok: bool, title: str, message: str, detail: str | None, nonce: str) -> bytes:
    cls = "ok" if ok else "error"
    body = f"<h1 class={cls}>{esc(title)}</h1><p>{esc(message)}</p>"
    if detail:
        body += f"<p class=muted>{esc(detail)}</p>"
    body += "<p class=muted>You can close this window and return to the terminal.</p>"
    return _page(title, body, nonce)
