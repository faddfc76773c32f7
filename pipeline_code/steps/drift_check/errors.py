"""What ends a drift check early."""

from __future__ import annotations

class DriftCheckError(Exception):
    """A problem with the inputs or arguments (or reading them from AWS); reported as one line, exit code 2."""


class NotABaseline(DriftCheckError):
    """JSON without this script's ``format_version``: some other file (Model Monitor's statistics.json, say)."""


class PublishError(Exception):
    """CloudWatch refused the metrics (or could not be reached): exit code 1, the report stays."""

