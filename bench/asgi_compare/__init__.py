"""The parts of ``asgi_servers.py`` (granian vs uvicorn for this app): the probe app, the candidate
servers, the small-request load, one round of measurements, and the report."""
