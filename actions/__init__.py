"""Rasa SDK actions: thin, one module per skill. They reach business rules only through
the core's HTTP API (actions/core_client.py) and never import the app's packages."""
