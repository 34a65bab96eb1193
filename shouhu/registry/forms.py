"""Forms for the ledger. Pages and the API validate through these, so a rule is written once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import InlineForeignKeyField, model_to_dict
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shouhu.lib.fields import EncryptedTextField
from shouhu.lib.idnumber import parse_id_number
from shouhu.lib.text import (
    mask_address,
    mask_id_number,
    mask_phone,
    normalize_compact,
    normalize_text,
)
from shouhu.org.models import Region, RegionLevel
from shouhu.policy.dates import age_on
from shouhu.registry import models as m
from shouhu.registry.services import (
    CHILD_FIELDS,
    ENTRUSTMENT_FIELDS,
    HOUSEHOLD_FIELDS,
    MEMBER_FIELDS,
    SITUATION_FIELDS,
)

PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


_DAY: ContextVar[date | None] = ContextVar("shouhu_forms_day", default=None)


def today() -> date:
    """The local date the forms check against (future dates, ages, ID numbers): today's, or the
    one `one_day` fixed for the records being validated."""
    return _DAY.get() or timezone.localdate()


@contextlib.contextmanager
def one_day() -> Iterator[date]:
    """Validate many records against one date, the day this was entered (or the day an enclosing
    `one_day` fixed): a survey import's rows are checked as of one day, not some before midnight
    and some after; and looking up the time zone and the date, five times a row, was a twentieth
    of an import's validation."""
    day = _DAY.get()
    if day is not None:
        yield day
        return
    day = timezone.localdate()
    token = _DAY.set(day)
    try:
        yield day
    finally:
        _DAY.reset(token)


_F = TypeVar("_F", bound=forms.Field)


def field_of(form: forms.BaseForm, name: str, kind: type[_F]) -> _F:
    """The form's field `name`, which the form declares as a `kind` (`form.fields` holds plain
    Fields for the type checker): to set a ChoiceField's choices or a ModelChoiceField's queryset."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}")
    return field


def clean_phone(raw: str) -> str:
    value = normalize_compact(raw or "").replace("+86", "")
    if not value:
        return ""
    if not PHONE_RE.match(value):
        raise ValidationError(_("电话号码格式不正确：手机号为11位数字，座机如 0519-86123456。"))
    return value


# ----- values cleaned before, in bulk ---------------------------------------------------------------------------------
#
# An import validates the same few values over and over: most of a row's sixty-odd fields are
# empty, and the coded ones take a handful of values. For the field classes below, with only
# Django's own validators, `clean` is a function of the value alone, so a form object reused for a
# file's rows (`in_bulk`) keeps what each value cleaned to, per field (`_Memo`), and the model
# field checks Django runs after the form's keep the values that passed them. Not kept: a value
# that fails (it is cleaned again every time, so its errors are made as Django makes them), and a
# text a date field or a localized number field reads in the active language's formats. The
# form's own `clean_<name>` and `clean()` run on every row. Held equal to Django's own validation
# by registry/tests/test_bulk_validation.py.

_PURE_FORM_FIELDS = frozenset(
    {
        forms.CharField,
        forms.DateField,
        forms.ChoiceField,
        forms.TypedChoiceField,
        forms.BooleanField,
        forms.NullBooleanField,
        forms.IntegerField,
    }
)
_PURE_MODEL_FIELDS = frozenset(
    {
        models.CharField,
        models.TextField,
        models.DateField,
        models.BooleanField,
        models.IntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        EncryptedTextField,
    }
)
_SCALARS = frozenset({str, bool, int, date, type(None)})  # hashable and immutable
_MISSING: Any = object()


class _Memo(dict[Any, Any]):
    """What values cleaned to, for one field: at most `LIMIT` of them (a field whose values do not
    repeat, a name or an ID number, stops filling it at that). `texts`: whether a non-empty text
    may be kept (not for a field that reads it in the active language's formats)."""

    __slots__ = ("texts",)
    LIMIT = 1024

    def __init__(self, *, texts: bool = True) -> None:
        super().__init__()
        self.texts = texts

    def put(self, key: Any, value: Any) -> None:
        if len(self) < self.LIMIT and type(value) in _SCALARS:
            self[key] = value


def _memo_key(value: Any, texts: bool = True) -> Any:
    """The memo's key for a value (None: not kept). A text is its own key; other scalars are keyed
    with their type, because True == 1 and a boolean field and an integer field treat them apart."""
    kind = type(value)
    if kind is str:
        return value if texts or not value else None
    if kind in _SCALARS:
        return (kind, value)
    return None


def _reads_text_in_the_language(field: forms.Field) -> bool:
    return isinstance(field, forms.DateField) or (isinstance(field, forms.IntegerField) and field.localize)


def _django_validators(field: forms.Field | models.Field[Any, Any]) -> bool:
    return all(type(v).__module__ == "django.core.validators" for v in field.validators)


def _pure_form_field(field: forms.Field) -> bool:
    return type(field) in _PURE_FORM_FIELDS and not field.disabled and _django_validators(field)


def _pure_model_field(field: models.Field[Any, Any]) -> bool:
    return type(field) in _PURE_MODEL_FIELDS and _django_validators(field)


_ModelCheck = tuple["models.Field[Any, Any]", forms.Field, "_Memo | None"]


def _reader_of(widget: forms.Widget) -> Any:
    """How a bulk form reads the field's value from the data: the widget's `value_from_datadict`,
    or None where that is `data.get(name)` (Django's own for a widget that does not override
    it, and a single choice's), which `_clean_fields` then calls itself."""
    read = type(widget).value_from_datadict
    if read is forms.Widget.value_from_datadict:
        return None
    if read is forms.widgets.ChoiceWidget.value_from_datadict and not getattr(widget, "allow_multiple_selected", True):
        return None
    return widget.value_from_datadict


class ShouhuForm(forms.Form):
    """Shared behaviour: strip/NFKC text, refuse future dates, Bootstrap classes."""

    past_dates: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _style(self)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data is None:  # BaseForm.clean returns cleaned_data; Django keeps it when an override returns None
            data = self.cleaned_data
        _check_past_dates(self, data)
        return data


class ShouhuModelForm(forms.ModelForm):
    past_dates: tuple[str, ...] = ()
    # True for a form object reused across the rows of one import (`rebind`). The questions model
    # validation would put to the database once per row are then not asked: the model's CHECK
    # constraints (Django's Q.check, one SQL query each) are enforced by the database when the
    # rows are written, and each is also a rule of the form's clean(); a foreign key the form
    # field already fetched from its queryset (the village) is not looked up a second time; nor
    # is uniqueness (`validate_unique`), which the database's unique indexes enforce. The model's
    # field checks run on the cleaned values, not on an instance filled in with them
    # (`_check_model_fields`: a third of a row's validation was filling in and checking instances).
    in_bulk = False
    _bound_fields_cache: dict[str, forms.BoundField]  # BaseForm's, set by its __init__ (django-stubs leaves it out)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _style(self)

    def rebind(self, data: dict[str, Any], *, instance: Any = None) -> ShouhuModelForm:
        """Validate another record with this form object, as a new form would.

        Building a form deep-copies its fields (about half a millisecond for the child's form); a
        survey import validates each row through the same forms as the pages, so it builds each
        form once per file and rebinds it per row. Everything `__init__` derives from the data and
        the instance is reset here; the fields are not touched by validation.
        """
        opts = self._meta
        if instance is not None:
            self.instance = instance
        else:
            # In bulk the model's checks read `cleaned_data` (`_post_clean`): the instance is never
            # filled in, so every new record is validated on the same blank one.
            blank = self.__dict__.get("_blank")
            if blank is None or not self.in_bulk or self._model_checks() is None:
                blank = self._blank = opts.model()
            self.instance = blank
        self.initial = model_to_dict(instance, opts.fields, opts.exclude) if instance is not None else {}
        self.data, self.is_bound, self._errors = data, True, None
        # The bound fields are kept (building about ten per form per row was a tenth of an
        # import's validation): what they cache from the previous row is dropped.
        for bound in self._bound_fields_cache.values():
            bound.__dict__.pop("initial", None)
            bound.__dict__.pop("subwidgets", None)
            help_text = bound.field.help_text
            if bound.help_text is not help_text:  # changed by `_mask_initial` (asking a lazy text
                bound.help_text = help_text or ""  # whether it is empty translates it: not per row)
        for name in ("cleaned_data", "_id_info"):
            self.__dict__.pop(name, None)
        if isinstance(self, MaskedIdentifiers):
            if instance is not None and instance.pk and hasattr(instance, "version"):
                self.initial["version"] = instance.version
            self._mask_initial(instance)
        return self

    def _get_validation_exclusions(self) -> set[str]:
        # A private method of BaseModelForm, which django-stubs does not declare.
        exclude: set[str] = super()._get_validation_exclusions()  # type: ignore[misc]
        if self.in_bulk:
            choices = self.__dict__.get("_model_choice_fields")
            if choices is None:
                choices = self._model_choice_fields = frozenset(
                    name for name, field in self.fields.items() if isinstance(field, forms.ModelChoiceField)
                )
            exclude |= choices
        return exclude

    def validate_unique(self) -> None:
        # In bulk, uniqueness is the database's to enforce, as the CHECK constraints are (see
        # `in_bulk`): the forms' unique model fields are none of an import's columns (the child's
        # ID number is checked against the ledger by `_check_duplicate`, and within the file by
        # the import itself), so the per-row check found nothing and cost a lookup of the model's
        # unique fields each time.
        if not self.in_bulk:
            super().validate_unique()

    def _clean_fields(self) -> None:
        """Django's `_clean_fields`; in bulk, without a bound field per field and row.

        Each field cleans the value its widget reads from the data, then the form's `clean_<name>`
        runs, as Django does it; Django reaches the value through the field's `BoundField`
        (`_clean_bound_field`), which for a field that is neither disabled nor a file field is
        `widget.value_from_datadict(data, files, html_name)`. Those two kinds still go through
        their bound field. Building and resetting the bound fields of six forms was about a
        seventh of an import row's validation."""
        if not self.in_bulk:
            super()._clean_fields()  # type: ignore[misc]  # BaseForm's, private: django-stubs does not declare it
            return
        plan = self.__dict__.get("_clean_plan")
        if plan is None:
            plan = self._clean_plan = [
                (
                    name,
                    field,
                    field.disabled or isinstance(field, forms.FileField),
                    _reader_of(field.widget),
                    self.add_prefix(name),
                    getattr(self, f"clean_{name}", None),
                    _Memo(texts=not _reads_text_in_the_language(field)) if _pure_form_field(field) else None,
                )
                for name, field in self.fields.items()
            ]
        data, files, cleaned = self.data, self.files, self.cleaned_data
        get = data.get
        for name, field, through_bound_field, read, html_name, clean_name, memo in plan:
            try:
                if through_bound_field:
                    cleaned[name] = field._clean_bound_field(self[name])  # type: ignore[union-attr]
                elif memo is None:
                    cleaned[name] = field.clean(get(html_name) if read is None else read(data, files, html_name))
                else:
                    raw = get(html_name) if read is None else read(data, files, html_name)
                    key = _memo_key(raw, memo.texts)
                    value = memo.get(key, _MISSING) if key is not None else _MISSING
                    if value is _MISSING:
                        value = field.clean(raw)
                        if key is not None:
                            memo.put(key, value)
                    cleaned[name] = value
                if clean_name is not None:
                    cleaned[name] = clean_name()
            except ValidationError as exc:
                self.add_error(name, exc)

    def _post_clean(self) -> None:
        checks = self._model_checks() if self.in_bulk else None
        if checks is not None:
            self._check_model_fields(checks)
            return
        if self.in_bulk:
            # Shadow the instance's method for this validation only (the instance is this row's).
            self.instance.validate_constraints = lambda exclude=None: None
        super()._post_clean()  # type: ignore[misc]  # BaseModelForm's, private: django-stubs does not declare it
        self.instance.__dict__.pop("validate_constraints", None)

    def _model_checks(self) -> list[_ModelCheck] | None:
        """The model fields whose own validation (`Model.clean_fields`) a ModelForm runs after the
        form's, each with its form field; None when the model has a `clean()` of its own (then the
        model's whole validation runs, on a filled-in instance, as Django does it).

        The fields are those Django does not exclude whatever the row (`_get_validation_exclusions`:
        the form's fields of its Meta.fields) less, in bulk, the foreign keys the form field has
        already fetched (see `in_bulk`). Worked out once per form object."""
        if "_checks" not in self.__dict__:
            model = self._meta.model
            checks: list[_ModelCheck] | None = None
            if model.clean is models.Model.clean:
                checks = []
                for field in model._meta.fields:
                    form_field = self.fields.get(field.name)
                    if form_field is None or getattr(field, "generated", False):
                        continue
                    if self._meta.fields and field.name not in self._meta.fields:
                        continue
                    if self._meta.exclude and field.name in self._meta.exclude:
                        continue
                    if isinstance(form_field, forms.ModelChoiceField | InlineForeignKeyField):
                        continue
                    checks.append((field, form_field, _Memo() if _pure_model_field(field) else None))
            self._checks = checks
        return self._checks

    def _check_model_fields(self, checks: list[_ModelCheck]) -> None:
        """What `BaseModelForm._post_clean` finds, without filling in the instance: each model
        field's `clean` on the value the form cleaned, skipped where Django skips it (a field that
        failed the form's validation; an empty value the model allows, or the form does not
        require), errors reported as Django reports them. The model's CHECK constraints and
        uniqueness are the database's in bulk (see `in_bulk`); the model has no `clean()`.
        Held equal to Django's own validation by registry/tests/test_bulk_validation.py."""
        data, errors = self.cleaned_data, {}
        failed: dict[str, Any] = self._errors or {}
        instance = self.instance
        for field, form_field, memo in checks:
            name = field.name
            if name in failed:
                continue
            key = None
            if name in data:
                value = data[name]
                if memo is not None:
                    key = _memo_key(value)
                    if key is not None and key in memo:
                        continue  # this value was found faultless in this field before
                if not field.blank and not form_field.required and value in form_field.empty_values:
                    if key is not None:
                        memo.put(key, True)  # type: ignore[union-attr]
                    continue
            else:
                if not field.blank and not form_field.required:  # None: one of the form field's empty values
                    continue
                value = getattr(instance, field.attname)  # what `construct_instance` would have left there
            if field.blank and value in field.empty_values:
                if key is not None:
                    memo.put(key, True)  # type: ignore[union-attr]
                continue
            try:
                field.clean(value, instance)
            except ValidationError as exc:
                errors[name] = exc.error_list
            else:
                if key is not None:
                    memo.put(key, True)  # type: ignore[union-attr]
        if errors:
            self._update_errors(ValidationError(errors))  # type: ignore[attr-defined]  # BaseModelForm's, private

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data is None:  # BaseForm.clean returns cleaned_data; Django keeps it when an override returns None
            data = self.cleaned_data
        text_fields = self.__dict__.get("_text_fields")
        if text_fields is None:
            text_fields = self._text_fields = frozenset(
                name for name, field in self.fields.items() if isinstance(field, forms.CharField)
            )
        for name in text_fields:
            value = data.get(name)
            if value and isinstance(value, str):
                data[name] = normalize_text(value) if "\n" not in value else value.strip()
        _check_past_dates(self, data)
        return data


def _check_past_dates(form: ShouhuForm | ShouhuModelForm, data: dict[str, Any]) -> None:
    for name in form.past_dates:
        value = data.get(name)
        if isinstance(value, date) and value > today():
            form.add_error(name, _("日期不能晚于今天。"))


def _style(form: forms.BaseForm) -> None:
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, forms.CheckboxSelectMultiple):
            continue
        elif isinstance(widget, forms.Select):
            widget.attrs.setdefault("class", "form-select")
            _blank_choice_in_chinese(field)
        else:
            widget.attrs.setdefault("class", "form-control")
        if isinstance(field, forms.DateField):
            widget.input_type = "date"


def _blank_choice_in_chinese(field: forms.Field) -> None:
    """Django's empty choice reads "---------"; say "请选择" instead."""
    if isinstance(field, forms.ModelChoiceField):
        if field.empty_label is not None:
            field.empty_label = _("请选择")
    elif isinstance(field, forms.ChoiceField):
        # Django normalises choices when they are set: a list, or an iterator over a callable's.
        choices = list(cast(Iterable[Any], field.choices))
        if choices and choices[0] == ("", "---------"):
            field.choices = [("", _("请选择"))] + choices[1:]


class MaskedIdentifiers:
    """Edit forms show personal identifiers masked, as the child page does: showing one in full is
    an audited act (the unmask button), not a side effect of opening a form. Submitting the masked
    value unchanged keeps the stored one; typing a new value replaces it."""

    masked_fields: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        instance = kwargs.get("instance")
        if instance is not None and instance.pk and hasattr(instance, "version"):
            # The version the user starts from: a save from a stale version is refused (StaleEdit).
            kwargs["initial"] = {"version": instance.version, **(kwargs.get("initial") or {})}
        super().__init__(*args, **kwargs)
        self._mask_initial(instance)

    def _clean_optional_id(self, name: str) -> str:
        raw = self._unmasked(name, self.cleaned_data.get(name) or "")  # type: ignore[attr-defined]
        if not normalize_compact(raw):
            return ""
        info = parse_id_number(raw, today=today())
        self._id_info = info
        return info.value

    def _clean_phone(self, name: str) -> str:
        return clean_phone(self._unmasked(name, self.cleaned_data.get(name) or ""))  # type: ignore[attr-defined]

    def _mask_initial(self, instance: Any) -> None:
        self._stored = {}
        for name, mask in self.masked_fields.items():
            value = getattr(instance, name, "") if instance is not None and instance.pk else ""
            if value:
                self._stored[name] = value
                self.initial[name] = mask(value)  # type: ignore[attr-defined]
                self.fields[name].help_text = _("已打码显示；不修改请保持原样，修改请完整填写。")  # type: ignore[attr-defined]

    def _unmasked(self, name: str, raw: str) -> str:
        stored = getattr(self, "_stored", {}).get(name)
        if stored and normalize_compact(raw) == normalize_compact(self.masked_fields[name](stored)):
            return stored
        return raw


class RegionChoiceField(forms.ModelChoiceField):
    """A village picked by code and shown with its town; each code is looked up once per form object
    (an import validates thousands of rows with one form: one query per village, not per row)."""

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        memo = self.__dict__.setdefault("_memo", {})
        key = (id(self.queryset), str(getattr(value, "pk", value)))
        if key not in memo:
            memo[key] = super().to_python(value)
        return memo[key]

    def remember(self, regions: Iterable[Any]) -> None:
        """Know these villages without asking the database, as if each had been looked up: only
        villages the field's queryset holds (it limits the choice to the user's scope)."""
        assert self.to_field_name in (None, "code"), self.to_field_name  # the memo is keyed by code
        memo = self.__dict__.setdefault("_memo", {})
        allowed = set(self.queryset.values_list("code", flat=True)) if self.queryset is not None else set()
        for region in regions:
            if region.code in allowed:
                memo[(id(self.queryset), region.code)] = region

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.parent.name if obj.parent else ''} {obj.name}"

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        result = super().__deepcopy__(memo)  # type: ignore[misc]  # Field.__deepcopy__, missing from django-stubs
        result.__dict__.pop("_memo", None)
        return result


class DateInput(forms.DateInput):
    input_type = "date"

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, date):
            return value.isoformat()
        return value


class ChildForm(MaskedIdentifiers, ShouhuModelForm):
    masked_fields = {"id_number": mask_id_number}

    id_number = forms.CharField(label=gettext_lazy("身份证号"), max_length=30)
    gender = forms.ChoiceField(
        label=gettext_lazy("性别"), choices=[("", gettext_lazy("按身份证号"))] + list(m.Gender.choices), required=False
    )
    birth_date = forms.DateField(label=gettext_lazy("出生日期"), required=False, widget=DateInput)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    past_dates = ("birth_date",)

    class Meta:
        model = m.Child
        fields = list(CHILD_FIELDS)  # the fields the registry's services write
        widgets = {"note": forms.Textarea(attrs={"rows": 3})}
        field_classes = {"region": RegionChoiceField}

    def __init__(self, *args: Any, actor: Any, instance: m.Child | None = None, **kwargs: Any) -> None:
        from shouhu.org.access import scope_for

        super().__init__(*args, instance=instance, **kwargs)
        self.actor = actor
        scope = scope_for(actor)
        villages = Region.objects.filter(level=RegionLevel.VILLAGE).select_related("parent").order_by("code")
        if scope.prefixes:
            from django.db.models import Q

            q = Q()
            for prefix in scope.prefixes:
                q |= Q(code__startswith=prefix)
            villages = villages.filter(q)
        else:
            villages = villages.none()
        field_of(self, "region", RegionChoiceField).queryset = villages
        if instance is None and len(scope.prefixes) == 1 and len(scope.prefixes[0]) == 12:
            self.fields["region"].initial = scope.prefixes[0]  # a village director's own village
        self.fields["disability_grade"].required = False

    def clean_name(self) -> str:
        name = normalize_text(self.cleaned_data["name"])
        if len(name) < 2:
            raise ValidationError(_("请填写儿童的完整姓名。"))
        if re.search(r"[<>{}\\/;=]", name):
            raise ValidationError(_("姓名中不能包含特殊符号。"))
        return name

    def clean_id_number(self) -> str:
        info = parse_id_number(self._unmasked("id_number", self.cleaned_data["id_number"]), today=today())
        self._id_info = info
        return info.value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        info = getattr(self, "_id_info", None)
        if info is not None:
            typed_birth = data.get("birth_date")
            if typed_birth and typed_birth != info.birth_date:
                self.add_error(
                    "birth_date",
                    _("出生日期与身份证号不一致：身份证号显示为 %(d)s。") % {"d": info.birth_date.isoformat()},
                )
            typed_gender = data.get("gender")
            if typed_gender and typed_gender != info.gender:
                self.add_error(
                    "gender", _("性别与身份证号不一致：第17位表示%(g)s。") % {"g": m.Gender(info.gender).label}
                )
            data["birth_date"] = info.birth_date
            data["gender"] = info.gender
            self._check_age(info.birth_date)
            self._check_duplicate(info.value)
        if data.get("health") == m.Health.DISABLED:
            if not data.get("disability_type"):
                self.add_error("disability_type", _("健康状况为残疾时，请选择残疾类别。"))
            if not data.get("disability_grade"):
                self.add_error("disability_grade", _("健康状况为残疾时，请选择残疾等级。"))
        if data.get("health") == m.Health.ILL and not data.get("illness"):
            self.add_error("illness", _("健康状况为患病时，请填写所患疾病。"))
        return data

    def _check_age(self, birth: date) -> None:
        is_new = self.instance.pk is None or self.instance._state.adding
        if not is_new:
            return
        if age_on(birth, today()) >= 18:
            self.add_error("id_number", _("该儿童已年满18周岁，不能登记入儿童台账。"))

    # Set by a survey import for the rows of one batch: {blind index: (child pk, visible to the
    # actor)} for every ID number of the batch already in the ledger, read in two queries for the
    # batch instead of two per row. An index not in it is not in the ledger.
    known_ids: dict[str, tuple[Any, bool]] | None = None

    def _check_duplicate(self, value: str) -> None:
        from shouhu.lib.crypto import blind_index
        from shouhu.registry.selectors import children_visible_to

        index = blind_index(value, purpose="child_id")
        if self.known_ids is not None:
            existing_id, visible = self.known_ids.get(index, (None, False))
            if existing_id is not None and existing_id == self.instance.pk:
                existing_id = None
        else:
            existing = m.Child.objects.filter(id_number_index=index)
            if self.instance.pk:
                existing = existing.exclude(pk=self.instance.pk)
            existing_id = existing.values_list("pk", flat=True).first()
            visible = existing_id is not None and children_visible_to(self.actor).filter(pk=existing_id).exists()
        if existing_id is None:
            return
        if visible:
            url = reverse("registry:child_detail", args=[existing_id])
            self.add_error(
                "id_number",
                ValidationError(
                    format_html(_('该身份证号已登记，<a href="{}">查看已有记录</a>。'), url), code="duplicate"
                ),
            )
        else:
            self.add_error(
                "id_number",
                ValidationError(_("该身份证号无法登记，请核对号码，或联系区民政局（联席办）核实。"), code="duplicate"),
            )


class HouseholdForm(MaskedIdentifiers, ShouhuModelForm):
    masked_fields = {"address": mask_address}

    income_sources = forms.MultipleChoiceField(
        label=gettext_lazy("收入来源"), choices=m.INCOME_SOURCES, required=False, widget=forms.CheckboxSelectMultiple
    )
    assistance_received = forms.MultipleChoiceField(
        label=gettext_lazy("已获救助"), choices=m.ASSISTANCE_KINDS, required=False, widget=forms.CheckboxSelectMultiple
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = m.Household
        fields = list(HOUSEHOLD_FIELDS)  # the fields the registry's services write
        widgets = {"address": forms.TextInput()}

    def clean_address(self) -> str:
        value = normalize_text(self._unmasked("address", self.cleaned_data.get("address") or ""))
        if len(value) > 200:
            raise ValidationError(_("地址不能超过200个字。"))
        return value


class FamilyMemberForm(MaskedIdentifiers, ShouhuModelForm):
    masked_fields = {"id_number": mask_id_number, "phone": mask_phone}

    id_number = forms.CharField(label=gettext_lazy("身份证号"), max_length=30, required=False)
    phone = forms.CharField(label=gettext_lazy("联系电话"), max_length=30, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    past_dates = ("birth_date",)

    class Meta:
        model = m.FamilyMember
        fields = list(MEMBER_FIELDS)  # the fields the registry's services write
        widgets = {"birth_date": DateInput}

    def clean_id_number(self) -> str:
        return self._clean_optional_id("id_number")

    def clean_phone(self) -> str:
        return self._clean_phone("phone")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        info = getattr(self, "_id_info", None)
        if info is not None:
            if data.get("birth_date") and data["birth_date"] != info.birth_date:
                self.add_error(
                    "birth_date",
                    _("出生日期与身份证号不一致：身份证号显示为 %(d)s。") % {"d": info.birth_date.isoformat()},
                )
            data["birth_date"] = info.birth_date
            relation = data.get("relation") or ""
            genders: dict[str, str] = {m.Relation.FATHER: "M", m.Relation.MOTHER: "F"}
            expected = genders.get(relation)
            if expected and info.gender != expected:
                self.add_error(
                    "id_number", _("身份证号的性别与“%(r)s”不符，请核对。") % {"r": m.Relation(relation).label}
                )
        return data


class SituationForm(ShouhuModelForm):
    past_dates = ("since",)

    class Meta:
        model = m.ParentSituation
        fields = list(SITUATION_FIELDS)  # the fields the registry's services write
        widgets = {"since": DateInput, "until": DateInput}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("结束日期不能早于起始日期。"))
        if data.get("kind") == m.SituationKind.SEVERE_DISABILITY and not data.get("disability_grade"):
            self.add_error("disability_grade", _("重残情形请填写残疾等级。"))
        return data


SituationFormSet = forms.inlineformset_factory(
    m.FamilyMember, m.ParentSituation, form=SituationForm, extra=1, max_num=8, can_delete=True
)


SCAN_MAX_BYTES = 5 * 1024 * 1024
# Magic bytes -> content type: what the file is, whatever its name or the browser says.
SCAN_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def scan_content_type(head: bytes) -> str | None:
    """The content type of an agreement scan from its first bytes; None for anything else."""
    for magic, content_type in SCAN_SIGNATURES:
        if head.startswith(magic):
            return content_type
    return None


class YesNo(forms.RadioSelect):
    """A yes/no question: two radio buttons, nothing ticked until answered."""

    def __init__(self) -> None:
        super().__init__(choices=[("True", gettext_lazy("是")), ("False", gettext_lazy("否"))])


class EntrustmentForm(MaskedIdentifiers, ShouhuModelForm):
    """One entrusted-care agreement. The page, the API and survey imports validate through it.

    The carer's eligibility (art. 22) is six yes/no questions, answered all together or not at all;
    an answer that bars the carer refuses the form. A scan of the signed agreement (PDF, JPEG or
    PNG, at most 5 MB, recognised by its content) may be attached: `cleaned_data["agreement_scan"]`
    is then `(bytes, content type)`.
    """

    masked_fields = {"carer_id_number": mask_id_number, "carer_phone": mask_phone}

    carer_id_number = forms.CharField(label=gettext_lazy("受委托人身份证号"), max_length=30, required=False)
    carer_phone = forms.CharField(label=gettext_lazy("受委托人电话"), max_length=30, required=False)
    agreement_scan = forms.FileField(
        label=gettext_lazy("确认书扫描件"),
        required=False,
        help_text=gettext_lazy("PDF、JPG 或 PNG，不超过5MB。仅有权限的人员可下载，每次下载均记录审计日志。"),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    past_dates = (
        "since",
        "agreement_date",
        "carer_birth_date",
        "village_informed_on",
        "school_informed_on",
        "eligibility_checked_on",
    )

    class Meta:
        model = m.Entrustment
        fields = list(ENTRUSTMENT_FIELDS)  # the fields the registry's services write
        widgets = {
            "carer_birth_date": DateInput,
            "since": DateInput,
            "until": DateInput,
            "agreement_date": DateInput,
            "village_informed_on": DateInput,
            "school_informed_on": DateInput,
            "eligibility_checked_on": DateInput,
            **{name: YesNo() for name in m.ELIGIBILITY_FIELDS},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in m.ELIGIBILITY_FIELDS:
            self.fields[name].widget.attrs = {"class": "form-check-input"}
        self.fields["agreement_scan"].widget.attrs["class"] = "form-control"

    def clean_carer_id_number(self) -> str:
        return self._clean_optional_id("carer_id_number")

    def clean_carer_phone(self) -> str:
        return self._clean_phone("carer_phone")

    def clean_agreement_scan(self) -> tuple[bytes, str] | None:
        upload = self.cleaned_data.get("agreement_scan")
        if not upload:
            return None
        if upload.size > SCAN_MAX_BYTES:
            raise ValidationError(_("扫描件不能超过5MB，请压缩或降低分辨率后重新上传。"))
        data = upload.read(SCAN_MAX_BYTES + 1)
        if len(data) > SCAN_MAX_BYTES:
            raise ValidationError(_("扫描件不能超过5MB，请压缩或降低分辨率后重新上传。"))
        content_type = scan_content_type(data[:16])
        if content_type is None:
            raise ValidationError(_("扫描件须为 PDF、JPG 或 PNG 文件。"))
        return data, content_type

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        info = getattr(self, "_id_info", None)
        if info is not None:
            data["carer_birth_date"] = data.get("carer_birth_date") or info.birth_date
        birth = data.get("carer_birth_date")
        if birth and m.Child(birth_date=birth).age_on(today()) < 18:
            self.add_error("carer_birth_date", _("受委托监护人须为年满18周岁的成年人（未成年人保护法第二十二条）。"))
        if data.get("agreement_signed") and not data.get("agreement_date"):
            self.add_error("agreement_date", _("已签订确认书时，请填写签订日期。"))
        if data.get("agreement_scan") and not data.get("agreement_signed"):
            self.add_error("agreement_signed", _("上传了确认书扫描件，请勾选“已签订委托监护确认书”并填写签订日期。"))
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("结束日期不能早于起始日期。"))
        for flag in ("village_informed", "school_informed"):
            if data.get(f"{flag}_on"):
                data[flag] = True  # a date of the written notice is the notice
        self._clean_eligibility(data)
        self._refuse_carer_change(data)
        return data

    def _clean_eligibility(self, data: dict[str, Any]) -> None:
        answers = {name: data.get(name) for name in m.ELIGIBILITY_FIELDS}
        answered = [name for name, value in answers.items() if value is not None]
        if not answered:
            if data.get("eligibility_checked_on"):
                self.add_error("eligibility_checked_on", _("请先回答受委托人资格核查的全部问题。"))
            return
        for name, value in answers.items():
            if value is None:
                self.add_error(name, _("请回答此项：资格核查的问题须全部回答。"))
        for name, barring in m.ELIGIBILITY_QUESTIONS.items():
            if answers[name] is barring:
                message = (
                    _("不具备此条件者不能担任受委托人（未成年人保护法第二十二条），请另行确定受委托人。")
                    if barring is False
                    else _("有此情形者不得担任受委托人（未成年人保护法第二十二条），请另行确定受委托人。")
                )
                self.add_error(name, message)
        if len(answered) == len(answers) and not data.get("eligibility_checked_on"):
            data["eligibility_checked_on"] = today()

    def _refuse_carer_change(self, data: dict[str, Any]) -> None:
        """A signed agreement names its carer: another carer is another agreement (“新的委托”)."""
        instance = self.instance
        if instance.pk is None or not instance.agreement_signed:
            return
        stored_id = getattr(self, "_stored", {}).get("carer_id_number", "")
        changed_name = "carer_name" in data and data["carer_name"] != instance.carer_name
        changed_id = bool(stored_id) and "carer_id_number" in data and data["carer_id_number"] != stored_id
        if changed_name or changed_id:
            self.add_error(
                "carer_name",
                _("已签订确认书的委托不能更换受委托人；受委托人变化时，请使用“新的委托”重新登记并签订确认书。"),
            )


class ExitForm(ShouhuForm):
    reason = forms.ChoiceField(label=gettext_lazy("退出原因"), choices=m.ExitReason.choices)
    exit_date = forms.DateField(label=gettext_lazy("退出日期"), widget=DateInput)
    note = forms.CharField(label=gettext_lazy("说明"), max_length=200, required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)
    past_dates = ("exit_date",)


class ReenterForm(ShouhuForm):
    note = forms.CharField(label=gettext_lazy("重新纳入原因"), max_length=200)
    version = forms.IntegerField(widget=forms.HiddenInput)


def bulk_form(kind: str, actor: Any) -> ShouhuModelForm:
    """The ledger's form of that kind ("child", "household", "member", "situation", "entrustment")
    for validating many records, as a survey import does: `in_bulk`, built once, each record
    validated after `rebind`."""
    form: ShouhuModelForm = (
        ChildForm(None, actor=actor)
        if kind == "child"
        else {
            "household": HouseholdForm,
            "member": FamilyMemberForm,
            "situation": SituationForm,
            "entrustment": EntrustmentForm,
        }[kind]()
    )
    form.in_bulk = True
    return form
