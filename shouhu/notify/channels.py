"""Delivery channels: where a stored notification goes besides the in-app inbox.

A channel is a small object with a `name`, `address_for(user)` (the user's phone number, email
address or WeCom user id; empty when the user has none) and `send(address, notification)`, which
returns on success and raises on failure:

* `DeliveryError`: a transient failure (gateway down, 5xx, timeout); retried with backoff;
* `PermanentDeliveryError`: retrying cannot help (the gateway refused the address); given up.

Channels are enabled by name in `SHOUHU_NOTIFY_CHANNELS` ("inbox" is the stored notification
itself and always delivered). Credentials come from the environment when a channel is enabled;
a missing one fails `manage.py check` and the first delivery loudly. See docs/notifications.md.

What leaves the platform is the notification's title, its neutral sentence and an absolute link:
never a child's personal data (the callers' contract, shouhu.notify.services.notify).
"""

from __future__ import annotations

import functools
import html
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, ClassVar

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext as _

from shouhu.lib.env import env_str
from shouhu.notify.models import Notification


def _signature() -> str:
    """The platform's name in front of an SMS or e-mail subject."""
    return _("【守护】")


logger = logging.getLogger(__name__)

INBOX = "inbox"  # the stored notification: delivered when it is written, no Delivery row
HTTP_TIMEOUT = 10  # seconds; the delivery loop holds no lock while it waits


class DeliveryError(Exception):
    """The channel could not deliver now; the loop tries again later."""


class PermanentDeliveryError(DeliveryError):
    """The channel will never deliver this (e.g. the gateway rejects the address): give up."""


class Channel:
    name: ClassVar[str] = ""

    @classmethod
    def from_settings(cls) -> Channel:
        return cls()

    def address_for(self, user: Any) -> str:
        """The user's address on this channel, or "" when the user has none."""
        raise NotImplementedError

    def send(self, address: str, notification: Notification) -> None:
        raise NotImplementedError


def absolute_link(url: str) -> str:
    """The notification's relative link on the platform's public address (SHOUHU_SITE_URL)."""
    site = settings.SHOUHU_SITE_URL.rstrip("/")
    return f"{site}{url or '/'}"


def truncate_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary (WeCom counts bytes)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def _check_http_url(name: str, url: str) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, got {url!r}")
    return url


_opener = urllib.request.build_opener()


def http_json(
    method: str, url: str, *, payload: Any = None, headers: dict[str, str] | None = None, timeout: float = HTTP_TIMEOUT
) -> Any:
    """One JSON request. Raises DeliveryError (connection failure, 5xx, 408, 429) or
    PermanentDeliveryError (other 4xx). Error texts carry status codes only, never a response
    body (a gateway may echo the phone number)."""
    data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            **(headers or {}),
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            raw = response.read(1 << 16)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 400 <= exc.code < 500 and exc.code not in (408, 425, 429):
            raise PermanentDeliveryError(f"HTTP {exc.code}") from None
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"connection failed: {type(reason).__name__}") from None
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        raise DeliveryError("the response is not JSON") from None


# ----- the channels ------------------------------------------------------------------------------


class LogChannel(Channel):
    """Writes one line per notification to the application log: ids and kind only."""

    name = "log"
    log = logging.getLogger("shouhu.notify.log")

    def address_for(self, user: Any) -> str:
        return str(user.pk)

    def send(self, address: str, notification: Notification) -> None:
        self.log.info("notification %s kind=%s to user %s", notification.pk, notification.kind, address)


class SmsGatewayChannel(Channel):
    """POSTs `{"to": phone, "text": text}` as JSON to an SMS gateway with a bearer API key.

    A generic adapter for an in-house or vendor gateway that takes free text; a vendor API with
    templates (阿里云短信, 腾讯云短信) is a subclass overriding `payload()`.
    """

    name = "sms"
    address_field = "phone"

    def __init__(self, *, url: str, api_key: str, timeout: float = HTTP_TIMEOUT, address_field: str = "") -> None:
        self.url = _check_http_url("SHOUHU_SMS_GATEWAY_URL", url)
        self.api_key = api_key
        self.timeout = timeout
        self.address_field = address_field or self.address_field

    @classmethod
    def from_settings(cls) -> SmsGatewayChannel:
        return cls(
            url=env_str("SHOUHU_SMS_GATEWAY_URL"),
            api_key=env_str("SHOUHU_SMS_API_KEY"),
            address_field=env_str("SHOUHU_SMS_PHONE_FIELD", "phone"),
        )

    def address_for(self, user: Any) -> str:
        return str(getattr(user, self.address_field, "") or "").strip()

    def payload(self, address: str, notification: Notification) -> dict[str, Any]:
        return {
            "to": address,
            "text": f"{_signature()}{notification.title} {absolute_link(notification.url)}",
            "reference": str(notification.pk),
        }

    def send(self, address: str, notification: Notification) -> None:
        http_json(
            "POST",
            self.url,
            payload=self.payload(address, notification),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        )


class EmailChannel(Channel):
    """Django's email backend (EMAIL_BACKEND, EMAIL_HOST, DEFAULT_FROM_EMAIL) to the user's email."""

    name = "email"

    def address_for(self, user: Any) -> str:
        return (getattr(user, "email", "") or "").strip()

    def send(self, address: str, notification: Notification) -> None:
        lines = (
            [notification.body, "", absolute_link(notification.url)]
            if notification.body
            else [absolute_link(notification.url)]
        )
        try:
            send_mail(f"{_signature()}{notification.title}", "\n".join(lines), None, [address], fail_silently=False)
        except OSError as exc:  # smtplib's errors are OSErrors: the mail server is down or refuses
            raise DeliveryError(f"mail: {type(exc).__name__}") from None


class WeComChannel(Channel):
    """WeChat Work (企业微信) application message (应用消息) as a text card (textcard).

    `GET {base}/cgi-bin/gettoken?corpid=&corpsecret=` gives an access token (cached until shortly
    before `expires_in`); `POST {base}/cgi-bin/message/send?access_token=` sends
    `{"touser", "msgtype": "textcard", "agentid", "textcard": {"title", "description", "url", "btntxt"}}`
    and answers `{"errcode": 0, "errmsg": "ok", "invaliduser": ""}`. An expired or invalid token
    (40001, 40014, 42001) is renewed once and the message resent.
    """

    name = "wecom"
    TOKEN_ERRORS = frozenset({40001, 40014, 42001})
    PERMANENT_ERRORS = frozenset({40003, 81013})  # invalid userid; every recipient invalid

    def __init__(
        self,
        *,
        base_url: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        address_field: str = "wecom_userid",
        timeout: float = HTTP_TIMEOUT,
    ) -> None:
        self.base_url = _check_http_url("SHOUHU_WECOM_BASE_URL", base_url).rstrip("/")
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.address_field = address_field
        self.timeout = timeout
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> WeComChannel:
        return cls(
            base_url=env_str("SHOUHU_WECOM_BASE_URL", "https://qyapi.weixin.qq.com"),
            corp_id=env_str("SHOUHU_WECOM_CORP_ID"),
            secret=env_str("SHOUHU_WECOM_SECRET"),
            agent_id=_agent_id(),
            address_field=env_str("SHOUHU_WECOM_USERID_FIELD", "wecom_userid"),
        )

    def address_for(self, user: Any) -> str:
        return str(getattr(user, self.address_field, "") or "").strip()

    def access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._token is not None and not renew and self._token[1] > time.monotonic():
                return self._token[0]
            query = urllib.parse.urlencode({"corpid": self.corp_id, "corpsecret": self.secret})
            answer = http_json("GET", f"{self.base_url}/cgi-bin/gettoken?{query}", timeout=self.timeout) or {}
            if answer.get("errcode", 0) != 0 or not answer.get("access_token"):
                # A wrong corp id or secret is a configuration error: retried, so fixing it suffices.
                raise DeliveryError(f"wecom gettoken errcode {answer.get('errcode')}")
            lifetime = max(int(answer.get("expires_in", 7200)) - 300, 60)
            self._token = (str(answer["access_token"]), time.monotonic() + lifetime)
            return self._token[0]

    def payload(self, address: str, notification: Notification) -> dict[str, Any]:
        return {
            "touser": address,
            "msgtype": "textcard",
            "agentid": self.agent_id,
            "textcard": {
                "title": truncate_bytes(notification.title, 128),
                "description": truncate_bytes(html.escape(notification.body or notification.title), 512),
                "url": absolute_link(notification.url),
                "btntxt": str(_("详情")),
            },
        }

    def send(self, address: str, notification: Notification) -> None:
        payload = self.payload(address, notification)
        for renew in (False, True):
            token = urllib.parse.quote(self.access_token(renew=renew))
            answer = (
                http_json(
                    "POST",
                    f"{self.base_url}/cgi-bin/message/send?access_token={token}",
                    payload=payload,
                    timeout=self.timeout,
                )
                or {}
            )
            errcode = answer.get("errcode", -1)
            if errcode in self.TOKEN_ERRORS and not renew:
                continue
            if errcode in self.PERMANENT_ERRORS or (errcode == 0 and answer.get("invaliduser")):
                raise PermanentDeliveryError(f"wecom errcode {errcode}: the user is not reachable by the app")
            if errcode != 0:
                raise DeliveryError(f"wecom errcode {errcode}")
            return


def _agent_id() -> int:
    value = env_str("SHOUHU_WECOM_AGENT_ID")
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"SHOUHU_WECOM_AGENT_ID must be an integer, got {value!r}") from None


CHANNEL_CLASSES: dict[str, type[Channel]] = {
    LogChannel.name: LogChannel,
    SmsGatewayChannel.name: SmsGatewayChannel,
    EmailChannel.name: EmailChannel,
    WeComChannel.name: WeComChannel,
}
KNOWN_CHANNELS = frozenset({INBOX, *CHANNEL_CLASSES})


@functools.cache
def _build(names: tuple[str, ...]) -> dict[str, Channel]:
    unknown = [n for n in names if n not in KNOWN_CHANNELS]
    if unknown:
        raise ImproperlyConfigured(
            f"SHOUHU_NOTIFY_CHANNELS: unknown channel(s) {unknown}; known: {sorted(KNOWN_CHANNELS)}"
        )
    return {name: CHANNEL_CLASSES[name].from_settings() for name in names if name != INBOX}


def enabled_channels() -> dict[str, Channel]:
    """The external channels enabled in settings, built once per process (one WeCom token cache)."""
    return _build(tuple(settings.SHOUHU_NOTIFY_CHANNELS))


def reset_channels() -> None:
    _build.cache_clear()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SHOUHU_NOTIFY_CHANNELS", "SHOUHU_SITE_URL"):
        reset_channels()


def check_channels(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`manage.py check`: every enabled channel is known and has its configuration."""
    try:
        enabled_channels()
    except (ImproperlyConfigured, ValueError) as exc:
        return [checks.Error(str(exc), id="notify.E001")]
    needs_site = set(settings.SHOUHU_NOTIFY_CHANNELS) & {"sms", "email", "wecom"}
    if needs_site and not settings.SHOUHU_SITE_URL:
        return [
            checks.Warning(
                "SHOUHU_SITE_URL is empty: links sent by SMS, email or WeCom are not absolute", id="notify.W001"
            )
        ]
    return []
