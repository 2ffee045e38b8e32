"""The drop-folder provider: the newest report file matching a pattern."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rebalancerd.adapters.research.base import ResearchProviderError, make_report, require_aware
from rebalancerd.errors import ConfigError
from rebalancerd.ports import ResearchReport


class FolderResearchSource:
    """The newest regular file (by modification time) in ``path`` matching ``pattern``.

    ``pattern`` is a :meth:`pathlib.Path.glob` pattern (``**`` recurses);
    ``{account}`` in it is replaced by the account name. A report whose age
    (``now`` minus its mtime) is ``max_age_days`` or more is not used, so last
    week's report is never read twice: ``latest_report`` returns ``None`` and
    ``last_skip_reason`` says why (also for "no matching file" and "empty
    file"). Ties on mtime go to the lexically last name. Writers should write
    to a temporary name and rename, so a half-written file is never picked up.
    """

    def __init__(self, path: Path | str, pattern: str = "*.md", max_age_days: int = 7) -> None:
        if max_age_days <= 0:
            raise ConfigError(
                f"must be a positive number of days, got {max_age_days}", key="max_age_days"
            )
        if not pattern:
            raise ConfigError("must not be empty", key="pattern")
        self.path = Path(path)
        self.pattern = pattern
        self.max_age_days = max_age_days
        self.last_skip_reason: str | None = None
        self.last_path: Path | None = None

    def __repr__(self) -> str:
        return f"FolderResearchSource({str(self.path)!r}, {self.pattern!r}, {self.max_age_days})"

    def latest_report(self, account: str, *, now: datetime) -> ResearchReport | None:
        require_aware(now)
        self.last_skip_reason = None
        self.last_path = None
        if not self.path.is_dir():
            raise ResearchProviderError(
                f"research folder {self.path} does not exist or is not a directory"
            )
        pattern = self.pattern.replace("{account}", account)
        newest: tuple[float, str, Path] | None = None
        try:
            for candidate in self.path.glob(pattern):
                try:
                    st = candidate.stat()
                except OSError:
                    continue  # vanished or a dangling link
                if not stat.S_ISREG(st.st_mode):
                    continue
                key = (st.st_mtime, candidate.name, candidate)
                if newest is None or key[:2] > newest[:2]:
                    newest = key
        except OSError as exc:
            raise ResearchProviderError(f"cannot list research folder {self.path}: {exc}") from exc
        if newest is None:
            self.last_skip_reason = f"no file matching {pattern!r} in {self.path}"
            return None
        mtime, _, file = newest
        self.last_path = file
        modified = datetime.fromtimestamp(mtime, tz=UTC)
        age = now - modified
        if age >= timedelta(days=self.max_age_days):
            self.last_skip_reason = (
                f"newest report {file} is {age / timedelta(days=1):.1f} days old "
                f"(modified {modified:%Y-%m-%d %H:%M} UTC); reports are used for "
                f"{self.max_age_days} days"
            )
            return None
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ResearchProviderError(f"cannot read research report {file}: {exc}") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResearchProviderError(
                f"research report {file} is not UTF-8 text (byte {exc.start})"
            ) from None
        if not text.strip():
            self.last_skip_reason = f"newest report {file} is empty"
            return None
        return make_report(account, f"folder:{file}", text, now)
