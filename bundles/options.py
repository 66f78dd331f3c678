"""User options: ``zipline -x key=value`` arguments, comma/``@file`` lists and yes/no words,
parsed once here."""
from __future__ import annotations

from pathlib import Path

#: the words a user may give for a yes/no option (compared stripped and lower-cased)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def extension_args():
    """The namespace zipline builds from ``-x`` (``zipline.extension_args``), or None."""
    import zipline

    return getattr(zipline, "extension_args", None)


def extension_value(name: str, namespace: str | None = None):
    """The ``-x`` value of ``name`` (``-x namespace.name=...`` when ``namespace`` is given).

    Only plain strings count: under the top level, ``polygon`` is a nested namespace, not a value.
    """
    args = extension_args()
    if args is None:
        return None
    if namespace is not None:
        args = getattr(args, namespace, None)
        if args is None:
            return None
    value = getattr(args, name, None)
    return value if isinstance(value, str) else None


def parse_list(value) -> list[str] | None:
    """A user's list: ``None``, ``""`` and ``"all"`` -> None; ``"A,B"`` or a sequence -> unique
    items in order; ``"@file"`` -> the items in the file (commas or one per line, ``#`` starts a
    comment). A missing ``@file`` raises ``ValueError`` naming it."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.lower() in ("", "all"):
            return None
        if text.startswith("@"):
            path = Path(text[1:]).expanduser()
            if not path.is_file():
                raise ValueError(f"list file {path} does not exist")
            text = ",".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        items = [t.strip() for t in text.split(",")]
    items = list(dict.fromkeys(t for t in items if t))
    return items or None


def parse_bool(text: str) -> bool | None:
    """A user's yes/no word (:data:`TRUE_WORDS`, :data:`FALSE_WORDS`; any case, surrounding
    spaces ignored) as a bool; None when it is neither, so each caller words its own error."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
