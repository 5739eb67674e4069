"""Creates the demo login (user `demo`, staff) if missing and prints its password once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo user (staff) if it does not exist; print the password only when created."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"User {username} exists; its password is unchanged.")
            return
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_user(username=username, password=password, is_staff=True, is_superuser=True)
        self.stdout.write(f"Created user {username} with password {password}")
