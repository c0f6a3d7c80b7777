"""`authsome store`: where the vault's records live (this home's files, or a team's PostgreSQL)."""

from __future__ import annotations

import argparse

from authsome import render
from authsome.cli.common import add_json, refuse_inside_run

EPILOG = """\
examples:
  authsome store use postgresql://authsome@db.internal/authsome   # this home uses the team's store
  authsome store init                     # create (or upgrade) its tables, once per database
  authsome store push                     # move this home's records into it
  authsome store status                   # where records live, and whether this key opens them
  authsome store use local                # back to this home's own files
  authsome store rekey                    # rotate the master key (prints it when others need it)

in CI, two secrets and no `store use`:
  AUTHSOME_STORE=postgresql://ci:PASSWORD@db.internal/authsome
  AUTHSOME_MASTER_KEY=<the team's key>
  authsome run --deny-unmatched -- python agent.py   # a rotated token is written back for everyone

Every machine uses the same master key; the server sees ciphertext, ids,
versions and times only. Passwords never go on the command line: give them
to PostgreSQL's client (~/.pgpass, PGPASSFILE, PGPASSWORD) or put the whole
URL in AUTHSOME_STORE.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "store",
        help="where the vault's records live: this home, or a shared PostgreSQL (`store use|init|status|push|pull`)",
        description="Keep the vault's sealed records in this home's files (the default) or in a PostgreSQL\n"
        "database shared by a team or a CI fleet, where exactly one machine refreshes a token at a time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    store = p.add_subparsers(dest="store_command", metavar="COMMAND", parser_class=type(p))
    u = store.add_parser("use", help="choose the store of this home (a postgresql:// URL, or `local`)",
                         description="Save which store this home uses. AUTHSOME_STORE, when set, wins.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("url", metavar="URL|local", help="postgresql://USER@HOST[:PORT]/DB (no password), or local")
    u.set_defaults(func=cmd_use)
    i = store.add_parser("init", help="create or upgrade the store's tables (safe to run again)",
                         description="Create the tables authsome needs in the chosen PostgreSQL database,\n"
                         "or upgrade them; running it again changes nothing.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.set_defaults(func=cmd_init)
    s = store.add_parser("status", help="where records live, how many, and whether this machine's key opens them",
                         description="Show the store in use, its records, and which of them this machine's\n"
                         "master key opens. Exits 5 when the store cannot be used or a record does not open.",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json(s)
    s.set_defaults(func=cmd_status)
    for name, to_shared in (("push", True), ("pull", False)):
        c = store.add_parser(
            name,
            help="move this home's connections (and copy its clients) into the shared store" if to_shared
            else "move the shared store's connections (and copy its clients) into this home's files",
            description=("Move this home's records into the shared store." if to_shared else
                         "Move the shared store's records into this home's files (to leave the store).")
            + "\nConnections are moved, not copied: a rotating refresh token in two places forks the grant.\n"
            "A connection replaces the other side's only when it is a newer state of the same login; other\n"
            "records that differ are kept unless --force. Records stay sealed: nothing is decrypted.",
            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_argument("--force", action="store_true",
                       help="replace records that differ, even a newer state of a connection (which may put back a "
                            "refresh token the provider has already spent)")
        add_json(c)
        c.set_defaults(func=cmd_copy, to_shared=to_shared)
    r = store.add_parser(
        "rekey", help="rotate the master key: seal every record of the store with a new one",
        description="Seal every record of the store in use with a new master key, then put the new key where\n"
        "this machine's key came from (the key file or the OS keyring). With AUTHSOME_MASTER_KEY, or a shared\n"
        "store, the new key is printed once (AUTHSOME_MASTER_KEY=...) for you to put in place on every machine\n"
        "and in the CI secret store: machines still on the old key get a clear error and change nothing.\n"
        "Interrupted, it finishes when run again (the new key waits in master.key.new meanwhile).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.set_defaults(func=cmd_rekey)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _home():
    from authsome import paths

    return paths.ensure_home()


def cmd_use(args) -> int:
    from authsome import stores

    refuse_inside_run("`authsome store use`", "the command would choose where your records go")
    shown = stores.use(_home(), args.url)
    st = stores.status(_home())
    if shown is None:
        render.note(f"this home keeps its records in its own files ({st.location})")
        return 0
    render.note(f"this home now uses the store {shown}")
    import os

    if "AUTHSOME_STORE" in os.environ:
        render.note("note: AUTHSOME_STORE is set in this shell and wins over the saved choice")
    if st.problem:
        render.note(f"warning: {st.problem['message']}")
    elif st.schema is None:
        render.note("next: `authsome store init` creates its tables")
    elif st.unused_local and not st.counts:
        render.note(f"next: `authsome store push` moves this home's {st.unused_local} record(s) into it")
    return 0


def cmd_init(args) -> int:
    from authsome import stores

    refuse_inside_run("`authsome store init`")
    vault = stores.shared(_home())
    version, created = stores.init(vault)
    render.note(f"{'created' if created else 'checked'} the tables of {vault.records.location} (schema {version})")
    return 0


def cmd_status(args) -> int:
    from authsome import stores
    from authsome.errors import ExitCode

    st = stores.status(_home())
    failed = bool(st.problem or st.foreign or st.unreadable or (st.shared and st.schema is None))
    if args.json:
        render.as_json(st.to_dict())
        return ExitCode.VAULT if failed else 0
    rows = [("store", st.location + ("  (shared)" if st.shared else "  (this home's files)")),
            ("chosen by", st.source)]
    if st.shared and not st.problem:
        rows.append(("schema", str(st.schema) if st.schema is not None else "none: run `authsome store init`"))
    if st.problem:
        rows.append(("problem", st.problem["message"]))
    if st.counts:
        rows.append(("records", ", ".join(f"{n} {kind}" for kind, n in sorted(st.counts.items()))))
    if st.key:
        rows.append(("master key", f"{st.key['source']} ({st.key['location']}), id {st.key['id']}"))
        opened = f"{st.opens} of {st.opens + len(st.foreign) + len(st.unreadable)} open with it"
        rows.append(("this key", opened))
    if st.unused_local:
        rows.append(("not used", f"{st.unused_local} record(s) in this home's files (`authsome store push` moves them)"))
    render.key_values(rows)
    for rid in st.foreign:
        render.note(f"error: {rid} is sealed with another master key (left untouched)")
    for rid in st.unreadable:
        render.note(f"error: {rid} does not open: damaged, or not an authsome record (left untouched)")
    return ExitCode.VAULT if failed else 0


def cmd_copy(args) -> int:
    from authsome import stores

    refuse_inside_run(f"`authsome store {'push' if args.to_shared else 'pull'}`")
    results = stores.copy(_home(), to_shared=args.to_shared, force=args.force)
    if args.json:
        render.as_json([r.__dict__ for r in results])
    else:
        for r in results:
            render.out(f"{r.outcome:10} {r.rid}" + (f"  ({r.detail})" if r.detail else ""))
    kept = [r for r in results if r.outcome == "kept"]
    if kept:
        render.note(f"{len(kept)} record(s) differ and were kept as they are on the other side "
                    "(a newer connection there, or --force replaces them)")
    failed = [r for r in results if r.outcome not in ("moved", "copied", "replaced", "same", "kept")]
    if not results:
        render.note("nothing to copy")
    return 5 if failed else 0


def cmd_rekey(args) -> int:
    import sys

    from authsome import stores

    refuse_inside_run("`authsome store rekey`")
    count, where, shown = stores.rekey(_home())
    if shown is not None:
        render.out(f"AUTHSOME_MASTER_KEY={shown}")
        sys.stdout.flush()
    render.note(f"sealed {count} record(s) with the new master key")
    if where == "AUTHSOME_MASTER_KEY":
        render.note("set AUTHSOME_MASTER_KEY to the new key (printed above) wherever it was set; until then it "
                    "also waits in master.key.new in this home, which you delete once it is in place")
    else:
        render.note(f"this machine's key is now in {where}")
    if shown is not None and where != "AUTHSOME_MASTER_KEY":
        render.note("every other machine and CI job using this store needs the new key (printed above)")
    return 0
