"""Validated YAML config files (scenarios, experiment specs, governance configs).

One way to read them all: YAML with dates left as text, a strict pydantic model, and every
problem reported together with its field path and how to fix it. Built-in files live in a
package's ``library`` folder and are found by name.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_HINTS = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add this field",
    "greater_than_equal": "raise the value",
    "less_than_equal": "lower the value",
    "greater_than": "raise the value",
    "less_than": "lower the value",
    "date_from_datetime_parsing": "write dates as YYYY-MM-DD",
    "date_parsing": "write dates as YYYY-MM-DD",
    "float_parsing": "give a number",
    "int_parsing": "give a whole number",
    "literal_error": "use one of the allowed values",
}


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ConfigError(ValueError):
    """A config file that cannot be used; ``problems`` lists every issue found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text (pydantic reports a bad date with its field) and
    refuses a key given twice in one mapping (plain YAML lets the last one silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                first = seen[key]
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first.line + 1}): give each key once",
                    key_node.start_mark,
                )
            if isinstance(key, Hashable):
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def problem_from_pydantic(error: Any) -> Problem:
    """A pydantic error as a Problem: dotted field path, message and a hint how to fix it."""
    err = dict(error)
    where = ".".join(str(p) for p in err["loc"]) or "file"
    hint = _HINTS.get(err["type"], "")
    message = err["msg"].removeprefix("Value error, ")
    return Problem(where, f"{message}{'; ' + hint if hint else ''}")


def parse_yaml_model(
    text: str, model: type[M], source: str, error: type[ConfigError], what: str
) -> M:
    """Parse YAML ``text`` into ``model``; raise ``error`` listing every problem.

    ``what`` names the document in messages ("scenario", "experiment", ...).
    """
    try:
        raw = yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        what_wrong = getattr(exc, "problem", None) or str(exc)
        raise error(source, [Problem(where, f"not valid YAML: {what_wrong}")]) from None
    if not isinstance(raw, dict):
        raise error(source, [Problem("file", f"expected a mapping of {what} fields")])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(source, [problem_from_pydantic(e) for e in exc.errors()]) from None


def read_text(path: Path, error: type[ConfigError], what: str) -> str:
    """The text of a config file; a directory, an unreadable, binary or non-UTF-8 file is
    refused with the file named."""
    if path.is_dir():
        raise error(str(path), [Problem("file", f"is a folder: give the {what} YAML file")])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(str(path), [Problem("file", f"cannot be read ({exc.strerror})")]) from None
    if b"\0" in data:
        raise error(str(path), [Problem("file", f"is a binary file, not a {what} YAML file")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            str(path),
            [Problem(f"line {line}", "is not UTF-8 text: save the file as UTF-8")],
        ) from None


def library_names(package: str) -> list[str]:
    """Names of the built-in YAML files of ``package`` (its ``*.yaml`` files)."""
    files = resources.files(package).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def resolve(name_or_path: str | Path, package: str, error: type[ConfigError], what: str) -> Path:
    """A file path, from a path or the name of a built-in file of ``package``."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if path.is_dir():
            raise error(str(path), [Problem("file", f"is a folder: give the {what} YAML file")])
        if not path.is_file():
            raise error(str(path), [Problem("file", "not found: check the path")])
        return path
    names = library_names(package)
    if str(name_or_path) not in names:
        raise error(
            str(name_or_path),
            [Problem("name", f"no built-in {what} of that name; valid: {', '.join(names)}")],
        )
    return Path(str(resources.files(package).joinpath(f"{name_or_path}.yaml")))
