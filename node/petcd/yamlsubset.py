"""A reader for the YAML subset etcd's sample configuration file uses.

:func:`load_yaml` uses PyYAML when it is installed; otherwise it reads a mapping of scalars,
inline or block lists and one nested mapping level, and raises ValueError on anything else.
It knows nothing about etcd's keys (:func:`petcd.flags.config_file_values` maps them).
"""

from __future__ import annotations

import re

from petcd import errors

__all__ = ["YamlValue", "load_yaml"]

YamlValue = object


def _yaml_scalar(text: str) -> YamlValue:
    t = text.strip()
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        inner = t[1:-1]
        return inner.replace("''", "'") if t[0] == "'" else inner.encode().decode("unicode_escape")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t.startswith("[") and t.endswith("]"):
        body = t[1:-1].strip()
        return [_yaml_scalar(x) for x in body.split(",")] if body else []
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    return t


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def load_yaml(text: str) -> YamlValue:
    """Parse a YAML document: PyYAML when installed, else a mapping of scalars, inline or
    block lists and one nested mapping level. Raises ValueError on anything else."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None
    root: dict[str, YamlValue] = {}
    parent_key: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0:
            parent_key = None
        if body.startswith("- "):
            if parent_key is None:
                raise ValueError(errors.YAML_UNEXPECTED_LIST_ITEM.format(lineno=lineno))
            current = root.get(parent_key)
            if not isinstance(current, list):
                current = []
                root[parent_key] = current
            current.append(_yaml_scalar(body[2:]))
            continue
        key, sep, rest = body.partition(":")
        if not sep or (rest and not rest.startswith(" ")):
            raise ValueError(errors.YAML_EXPECTED_KEY_VALUE.format(lineno=lineno))
        key = str(_yaml_scalar(key))
        if indent == 0:
            if rest.strip():
                root[key] = _yaml_scalar(rest)
            else:
                root[key] = None
                parent_key = key
        else:
            if parent_key is None:
                raise ValueError(errors.YAML_UNEXPECTED_INDENT.format(lineno=lineno))
            sub = root.get(parent_key)
            if not isinstance(sub, dict):
                sub = {}
                root[parent_key] = sub
            sub[key] = _yaml_scalar(rest)
    return root
