"""The channel adapters against local fake servers (SMS gateway, WeCom) and Django's locmem mail."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from shouhu.notify import channels
from shouhu.notify.channels import (
    DeliveryError,
    EmailChannel,
    LogChannel,
    PermanentDeliveryError,
    SmsGatewayChannel,
    WeComChannel,
    truncate_bytes,
)
from shouhu.notify.models import Delivery
from shouhu.notify.services import deliver_pending, notify
from shouhu.notify.tests.conftest import free_port

pytestmark = pytest.mark.django_db

ALERT = {"kind": "report", "title": "收到一份新的强制报告", "body": "请及时处理。", "url": "/tasks/"}
SITE = override_settings(SHOUHU_SITE_URL="https://shouhu.example.gov.cn")


class Person:
    """A user with the addresses the User model does not have (yet): phone, WeCom id."""

    pk = 7
    is_active = True
    phone = "13800000000"
    wecom_userid = "ZhangSan"
    email = "zhang@example.cn"


def stored(users):
    return notify(recipients=[users["village_hutang"]], channels=[], **ALERT)[0]


# ----- SMS gateway -------------------------------------------------------------------------------


@SITE
def test_sms_posts_the_title_and_an_absolute_link_with_the_api_key(fake_server, users):
    server = fake_server(lambda seen: (200, {"ok": True, "id": "m1"}))
    sms = SmsGatewayChannel(url=server.url + "/send", api_key="k-123")
    notification = stored(users)
    sms.send("13800000000", notification)
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/send")
    assert seen.headers["Authorization"] == "Bearer k-123"
    assert seen.body == {
        "to": "13800000000",
        "text": "【守护】收到一份新的强制报告 https://shouhu.example.gov.cn/tasks/",
        "reference": str(notification.pk),
    }


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, DeliveryError),
        (503, DeliveryError),
        (429, DeliveryError),
        (400, PermanentDeliveryError),
        (401, PermanentDeliveryError),
    ],
)
def test_sms_gateway_errors_are_transient_or_permanent_by_status(fake_server, users, status, error):
    server = fake_server(lambda seen: (status, {"error": "13800000000 rejected"}))
    with pytest.raises(error) as raised:
        SmsGatewayChannel(url=server.url, api_key="k").send("13800000000", stored(users))
    assert str(raised.value) == f"HTTP {status}"  # the response body (maybe the number) is not kept
    assert raised.type is error


def test_sms_gateway_down_is_a_transient_error(users):
    with pytest.raises(DeliveryError) as raised:
        SmsGatewayChannel(url=f"http://127.0.0.1:{free_port()}/send", api_key="k").send("138", stored(users))
    assert not isinstance(raised.value, PermanentDeliveryError)


def test_sms_gateway_down_then_back_the_notification_is_eventually_sent(fake_server, users, use_channels):
    """The outbox end to end: gateway down at notify time, retried with backoff, sent when it is back."""
    port = free_port()
    sms = SmsGatewayChannel(url=f"http://127.0.0.1:{port}/send", api_key="k")
    sms.address_for = lambda user: "13800000000"  # the User model has no phone field (yet)
    use_channels(sms)
    [n] = notify(recipients=[users["village_hutang"]], **ALERT)
    now = timezone.now()
    assert deliver_pending(now=now) == {"failed": 1}
    flaky = iter([(503, {}), (200, {"ok": True})])
    server = fake_server(lambda seen: next(flaky), port=port)  # back, but still busy once
    assert deliver_pending(now=now + timedelta(minutes=1)) == {"failed": 1}
    assert deliver_pending(now=now + timedelta(minutes=2)) == {}  # backoff: 2 minutes after the 2nd failure
    assert deliver_pending(now=now + timedelta(minutes=3)) == {"sent": 1}
    delivery = Delivery.objects.get(notification=n)
    assert (delivery.state, delivery.attempts) == ("sent", 3)
    assert len(server.seen) == 2


def test_sms_uses_the_configured_phone_field_and_none_is_no_address():
    sms = SmsGatewayChannel(url="http://127.0.0.1:9/", api_key="k")
    assert sms.address_for(Person()) == "13800000000"
    assert sms.address_for(object()) == ""  # today's User has no phone field


def test_sms_refuses_a_non_http_url():
    with pytest.raises(ImproperlyConfigured):
        SmsGatewayChannel(url="file:///etc/passwd", api_key="k")


# ----- WeCom -------------------------------------------------------------------------------------


class WeComFake:
    """The two endpoints of WeCom's application messages, with tokens that can expire."""

    def __init__(self) -> None:
        self.tokens_issued = 0
        self.valid_token = ""
        self.send_errcode = 0
        self.invaliduser = ""

    def __call__(self, seen):
        if seen.path == "/cgi-bin/gettoken":
            if seen.query != {"corpid": ["ww-corp"], "corpsecret": ["s3cret"]}:
                return 200, {"errcode": 40013, "errmsg": "invalid corpid"}
            self.tokens_issued += 1
            self.valid_token = f"TOKEN{self.tokens_issued}"
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.valid_token, "expires_in": 7200}
        if seen.path == "/cgi-bin/message/send":
            if seen.query.get("access_token") != [self.valid_token]:
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            return 200, {"errcode": self.send_errcode, "errmsg": "x", "invaliduser": self.invaliduser}
        return 404, {}


def wecom_for(server, **kwargs):
    return WeComChannel(base_url=server.url, corp_id="ww-corp", secret="s3cret", agent_id=1000002, **kwargs)


@SITE
def test_wecom_sends_a_text_card_with_a_cached_token(fake_server, users):
    fake = WeComFake()
    server = fake_server(fake)
    wecom = wecom_for(server)
    notification = stored(users)
    wecom.send("ZhangSan", notification)
    wecom.send("LiSi", notification)
    assert fake.tokens_issued == 1  # the token is reused until shortly before it expires
    send = [s for s in server.seen if s.path == "/cgi-bin/message/send"]
    assert send[0].body == {
        "touser": "ZhangSan",
        "msgtype": "textcard",
        "agentid": 1000002,
        "textcard": {
            "title": "收到一份新的强制报告",
            "description": "请及时处理。",
            "url": "https://shouhu.example.gov.cn/tasks/",
            "btntxt": "详情",
        },
    }


def test_wecom_renews_an_expired_token_once_and_resends(fake_server, users):
    fake = WeComFake()
    server = fake_server(fake)
    wecom = wecom_for(server)
    wecom.access_token()
    fake.valid_token = "ROTATED"  # WeCom expired our token early
    wecom.send("ZhangSan", stored(users))
    assert fake.tokens_issued == 2
    assert [s.path for s in server.seen].count("/cgi-bin/message/send") == 2


@pytest.mark.parametrize(
    ("errcode", "invaliduser", "error"),
    [
        (-1, "", DeliveryError),  # system busy
        (45009, "", DeliveryError),  # rate limited
        (81013, "", PermanentDeliveryError),  # every recipient invalid
        (0, "zhangsan", PermanentDeliveryError),  # accepted, but this user is outside the app's range
    ],
)
def test_wecom_errors(fake_server, users, errcode, invaliduser, error):
    fake = WeComFake()
    fake.send_errcode, fake.invaliduser = errcode, invaliduser
    with pytest.raises(error) as raised:
        wecom_for(fake_server(fake)).send("ZhangSan", stored(users))
    assert raised.type is error


def test_wecom_wrong_secret_or_down_is_retried(fake_server, users):
    server = fake_server(WeComFake())
    wrong = WeComChannel(base_url=server.url, corp_id="ww-corp", secret="wrong", agent_id=1)
    with pytest.raises(DeliveryError):
        wrong.send("ZhangSan", stored(users))
    down = WeComChannel(base_url=f"http://127.0.0.1:{free_port()}", corp_id="c", secret="s", agent_id=1)
    with pytest.raises(DeliveryError):
        down.send("ZhangSan", stored(users))


def test_wecom_end_to_end_server_errors_then_sent(fake_server, users, use_channels):
    fake = WeComFake()
    fake.send_errcode = -1
    wecom = wecom_for(fake_server(fake), address_field="username")  # WeCom ids equal to usernames
    use_channels(wecom)
    [n] = notify(recipients=[users["town_hutang"]], **ALERT)
    now = timezone.now()
    assert deliver_pending(now=now) == {"failed": 1}
    fake.send_errcode = 0
    assert deliver_pending(now=now + timedelta(minutes=1)) == {"sent": 1}


def test_wecom_limits_are_bytes():
    assert truncate_bytes("好" * 100, 128).encode() == ("好" * 41).encode() + "…".encode()
    assert len(truncate_bytes("好" * 100, 128).encode()) <= 128


def test_wecom_from_settings_reads_the_environment(monkeypatch):
    monkeypatch.setenv("SHOUHU_WECOM_CORP_ID", "ww1")
    monkeypatch.setenv("SHOUHU_WECOM_SECRET", "s")
    monkeypatch.setenv("SHOUHU_WECOM_AGENT_ID", "1000002")
    wecom = WeComChannel.from_settings()
    assert (wecom.base_url, wecom.agent_id) == ("https://qyapi.weixin.qq.com", 1000002)
    monkeypatch.setenv("SHOUHU_WECOM_AGENT_ID", "abc")
    with pytest.raises(ImproperlyConfigured):
        WeComChannel.from_settings()


# ----- email and log -----------------------------------------------------------------------------


@SITE
@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
def test_email_goes_through_djangos_backend_to_the_users_address(users, use_channels):
    user = users["district"]
    user.email = "district@example.cn"
    user.save(update_fields=["email"])
    use_channels(EmailChannel())
    notify(recipients=[user, users["leader"]], **ALERT)  # the leader has no email address
    assert deliver_pending() == {"sent": 1, "given_up": 1}
    [message] = mail.outbox
    assert message.to == ["district@example.cn"]
    assert message.subject == "【守护】收到一份新的强制报告"
    assert "https://shouhu.example.gov.cn/tasks/" in message.body
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent", "given_up"}


def test_the_log_channel_writes_ids_only(users, caplog):
    notification = stored(users)
    with caplog.at_level(logging.INFO, logger="shouhu.notify.log"):
        LogChannel().send(LogChannel().address_for(users["village_hutang"]), notification)
    [record] = caplog.records
    assert record.getMessage() == f"notification {notification.pk} kind=report to user {users['village_hutang'].pk}"


# ----- configuration -----------------------------------------------------------------------------


def test_the_default_channels_are_the_inbox_and_the_log():
    channels.reset_channels()
    assert list(channels.enabled_channels()) == ["log"]


def test_an_enabled_channel_without_its_configuration_fails_the_system_check(monkeypatch):
    monkeypatch.delenv("SHOUHU_SMS_GATEWAY_URL", raising=False)
    with override_settings(SHOUHU_NOTIFY_CHANNELS=["inbox", "sms"]):
        [error] = channels.check_channels()
        assert error.id == "notify.E001" and "SHOUHU_SMS_GATEWAY_URL" in error.msg
    with override_settings(SHOUHU_NOTIFY_CHANNELS=["inbox", "fax"]):
        [error] = channels.check_channels()
        assert "fax" in error.msg
    monkeypatch.setenv("SHOUHU_SMS_GATEWAY_URL", "https://sms.example.cn/send")
    monkeypatch.setenv("SHOUHU_SMS_API_KEY", "k")
    with override_settings(SHOUHU_NOTIFY_CHANNELS=["inbox", "sms"], SHOUHU_SITE_URL="https://x.cn"):
        assert channels.check_channels() == []
    channels.reset_channels()
