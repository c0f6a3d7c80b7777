"""`authsome completion bash|zsh|fish`: shell completion for commands, options and their choices.

The scripts are generated from the parser itself, so they never drift from
what the commands accept.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "fish")


def register(sub) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print the completion script for SHELL: commands, their options and the values options take.",
        epilog="examples:\n"
        "  authsome completion bash > ~/.local/share/bash-completion/completions/authsome\n"
        "  source <(authsome completion zsh)     # in ~/.zshrc, after compinit\n"
        "  authsome completion fish > ~/.config/fish/completions/authsome.fish",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    p.set_defaults(func=cmd_completion)


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> list[tuple[list[str], list[str], str]]:
    """(option strings, choices, help) of each option, those of nested commands (`ci export`) included."""
    found = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            found += [option for sub in a.choices.values() for option in _options(sub)]
        elif a.option_strings and a.help != argparse.SUPPRESS:
            found.append((list(a.option_strings), [str(c) for c in (a.choices or ())], (a.help or "").replace("%(default)s", str(a.default))))
    out, seen = [], set()
    for option in found:  # -h and -v once, though every nested command has them
        if not seen & set(option[0]):
            seen.update(option[0])
            out.append(option)
    return out


def bash(parser: argparse.ArgumentParser) -> str:
    commands = _commands(parser)
    cases = []
    for name, sub in commands.items():
        words = " ".join(o for opts, _, _ in _options(sub) for o in opts)
        values = "".join(f"        {'|'.join(opts)}) COMPREPLY=($(compgen -W \"{' '.join(choices)}\" -- \"$cur\")); return;;\n"
                         for opts, choices, _ in _options(sub) if choices)
        positional = next((a.choices for a in sub._actions if not a.option_strings and a.choices), None)
        fallback = f'compgen -W "{" ".join(map(str, positional))} {words}" -- "$cur"' if positional else f'compgen -W "{words}" -- "$cur"'
        cases.append(f"    {name})\n      case \"$prev\" in\n{values}      esac\n      COMPREPLY=($({fallback}));;\n")
    return f"""# bash completion for authsome (authsome completion bash)
_authsome() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" command="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in --) return;; -*) ;; *) command="${{COMP_WORDS[i]}}"; break;; esac
  done
  if [ -z "$command" ]; then
    COMPREPLY=($(compgen -W "{' '.join(commands)} --help --version --verbose" -- "$cur")); return
  fi
  case "$command" in
{''.join(cases)}  esac
}}
complete -o default -F _authsome authsome
"""


def zsh(parser: argparse.ArgumentParser) -> str:
    return ("# zsh completion for authsome: add `source <(authsome completion zsh)` to ~/.zshrc, after compinit\n"
            "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser))


def fish(parser: argparse.ArgumentParser) -> str:
    commands = _commands(parser)
    lines = ["# fish completion for authsome (authsome completion fish)", "complete -c authsome -f"]
    for name, sub in commands.items():
        summary = (sub.description or "").split("\n")[0].replace("'", "\\'")
        lines.append(f"complete -c authsome -n __fish_use_subcommand -a {name} -d '{summary[:60]}'")
        for opts, choices, text in _options(sub):
            flags = " ".join(f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}" for o in opts)
            values = f" -x -a '{' '.join(choices)}'" if choices else ""
            lines.append(f"complete -c authsome -n '__fish_seen_subcommand_from {name}' {flags}{values} "
                         f"-d '{text[:60].replace(chr(39), '')}'")
        positional = next((a.choices for a in sub._actions if not a.option_strings and a.choices), None)
        if positional:
            lines.append(f"complete -c authsome -n '__fish_seen_subcommand_from {name}' -a '{' '.join(map(str, positional))}'")
    return "\n".join(lines) + "\n"


def cmd_completion(args) -> int:
    from authsome import render
    from authsome.cli import build_parser

    render.out({"bash": bash, "zsh": zsh, "fish": fish}[args.shell](build_parser()).rstrip("\n"))
    return 0
