"""Operator notifications: a webhook adapter and the event vocabulary over it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rebalancerd.adapters.notify.events import EVENT_TYPES, Notifications, NullNotifier
from rebalancerd.adapters.notify.webhook import WebhookNotifier, urllib_post
from rebalancerd.config.models import NotificationsConfig
from rebalancerd.errors import ConfigError
from rebalancerd.ports import Notifier

__all__ = [
    "EVENT_TYPES",
    "Notifications",
    "NullNotifier",
    "WebhookNotifier",
    "build_notifications",
]


def build_notifications(
    config: NotificationsConfig, url: str | None, tz: ZoneInfo
) -> Notifications:
    """The configured notifier: a webhook when ``webhook_url_env`` is set, else a no-op.

    ``url`` is the secret read from that variable; naming a variable that is not
    set is a configuration error rather than silently sending nothing.
    """
    notifier: Notifier
    if config.webhook_url_env is None:
        notifier = NullNotifier()
    elif not url:
        raise ConfigError(
            f"{config.webhook_url_env} is not set in the environment",
            key="notifications.webhook_url_env",
        )
    else:
        notifier = WebhookNotifier(
            urllib_post(url, config.timeout_seconds),
            events=config.events,
            retries=config.retries,
            backoff_seconds=config.backoff_seconds,
        )
    return Notifications(notifier, tz)
