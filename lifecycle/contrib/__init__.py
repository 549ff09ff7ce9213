"""Integrations with other tools, each behind an optional extra (nothing here is imported by
``import lifecycle``): :mod:`lifecycle.contrib.locust` runs load sessions as a Locust user."""
