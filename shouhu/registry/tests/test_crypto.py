"""shouhu.lib: encryption at rest, blind indexes, ID numbers and the normalisers behind them."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from shouhu.lib import crypto
from shouhu.lib.idnumber import make_id_number, normalize_id_number, parse_id_number
from shouhu.lib.text import mask_address, mask_id_number, mask_phone, normalize_text, pinyin_keys
from shouhu.registry.models import Child, FamilyMember, Household

PREFIXES = ("sm4gcm.1:", "aesgcm.1:")


# ----- crypto ----------------------------------------------------------------------------------


def test_encrypt_round_trip_names_its_algorithm():
    token = crypto.encrypt("32041220150308123X")
    assert token.startswith(PREFIXES)
    assert token.split(":")[0] == f"{crypto.algorithm()}.{crypto.KEY_VERSION}"
    assert "32041220150308123X" not in token
    assert crypto.decrypt(token) == "32041220150308123X"


def test_encrypt_is_randomised_per_value():
    assert crypto.encrypt("13812345678") != crypto.encrypt("13812345678")


def test_encrypt_handles_chinese_text():
    assert crypto.decrypt(crypto.encrypt("江苏省常州市武进区湖塘镇示例路1号")) == "江苏省常州市武进区湖塘镇示例路1号"


def test_both_ciphers_can_be_read_back():
    """Whatever this OpenSSL offers for writing, a stored value of either algorithm stays readable."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    keys = crypto._keys()
    nonce = os.urandom(12)
    aes = "aesgcm.1:" + base64.b64encode(nonce + AESGCM(keys.aes).encrypt(nonce, "甲".encode(), None)).decode()
    assert crypto.decrypt(aes) == "甲"
    if crypto._sm4_gcm_available():
        assert crypto.algorithm() == "sm4gcm"


def test_tampered_ciphertext_is_refused():
    import base64

    token = crypto.encrypt("13812345678")
    header, _, body = token.partition(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 0x01
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        crypto.decrypt(f"{header}:{base64.b64encode(bytes(raw)).decode()}")


@pytest.mark.parametrize("bad", ["plain text", "rot13.1:abc", "aesgcm.2:AAAA"])
def test_unknown_formats_are_refused(bad):
    with pytest.raises(ValueError):
        crypto.decrypt(bad)


def test_a_sealed_value_is_its_text_and_is_stored_as_its_own_ciphertext(db, hutang_village, make_child):
    import pickle

    sealed = crypto.Sealed("13812345678")
    assert sealed == "13812345678" and isinstance(sealed, str)
    assert crypto.decrypt(sealed.ciphertext) == "13812345678"  # made from the text, here
    carried = pickle.loads(pickle.dumps(sealed))  # from a validation process to the importer
    assert type(carried) is crypto.Sealed and carried == sealed and carried.ciphertext == sealed.ciphertext
    assert type(sealed.strip()) is str and type(sealed + "1") is str  # a changed value is plain text again

    child = make_child(hutang_village, name="封存")
    member = FamilyMember.objects.create(child=child, relation="father", name="封父", phone=carried)
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM registry_familymember WHERE id = %s", [member.pk])
        assert cursor.fetchone()[0] == sealed.ciphertext  # stored as sealed, not encrypted again
    assert FamilyMember.objects.get(pk=member.pk).phone == "13812345678"


def test_blind_index_is_deterministic_keyed_and_separated_by_purpose():
    a = crypto.blind_index("32041220150308123X", purpose="child_id")
    assert a == crypto.blind_index("32041220150308123X", purpose="child_id")
    assert a != crypto.blind_index("32041220150308123X", purpose="person_id")
    assert a != crypto.blind_index("320412201503081231", purpose="child_id")
    assert len(a) == 40 and "32041220150308123X" not in a


def test_missing_key_outside_demo_and_tests_is_a_startup_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.DATA_KEY = ""
    settings.DEMO_MODE = False
    settings.TESTING = False
    crypto.reset_keys_cache()
    try:
        with pytest.raises(ImproperlyConfigured):
            crypto.encrypt("x")
    finally:
        crypto.reset_keys_cache()


@pytest.mark.parametrize("bad", ["not base64!!", "c2hvcnQ="])
def test_malformed_key_is_refused(settings, bad):
    from django.core.exceptions import ImproperlyConfigured

    settings.DATA_KEY = bad
    crypto.reset_keys_cache()
    try:
        with pytest.raises(ImproperlyConfigured):
            crypto.encrypt("x")
    finally:
        crypto.reset_keys_cache()


# ----- encryption at rest ----------------------------------------------------------------------


def _raw(table: str, column: str, pk_column: str, pk) -> str:  # noqa: ANN001
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {pk_column} = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_personal_identifiers_are_ciphertext_in_the_database(db, hutang_village, make_child):
    from shouhu.registry import services

    child = make_child(hutang_village)
    member = services.member_create(
        actor=None,
        child=child,
        data={
            "relation": "father",
            "name": "张大山",
            "id_number": make_id_number("320402", date(1985, 1, 2), 11),
            "phone": "13812345678",
            "capacity": "full",
        },
    )
    ent = services.entrustment_save(
        actor=None,
        child=child,
        entrustment=None,
        version=None,
        data={
            "carer_name": "李奶奶",
            "carer_relation": "grandmother_m",
            "carer_phone": "13987654321",
            "carer_id_number": make_id_number("320402", date(1985, 6, 1), 22),
        },
    )
    child.refresh_from_db()
    raw = {
        "child.id_number": (
            _raw("registry_child", "id_number", "id", Child._meta.pk.get_db_prep_value(child.pk, connection)),
            child.id_number,
        ),
        "household.address": (_raw("registry_household", "address", "id", child.household_id), child.household.address),
        "member.id_number": (_raw("registry_familymember", "id_number", "id", member.pk), member.id_number),
        "member.phone": (_raw("registry_familymember", "phone", "id", member.pk), member.phone),
        "carer.phone": (_raw("registry_entrustment", "carer_phone", "id", ent.pk), ent.carer_phone),
        "carer.id_number": (_raw("registry_entrustment", "carer_id_number", "id", ent.pk), ent.carer_id_number),
    }
    for what, (stored, plain) in raw.items():
        assert stored.startswith(PREFIXES), what
        assert plain and plain not in stored, what
        assert crypto.decrypt(stored) == plain, what
    # The history tables keep the same ciphertext form, never the plaintext.
    hist = Child.history.model.objects.filter(id=child.pk).values_list("history_id", flat=True).first()
    stored = _raw("registry_historicalchild", "id_number", "history_id", hist)
    assert stored.startswith(PREFIXES) and child.id_number not in stored
    assert Household.objects.get(pk=child.household_id).address == "武进区湖塘镇示例路1号"


def test_blind_index_finds_exact_matches_only(db, hutang_village, make_child):
    child = make_child(hutang_village)
    index = crypto.blind_index(child.id_number, purpose="child_id")
    assert Child.objects.get(id_number_index=index).pk == child.pk
    other = child.id_number[:-1] + ("0" if child.id_number[-1] != "0" else "1")
    assert not Child.objects.filter(id_number_index=crypto.blind_index(other, purpose="child_id")).exists()
    # Filtering on the encrypted column itself finds nothing: each encryption has a fresh nonce.
    assert not Child.objects.filter(id_number=child.id_number).exists()


def test_family_member_blind_index_uses_person_purpose(db, hutang_village, make_child):
    from shouhu.registry import services

    child = make_child(hutang_village)
    id_number = make_id_number("320402", date(1984, 4, 4), 33)
    member = services.member_create(
        actor=None, child=child, data={"relation": "father", "name": "王强", "id_number": id_number, "capacity": "full"}
    )
    assert FamilyMember.objects.get(pk=member.pk).id_number_index == crypto.blind_index(id_number, purpose="person_id")


# ----- ID numbers -----------------------------------------------------------------------------


def test_parse_valid_id_number():
    value = make_id_number("320412", date(2015, 3, 8), 123)
    info = parse_id_number(value, today=date(2026, 1, 1))
    assert info.value == value
    assert info.birth_date == date(2015, 3, 8)
    assert info.gender == "M"
    assert info.birth_place == "320412"
    assert parse_id_number(make_id_number("320412", date(2015, 3, 8), 124)).gender == "F"


def test_lower_case_x_and_full_width_digits_are_normalised():
    value = next(
        make_id_number("320412", date(2014, 7, 1), s)
        for s in range(1000)
        if make_id_number("320412", date(2014, 7, 1), s).endswith("X")
    )
    assert parse_id_number(value.lower()).value == value
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value.lower())
    assert full_width != value
    assert parse_id_number(full_width).value == value
    assert parse_id_number(" " + value[:6] + " " + value[6:] + " ").value == value
    assert normalize_id_number("３２０４１２ｘ") == "320412X"


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("", "required", "请填写"),
        ("32041220150308123", "length", "18位"),
        ("320412150308123", "legacy", "15位"),
        ("3204122015030812345", "length", "18位"),
        ("32041220150308A23X", "format", "只能包含数字"),
        ("320412201502301234", "birth_date", "出生日期"),
        ("320412201513011234", "birth_date", "出生日期"),
    ],
)
def test_invalid_id_numbers_get_a_chinese_reason(raw, code, fragment):
    with pytest.raises(ValidationError) as excinfo:
        parse_id_number(raw)
    assert excinfo.value.code == code
    assert fragment in excinfo.value.messages[0]


def test_bad_checksum_is_refused():
    value = make_id_number("320412", date(2015, 3, 8), 123)
    wrong = value[:-1] + ("0" if value[-1] != "0" else "1")
    with pytest.raises(ValidationError) as excinfo:
        parse_id_number(wrong)
    assert excinfo.value.code == "checksum"
    assert "校验位" in excinfo.value.messages[0]


def test_future_birth_date_in_id_is_refused():
    value = make_id_number("320412", date(2030, 1, 1), 123)
    with pytest.raises(ValidationError) as excinfo:
        parse_id_number(value, today=date(2026, 1, 1))
    assert excinfo.value.code == "future"


# ----- text --------------------------------------------------------------------------------


def test_pinyin_keys():
    assert pinyin_keys("张小明") == ("zhangxiaoming", "zxm")
    assert pinyin_keys("张三") == ("zhangsan", "zs")


def test_pinyin_keys_read_as_pypinyins_own_lazy_pinyin():
    """The converter made once and keeping each reading's style (`lib.text._KeptStyles`) gives
    what `pypinyin.lazy_pinyin` gives, for every character of the common block twice over (the
    second time from what it kept), phrases whose characters read otherwise, and mixed text."""
    import random

    from pypinyin import lazy_pinyin

    def reference(name: str) -> tuple[str, str]:
        syllables = [s.lower() for s in lazy_pinyin(name, errors="ignore") if s.strip()]
        return "".join(syllables)[:120], "".join(s[0] for s in syllables if s)[:30]

    rng = random.Random(7)
    common = [chr(c) for c in range(0x4E00, 0x9FA6)]
    names = ["".join(rng.sample(common, rng.choice([2, 3, 4]))) for _ in range(12000)]
    names += [
        "单田芳",
        "曾小贤",
        "乐嘉",
        "区志强",
        "尉迟恭",
        "长孙无忌",
        "重庆",
        "银行",
        "行长",
        "ｚｈａｎｇ三",
        "abc王",
        "略",
    ]
    for name in names + names:
        assert pinyin_keys(name) == reference(name), name


def test_masks():
    assert mask_id_number("32041220150308123X") == "320412********123X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_address("江苏省常州市武进区湖塘镇") == "江苏省常州市****"
    assert mask_address("湖塘") == "湖塘****"


def test_normalize_text():
    assert normalize_text("  张　三\t ") == "张 三"
    assert normalize_text("ＡＢＣ１２３") == "ABC123"


def test_birth_place_must_exist_in_the_birth_year():
    """320412 (武进区) exists since 2002: a 1988 birth there carries 320421 (武进县)."""
    with pytest.raises(ValidationError) as excinfo:
        parse_id_number(make_id_number("320412", date(1988, 1, 1), 12))
    assert excinfo.value.code == "birth_place"
    assert "地区代码" in excinfo.value.messages[0]
    assert parse_id_number(make_id_number("320421", date(1988, 1, 1), 12)).birth_date == date(1988, 1, 1)


def test_demo_parents_have_valid_id_numbers():
    from shouhu.org.models import Region
    from shouhu.registry.demo import generate_children

    village = Region(code="320412100001", name="示例村", level=5, kind="village")
    for rows in generate_children(n=40, seed=3, villages=[village], today=date(2026, 1, 1)):
        parse_id_number(rows.child["id_number"], today=date(2026, 1, 1))
        for member in rows.members:
            assert parse_id_number(member["id_number"], today=date(2026, 1, 1)).birth_date == member["birth_date"]
