"""``serve.yaml``: every ``twin serve`` setting in one validated file (``--config FILE``).

The command line overrides the file, option by option, and the result is validated by the same
model whichever way a value came, so a bad value is named the way it was given: ``--port`` on
the command line, ``serve.yaml: port`` in the file. The webhook signing secret is never in the
file (files get committed): ``webhooks.secret_env`` names the environment variable holding it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from promotwin.scenarios import config_files
from promotwin.scenarios.config_files import ConfigError, Problem, problem_from_pydantic

DEFAULT_STORE = "twin.sqlite"
DEFAULT_SECRET_ENV = "TWIN_WEBHOOK_SECRET"  # never an argument or a file entry: argv is logged


class ServeConfigError(ConfigError):
    """A serve config (file and/or options) that cannot be used; every problem is listed."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Webhooks(Strict):
    urls: list[str] = Field(default_factory=list, description="POST approved actions here")
    secret_env: str = Field(DEFAULT_SECRET_ENV, min_length=1, description="its env variable")
    max_attempts: Annotated[int, Field(ge=0, description="then abandoned (0: never)")] = 20

    @field_validator("urls")
    @classmethod
    def _http(cls, urls: list[str]) -> list[str]:
        from urllib.parse import urlparse

        for url in urls:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return urls


class Thresholds(Strict):
    replan_lines: Annotated[
        int, Field(ge=0, description="re-plan after this many new event lines (0: never)")
    ] = 20_000
    replan_seconds: Annotated[
        float, Field(ge=0, description="re-plan this often when events arrived (0: off)")
    ] = 0.0


class Limits(Strict):
    rate_per_second: Annotated[float, Field(gt=0, description="requests per key")] = 50.0
    rate_burst: Annotated[int | None, Field(ge=1, description="default: 2 s of rate")] = None
    max_body_bytes: Annotated[int, Field(ge=1, description="largest request body")] = 2_000_000


class ServeFile(Strict):
    """The service's settings; every field has the command line's default."""

    scenario: str | None = Field(None, min_length=1, description="built-in name or YAML file")
    host: str = Field("127.0.0.1", min_length=1, description="loopback unless set")
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    store: str = Field(DEFAULT_STORE, min_length=1, description="SQLite file or SQLAlchemy URL")
    policy: str = "base-stock"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    forecast: str = "plan"
    model: str | None = None
    governance: str = "default"
    webhooks: Webhooks = Webhooks()
    thresholds: Thresholds = Thresholds()
    limits: Limits = Limits()

    @property
    def rate_burst(self) -> int:
        return self.limits.rate_burst or max(1, int(2 * self.limits.rate_per_second))


# command-line option -> the file's field it overrides
OPTIONS = {
    "scenario": "scenario",
    "host": "host",
    "port": "port",
    "store": "store",
    "policy": "policy",
    "seed": "seed",
    "forecast": "forecast",
    "model": "model",
    "governance": "governance",
    "webhook": "webhooks.urls",
    "webhook_attempts": "webhooks.max_attempts",
    "rate_limit": "limits.rate_per_second",
    "replan_lines": "thresholds.replan_lines",
    "replan_seconds": "thresholds.replan_seconds",
    "max_body": "limits.max_body_bytes",
}


def read_file(path: Path) -> dict[str, Any]:
    """The file's mapping (YAML checked, fields not yet)."""
    import yaml

    text = config_files.read_text(path, ServeConfigError, "serve config")
    try:
        raw = yaml.load(text, Loader=config_files.YamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        what = getattr(exc, "problem", None) or str(exc)
        raise ServeConfigError(str(path), [Problem(where, f"not valid YAML: {what}")]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ServeConfigError(str(path), [Problem("file", "expected a mapping of settings")])
    return raw


def merge(file: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``file`` with each command-line option in ``given`` (option name -> value) put over it."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in file.items()}
    for option, value in given.items():
        section, _, name = OPTIONS[option].rpartition(".")
        target = out.setdefault(section, {}) if section else out
        if not isinstance(target, dict):  # the file has e.g. `limits: 5`; the model says so
            continue
        target[name or section] = value
    return out


def load(path: Path | None, given: Mapping[str, Any]) -> ServeFile:
    """The settings of ``path`` (if any) overridden by the options ``given``; a
    ``ServeConfigError`` naming each bad value as it was given (``--option`` or the file's
    field)."""
    file = read_file(path) if path is not None else {}
    fields = {v: k for k, v in OPTIONS.items() if k in given}
    try:
        return ServeFile.model_validate(merge(file, given))
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            p = problem_from_pydantic(e)
            dotted = ".".join(str(x) for x in e["loc"][:2])
            head = ".".join(str(x) for x in e["loc"][:1])
            option = fields.get(dotted) or fields.get(head)
            where = "--" + option.replace("_", "-") if option else f"{path}: {p.where}"
            problems.append(Problem(where, p.message))
        raise ServeConfigError("twin serve", problems) from None
