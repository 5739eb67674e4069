#!/usr/bin/env python
"""Django's command-line entry point for the Store Orchestrator."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
