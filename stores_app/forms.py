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


def _words(text: str) -> list[str]:
    return [word for word in text.replace(",", " ").split() if word]


class RolloutForm(forms.Form):
    """Staff's new rollout; the rules (limits, selection, target) are decided by services.create_rollout."""

    engine = forms.ChoiceField(choices=Engine.choices)
    from_versions = forms.CharField(required=False, help_text="Chart versions to move, comma separated; empty: any.")
    owners = forms.CharField(required=False, help_text="Usernames, comma separated; empty: every owner.")
    store_ids = forms.CharField(required=False, help_text="Store ids, comma separated; empty: every store.")
    canary_size = forms.IntegerField(initial=1, min_value=1, help_text="Stores in the first wave.")
    growth = forms.IntegerField(initial=2, min_value=1, help_text="Each next wave is this many times larger.")
    concurrency = forms.IntegerField(initial=4, min_value=1, help_text="Stores of a wave upgrading at once.")
    failure_threshold = forms.IntegerField(
        initial=0, min_value=0, max_value=100, help_text="Pause when more than this % of a wave failed (0: any)."
    )

    def clean_store_ids(self) -> list[int]:
        words = _words(self.cleaned_data["store_ids"])
        if not all(word.isdigit() for word in words):
            raise forms.ValidationError("Store ids are whole numbers, separated by commas or spaces.")
        return [int(word) for word in words]

    def clean_from_versions(self) -> list[str]:
        return _words(self.cleaned_data["from_versions"])

    def clean_owners(self) -> list[str]:
        return _words(self.cleaned_data["owners"])
