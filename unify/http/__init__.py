"""The HTTP face of unify: the app factory and thin controllers."""

from unify.http._app import create_app

__all__ = ["create_app"]
