from datetime import date

from django import template

register = template.Library()


@register.filter
def child_age(child, today: date) -> int:  # noqa: ANN001
    return child.age_on(today)
