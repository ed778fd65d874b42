"""Local stand-ins for the services ctwa talks to (starlette apps), for offline work and tests."""
