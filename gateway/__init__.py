"""Citizen- and staff-facing HTTP/WebSocket gateway."""
