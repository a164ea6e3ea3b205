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
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # merged (`<<: *base`) pairs first, then the mapping's own
    merged = len(node.value) - own
    result = YamlMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    own_keys = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a list or mapping cannot be a key", key_node.start_mark) from None
        if index >= merged:  # a key may override a merged one, but not appear twice itself
            if key in own_keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            own_keys.add(key)
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


MAX_DEPTH = 64  # nested lists and mappings; a config needs a handful
MAX_NODES = 250_000  # values after alias expansion; a large config has a few thousand


def _check_depth(text: str, path: str) -> None:
    """Refuse documents nested deeper than MAX_DEPTH before the (recursive) composer sees them.

    The event parser is a state machine, not recursive, so this walk is safe on any input.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_LineLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlSyntaxError(path, event.start_mark.line + 1,
                                      f"lists and mappings are nested more than {MAX_DEPTH} deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_size(root, path: str) -> None:
    """Refuse documents whose aliases expand to more than MAX_NODES values ("billion laughs").

    Counts each node as often as aliases repeat it, memoised per node, so the walk itself
    costs only the size of the graph. A cycle counts once (the constructor refuses it).
    """
    sizes: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes and not done:
            continue
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not done:
            sizes[id(node)] = 1  # provisional: a cycle back to it counts 1
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(c), 1) for c in children)
        sizes[id(node)] = total
        if total > MAX_NODES:
            raise YamlSyntaxError(path, node.start_mark.line + 1,
                                  f"aliases (*name) expand this value to more than {MAX_NODES} values")


def load_yaml(text: str, path: str = "<string>"):
    """Parse YAML text into YamlMap/YamlList/scalars, raising YamlSyntaxError on bad syntax.

    Documents nested too deeply or whose aliases expand too far are refused with the line
    where that happens, so neither recursion nor memory can be exhausted by a config file.
    """
    try:
        _check_depth(text, path)
        loader = _LineLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_size(node, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlSyntaxError(path, line, exc.problem or str(exc)) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: say where
        line = text.count("\n", 0, exc.position) + 1
        raise YamlSyntaxError(path, line, f"the character U+{exc.character if isinstance(exc.character, int) else ord(exc.character):04X} (column "
                              f"{exc.position - text.rfind(chr(10), 0, exc.position)}) is not allowed "
                              "in YAML") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(path, 1, str(exc)) from None


def dump_yaml(data) -> str:
    """Plain data as block-style YAML, keys in their order (the one place alertd writes YAML:
    its routing as an Alertmanager config, for amtool)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
