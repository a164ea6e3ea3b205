"""Sharding: N instances over one config, each running the rules whose stable hash is its own.

`shard: "i/N"` in the config (or `alertd run --shard i/N`, which wins) makes an instance
keep only the rules with `rule_shard(name, N) == i`, and only the sources that one of those
rules reads: a source none of the shard's rules reads is not polled by this instance. A
source no rule reads at all goes by the hash of its own name, so exactly one instance still
stores its samples. The hash is blake2b of the name, so every instance, Python version and
restart agrees on it (Python's `hash()` is salted per process).

Instances share nothing: each has its own store, and an Alertmanager cluster (the
`alertmanager` notifier) de-duplicates and routes what they send (see docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """This instance is shard `index` of `count` (0-based)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        """Whether the rule (or rule-less source) called `name` belongs to this shard."""
        return rule_shard(name, self.count) == self.index


def rule_shard(name: str, count: int) -> int:
    """The shard (0..count-1) of a name: blake2b of its UTF-8 bytes, modulo count."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(text) -> Shard:
    """`"i/N"` -> Shard; raises ValueError with what is wrong and what to write instead."""
    match = _FORM.match(str(text)) if isinstance(text, (str, int)) and not isinstance(text, bool) else None
    if match is None:
        raise ValueError(f'"{text}" is not a shard; write "i/N" such as "0/2" (instance i of N, counted from 0)')
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f'"{text}" has no shards; N must be at least 1, as in "0/2"')
    if index >= count:
        raise ValueError(f'"{text}" is out of range; i counts from 0 to N-1, so write "0/{count}" '
                         f'to "{count - 1}/{count}"')
    return Shard(index, count)


def source_owner(config, source: str, shard: Shard) -> bool:
    """Whether `shard` polls `source`: one of its rules reads it, or (read by no rule at
    all) the source's own name hashes to it."""
    readers = [rule.name for rule in config.rules if rule.source == source]
    if not readers:
        return shard.owns(f"source:{source}")
    return any(shard.owns(name) for name in readers)


def apply_shard(config, override: Shard | None = None):
    """`config` cut down to one shard: `override` (from --shard) or the config's `shard`.

    Returns the config unchanged when neither is set. The result keeps `shard` set and
    `all_rules` naming every rule of the file, so logs and `alertd validate` can say what
    this instance owns out of what. Applying it twice gives the same config.
    """
    shard = override or config.shard
    if shard is None:
        return config
    all_rules = config.all_rules or tuple(rule.name for rule in config.rules)
    rules = tuple(rule for rule in config.rules if shard.owns(rule.name))
    sources = {name: sc for name, sc in config.sources.items() if source_owner(config, name, shard)}
    return dataclasses.replace(config, rules=rules, sources=sources, shard=shard, all_rules=all_rules)


def describe(config) -> dict:
    """What an instance runs, for the start-up log, `alertd validate` and the status API."""
    if config.shard is None:
        return {"shard": None, "rules": [r.name for r in config.rules], "sources": sorted(config.sources)}
    return {"shard": str(config.shard), "rules": [r.name for r in config.rules],
            "rules_total": len(config.all_rules), "sources": sorted(config.sources)}
