"""Dashboard forms; validation rules themselves live in naming/services."""

from django import forms

from .models import Engine
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
