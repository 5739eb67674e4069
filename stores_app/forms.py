"""Dashboard forms and list filters; the validation rules themselves live in naming/services."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from .models import AuditEntry, Engine, Status, Store
from .naming import slug_for


class StoreForm(forms.Form):
    # Not "required": an empty name gets the same explanatory message as any other bad name.
    name = forms.CharField(
        max_length=200, strip=True, required=False, help_text="Letters, digits, spaces and hyphens; 3–40 characters."
    )
    engine = forms.ChoiceField(choices=Engine.choices, initial=Engine.WOOCOMMERCE)

    def clean_name(self):
        name = self.cleaned_data["name"]
        slug_for(name)  # raises ValidationError with the reason and the fix
        return name


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=60,
        strip=True,
        required=False,
        help_text="What will use it, e.g. 'CI deploys'; shown in the list below. Empty: named after today's date.",
    )


class StoreFilter(django_filters.FilterSet):
    """Staff's search and filters over every store (owners have few stores and see them all)."""

    q = django_filters.CharFilter(method="search", label="Search")
    owner = django_filters.CharFilter(field_name="owner__username", lookup_expr="iexact", label="Owner")
    engine = django_filters.ChoiceFilter(choices=Engine.choices, empty_label="Any engine")
    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label="Any status")

    class Meta:
        model = Store
        fields = ["q", "owner", "engine", "status"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value) | Q(namespace__icontains=value))


class AuditFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=AuditEntry.Action.choices, empty_label="Any action")
    outcome = django_filters.ChoiceFilter(choices=AuditEntry.Outcome.choices, empty_label="Any outcome")
    store = django_filters.CharFilter(field_name="store_name", lookup_expr="icontains", label="Store")

    class Meta:
        model = AuditEntry
        fields = ["action", "outcome", "store"]
