"""The ``%aefi`` line magic: open an Explorer on variables of the notebook, from one line.

``%load_ext aefi_widget`` registers it (see :func:`aefi_widget.load_ipython_extension`)::

    %aefi model X --method shapley --top 20 --groups auto
    %aefi model X --set n_repeats=10 --seed 0 --as explorer

is ``aefi.Explorer(model, X, method="shapley", top=20, groups="auto")`` (the second one also
binds the explorer to ``explorer``). Arguments are parsed with IPython's own argparse-based
``MagicArgumentParser``; anything wrong (an unknown variable or option, a bad value) raises
``UsageError``, which IPython shows as one line, not a traceback, before any work starts.
Variable names are looked up in the user's namespace (``name`` or ``name.attribute``), never
evaluated; ``--set`` values are Python literals (``ast.literal_eval``).
"""

from __future__ import annotations

import ast
import difflib
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from aefi_widget.widget.methods import METHOD_KEYS

__all__ = ["aefi_magic", "build_parser", "complete", "register"]

_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


class _Parser(MagicArgumentParser):
    """IPython's parser (errors raise UsageError), with messages that name the magic."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"%aefi: {message} (see %aefi --help)")


def build_parser() -> MagicArgumentParser:
    """The argument parser of ``%aefi`` (its ``format_help()`` is what ``--help`` prints)."""
    parser = _Parser(
        prog="aefi",  # IPython's help formatter writes the "%"
        description="Open an aefi_widget Explorer on a model and data of the notebook.",
        epilog="Example: %aefi model X --method shapley --top 20 --groups auto",
    )
    parser.add_argument("model", help="variable holding the autoencoder (torch.nn.Module)")
    parser.add_argument("X", help="variable holding the samples, shape (n, d)")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and stop")
    parser.add_argument(
        "--method",
        default="permutation",
        choices=METHOD_KEYS,
        help="method computed first (default: permutation)",
    )
    parser.add_argument("--top", type=int, default=20, help="features charted (default: 20)")
    parser.add_argument(
        "--groups",
        default=None,
        help="'auto' (correlated groups) or a variable holding {group: [names]}",
    )
    parser.add_argument(
        "--feature-names",
        dest="feature_names",
        default=None,
        help="variable holding the feature names",
    )
    parser.add_argument("--metric", default=None, help="error metric, e.g. mse, mae")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another keyword of the method, value a Python literal "
        "(repeatable), e.g. --set n_repeats=10",
    )
    parser.add_argument(
        "--no-first-look",
        dest="first_look",
        action="store_false",
        help="skip the quick first look before permutation or shapley",
    )
    parser.add_argument(
        "--no-start",
        dest="autostart",
        action="store_false",
        help="build the explorer without starting it (explorer.start())",
    )
    parser.add_argument(
        "--as",
        dest="target",
        default=None,
        metavar="NAME",
        help="also bind the explorer to this variable",
    )
    return parser


def _lookup(namespace: dict[str, Any], name: str, what: str) -> Any:
    """The value of ``name`` (``a`` or ``a.b.c``) in ``namespace``; UsageError naming near
    matches when there is none."""
    if not _NAME.match(name):
        raise UsageError(f"%aefi: {what} must be a variable name, got {name!r}")
    head, *attributes = name.split(".")
    if head not in namespace:
        near = difflib.get_close_matches(head, [n for n in namespace if not n.startswith("_")])
        hint = f"; did you mean {' or '.join(near[:3])}?" if near else ""
        raise UsageError(f"%aefi: no variable named {head!r} for {what}{hint}")
    value = namespace[head]
    for attribute in attributes:
        if not hasattr(value, attribute):
            raise UsageError(f"%aefi: {name!r} for {what}: no attribute {attribute!r}")
        value = getattr(value, attribute)
    return value


def _keywords(settings: list[str]) -> dict[str, Any]:
    """``["n_repeats=10", ...]`` as a dict of Python literals; UsageError on a bad one."""
    keywords: dict[str, Any] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"%aefi: --set takes KEY=VALUE, got {setting!r}")
        try:
            keywords[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise UsageError(
                f"%aefi: --set {key}: {text!r} is not a Python literal (quote strings: "
                f"--set {key}='\"text\"')"
            ) from None
    return keywords


def explorer_arguments(
    line: str, namespace: dict[str, Any]
) -> tuple[dict[str, Any], str | None] | None:
    """The keywords of ``aefi.Explorer(**keywords)`` that ``%aefi line`` means and the ``--as``
    name (or None), or None for ``--help`` (printed). Raises UsageError for anything wrong."""
    parser = build_parser()
    argv = line.split()
    if {"-h", "--help"} & set(argv):
        print(parser.format_help())
        return None
    args = parser.parse_argstring(line)
    keywords = _keywords(args.settings)
    for name in ("method", "top", "first_look", "autostart"):
        keywords[name] = getattr(args, name)
    keywords["model"] = _lookup(namespace, args.model, "the model")
    keywords["X"] = _lookup(namespace, args.X, "X")
    if args.groups is not None:
        keywords["groups"] = (
            "auto" if args.groups == "auto" else _lookup(namespace, args.groups, "--groups")
        )
    if args.feature_names is not None:
        keywords["feature_names"] = _lookup(namespace, args.feature_names, "--feature-names")
    for name in ("metric", "seed"):
        if getattr(args, name) is not None:
            keywords[name] = getattr(args, name)
    if args.target is not None and not args.target.isidentifier():
        raise UsageError(f"%aefi: --as takes a variable name, got {args.target!r}")
    return keywords, args.target


def aefi_magic(shell: Any, line: str) -> Any:
    """Run ``%aefi line`` in ``shell``: the Explorer (displayed as the cell's value), or None.

    The Explorer's own checks (a bad ``--top``, an unknown ``--set`` keyword, data of the
    wrong shape) come back as one-line UsageErrors too; errors from inside a computation
    are the Explorer's, shown in its page.
    """
    parsed = explorer_arguments(line, shell.user_ns)
    if parsed is None:
        return None
    keywords, target = parsed
    from aefi_widget.widget import Explorer  # anywidget loads only when the magic is used

    try:
        explorer = Explorer(**keywords)
    except (TypeError, ValueError) as error:
        raise UsageError(f"%aefi: {error}") from None
    if target is not None:
        shell.user_ns[target] = explorer
    return explorer


def complete(shell: Any, event: Any) -> list[str]:
    """Tab completion after ``%aefi``: options after a ``-``, else the notebook's variables."""
    token = event.symbol
    before = event.line[: len(event.line) - len(token)].split()
    if before[-1:] == ["--method"]:
        choices: list[str] = list(METHOD_KEYS)
    elif token.startswith("-"):
        choices = re.findall(r"--?[\w-]+", build_parser().format_usage())
    else:
        choices = sorted(n for n in shell.user_ns if not n.startswith("_"))
    return [choice for choice in choices if choice.startswith(token)]


def register(shell: Any) -> None:
    """Register ``%aefi`` and its tab completion with the IPython ``shell``."""

    def aefi(line: str) -> Any:
        return aefi_magic(shell, line)

    aefi.__doc__ = build_parser().format_help()  # what %aefi? shows
    shell.register_magic_function(aefi, magic_kind="line", magic_name="aefi")
    shell.set_hook("complete_command", lambda _self, event: complete(shell, event), str_key="%aefi")
