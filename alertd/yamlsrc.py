"""YAML loading that remembers where every key came from.

`load_yaml` uses a `yaml.SafeLoader` subclass (so it is exactly as safe as `yaml.safe_load`)
whose mappings are `YamlMap`s: plain dicts that also know the line of each key, so config
errors can name file, line and key.
"""

from __future__ import annotations

import re

import yaml


class YamlMap(dict):
    """A dict from YAML that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return getattr(self, "key_lines", {}).get(key, self.line)


class YamlList(list):
    """A list from YAML that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        lines = getattr(self, "item_lines", [])
        return lines[index] if index < len(lines) else self.line


class _LineLoader(yaml.SafeLoader):
    pass


_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""")
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"""
                    r"""|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""")


def _without_sexagesimal() -> dict:
    """YAML 1.1 reads `18:00` as the number 1080 (base 60); Go YAML, which Prometheus and
    Alertmanager users know, reads a string. Use PyYAML's int and float patterns without
    their base-60 forms, so times of day and ranges such as `1:5` stay strings."""
    replace = {"tag:yaml.org,2002:int": _INT, "tag:yaml.org,2002:float": _FLOAT}
    return {first: [(tag, replace.get(tag, regex)) for tag, regex in pairs]
            for first, pairs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


_LineLoader.yaml_implicit_resolvers = _without_sexagesimal()


def _construct_map(loader, node):
    loader.flatten_mapping(node)
    result = YamlMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader, node):
    result = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


class YamlSyntaxError(Exception):
    """The file is not valid YAML; the message names the line and what the parser saw."""

    def __init__(self, path: str, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem
        super().__init__(f"{path}:{line}: the file is not valid YAML: {problem}; fix the syntax near that line.")


def load_yaml(text: str, path: str = "<string>"):
    """Parse YAML text into YamlMap/YamlList/scalars, raising YamlSyntaxError on bad syntax."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlSyntaxError(path, line, exc.problem or str(exc)) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(path, 0, str(exc)) from None
