"""A strict YAML loader for spec files: safe tags only, no duplicate keys, bounded aliases.

PyYAML's `safe_load` lets the last of two equal keys win (a whole `decisions` list can vanish)
and shares an aliased node between its uses, so a few hundred bytes of nested aliases stand
for billions of values that any later walk (validation, an error message) expands.
"""
from __future__ import annotations

from typing import Any

import yaml

MERGE = "tag:yaml.org,2002:merge"
BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml's parser when built


class StrictLoader(BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, refusing duplicate mapping keys (the constructor is Python either way)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE:                # `<<: *base` may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:                        # unhashable: SafeLoader reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {str(key)[:80]!r} (first at line {first})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _expanded_size(root: Any, limit: int) -> int:
    """Nodes in the tree `root` stands for, each alias counted in full, up to `limit`.

    Iterative and memoised (an anchored node is sized once): linear in the document.
    """
    size: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in size and not expanded:
            continue
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if expanded:
            size[id(node)] = min(limit + 1, 1 + sum(size.get(id(c), 1) for c in children))
        else:
            size[id(node)] = 1                      # a recursive alias counts once
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)]


def load(text: str, max_nodes: int) -> Any:
    """The one document in `text` (yaml.YAMLError when it breaks a rule above)."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, max_nodes) > max_nodes:
            raise yaml.YAMLError(f"with its aliases expanded the document has more than {max_nodes} "
                                 "values")
        return loader.construct_document(node)
    finally:
        loader.dispose()
