"""Sandbox core: stands in for the centre's core business system, behind an HTTP API."""
