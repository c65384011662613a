"""The REST API (FastAPI): incidents, playbooks, alert intake, health and /metrics.

As thin over the library as :mod:`soc.cli`: :func:`soc.api.app.create_app` builds
the app over a store, a responder and a clock; ``soc api serve`` runs it.
"""

from soc.api.base import SCOPES, ApiConfig, ApiError

__all__ = ["SCOPES", "ApiConfig", "ApiError"]
