"""Find, parse and validate an environment's configuration file.

Every problem in a file is reported at once, one line each, naming the file,
the key path, the bad value and what is allowed. Nothing is synthesized from a
configuration that did not validate.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.schema import ENV_NAME_ALLOWED, ENV_NAME_PATTERN, SANDBOX, KeyedError, PlatformConfig

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent / "environments"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; allowed: each key once per mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def available_environments(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[str]:
    """The sandbox (always there) plus one environment per ``<name>.yaml`` file."""
    names = {p.stem for p in config_dir.glob("*.yaml")} if config_dir.is_dir() else set()
    return sorted(names | {SANDBOX})


def load_config(env_name: str | None = None, *, config_dir: Path = DEFAULT_CONFIG_DIR) -> PlatformConfig:
    """Load environment ``env_name`` (default: the embedded sandbox) from ``config_dir``."""
    name = env_name or SANDBOX
    if not ENV_NAME_PATTERN.match(name):
        raise ConfigError(
            f"environment name {name!r} (context key 'env') is invalid; allowed: {ENV_NAME_ALLOWED}"
        )
    path = config_dir / f"{name}.yaml"
    if not path.is_file():
        if name == SANDBOX:
            return PlatformConfig()
        raise ConfigError(
            f"unknown environment {name!r} (context key 'env'): there is no {display_path(path)}; "
            f"allowed: {', '.join(available_environments(config_dir))}"
        )
    return parse_config(path.read_text(encoding="utf-8"), source=path, env_name=name)


def parse_config(text: str, *, source: Path, env_name: str) -> PlatformConfig:
    """Validate YAML ``text`` read from ``source`` as environment ``env_name``."""
    where = display_path(source)
    data = read_mapping(text, where=where, what="configuration")
    data.setdefault("name", env_name)
    if data["name"] != env_name:
        raise ConfigError(
            f"Invalid configuration in {where}:\n  - name: {data['name']!r} differs from the file name; allowed: {env_name!r}"
        )
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(report(f"Invalid configuration in {where}", [describe_error(e) for e in exc.errors()])) from None


def read_mapping(text: str, *, where: str, what: str) -> dict:
    """The YAML mapping in ``text`` (empty text: an empty one); a duplicate key or another top level is an error."""
    try:
        stream = io.StringIO(text)
        stream.name = where  # PyYAML names the stream in its error marks
        data = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"Invalid {what} in {where}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid {what} in {where}: the top level is a {type(data).__name__}; allowed: a mapping of keys")
    return data


def report(heading: str, problems: list[str]) -> str:
    """One message for every problem at once."""
    return f"{heading}:\n" + "\n".join(f"  - {problem}" for problem in problems)


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model that holds the keys at ``loc`` below ``root`` (used to list allowed keys)."""
    annotation: Any = root
    for part in loc:
        if isinstance(part, int):  # an item of a list: the list's item type
            annotation = next(iter(getattr(annotation, "__args__", ())), None)
            continue
        model = _model_in(annotation)
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
    return _model_in(annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model ``annotation`` is, or holds (``X | None``)."""
    candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
    return next((a for a in candidates if issubclass(a, BaseModel)), None)


def describe_error(error: dict[str, Any], root: type[BaseModel] = PlatformConfig) -> str:
    """One line for a pydantic error of ``root``: the key path, the bad value and what is allowed."""
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedError):
        path = ".".join(map(str, loc + (cause.key,)))
        return f"{path}: {cause}"
    path = ".".join(map(str, loc)) or "(top level)"
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], root)
        allowed = ", ".join(parent.model_fields) if parent else "none"
        return f"{path}: unknown key (value {value!r}); allowed keys here: {allowed}"
    if kind == "missing":
        return f"{path}: required key is missing"
    bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(error["ctx"].values()))
        return f"{path}: got {value!r}; allowed: a number {bounds[kind]} {limit}"
    if kind == "too_short" and not value:
        return f"{path}: got an empty list; allowed: at least {error['ctx']['min_length']} item(s)"
    if kind in ("too_short", "too_long"):
        return f"{path}: got {len(value)} items; {error['msg'].lower()}"
    if kind == "literal_error":
        return f"{path}: got {value!r}; allowed: {error['ctx']['expected']}"
    if kind == "value_error":
        return f"{path}: {cause if cause is not None else error['msg']}"
    expected = {
        "int_type": "an integer",
        "string_type": "a string (quote it in YAML)",
        "bool_type": "true or false",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
    }.get(kind)
    if expected:
        return f"{path}: got {value!r} ({type(value).__name__}); allowed: {expected}"
    return f"{path}: got {value!r}; {error['msg']}"
