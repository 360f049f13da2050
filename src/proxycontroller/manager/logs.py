"""The controller's log lines: text for people (the default) or JSON for log pipelines, one object per line.

A JSON line has `time` (RFC 3339, UTC), `level`, `logger`, `message`, and the objects the line is about as the
code named them with `extra={"about": {"proxy": "ns/name", "upstream": "ns/name"}}`, plus any other fields it
gave (`added`, `removed`, ...). The standard library's logging with this formatter: one small class, no
dependency, and every library's records (the Kubernetes client's, watchfiles') come out in the same form.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has; anything else on a record came from `extra=` and is written as a field.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "time": when.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name in _STANDARD or name.startswith("_"):
                continue
            if name == "about" and isinstance(value, dict):
                for key, subject in value.items():
                    line.setdefault(key, subject)
            else:
                line.setdefault(name, value)
        if record.exc_info:
            line["error"] = repr(record.exc_info[1])
            line["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    """The root logger at `level` writing to stderr in `log_format` (text or json); as basicConfig, nothing
    but the level changes if the root logger has handlers already (a test's capture)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every batch of file changes at INFO
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # and lightkube's HTTP client every request
