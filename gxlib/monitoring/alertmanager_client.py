"""Questions to a live Alertmanager (its v2 API), with the same error types as the Prometheus client.

    with AlertmanagerClient("http://127.0.0.1:19093") as alertmanager:
        alertmanager.ready(); alertmanager.active("FabricCircuitBreakerOpen")

``session`` is a prepared ``requests`` session for an Alertmanager behind an authenticating proxy (e.g. the
Kubernetes API server's service proxy); it is closed with this client.
"""

from __future__ import annotations

from typing import Any, Self

import requests

from gxlib.monitoring.queries import PrometheusResponseError, PrometheusUnreachableError


class AlertmanagerClient:
    def __init__(self, url: str, *, timeout_s: float = 5.0, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session if session is not None else requests.Session()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, str] | None = None, *, method: str = "GET") -> requests.Response:
        try:
            response = self._session.request(method, f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise PrometheusUnreachableError(f"Alertmanager at {self.url} is unreachable ({method} {path}): "
                                             f"{exc.__class__.__name__}", url=self.url,
                                             hint="is it running? `gx monitoring status`, or pass alertmanager_url"
                                             ) from exc
        if response.status_code != 200:
            raise PrometheusResponseError(f"Alertmanager at {self.url} answered {method} {path} with HTTP "
                                          f"{response.status_code}: {response.text.strip()[:300]}", url=self.url)
        return response

    def ready(self) -> None:
        """Returns when Alertmanager answers ``GET /-/ready`` with 200; else a typed error saying why."""
        self._get("/-/ready")

    def unready(self) -> str | None:
        """Why Alertmanager is not ready now (``None``: ready)."""
        try:
            self.ready()
        except (PrometheusUnreachableError, PrometheusResponseError) as exc:
            return exc.message
        return None

    def reload(self) -> None:
        """``POST /-/reload``: Alertmanager re-reads its configuration; a refused one is a typed error."""
        self._get("/-/reload", method="POST")

    def active(self, alert: str) -> list[dict[str, Any]]:
        """The instances of ``alert`` that Alertmanager holds as active."""
        answer = self._get("/api/v2/alerts", {"filter": f'alertname="{alert}"'}).json()
        return [a for a in answer if a.get("status", {}).get("state") == "active"]
