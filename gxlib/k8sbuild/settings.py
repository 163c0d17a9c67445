"""Where the Kubernetes tools are built and cached (``GX_K8S_*``)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxlib.config import APP_NAME


def _default_cache_root() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


class K8sBuildSettings(BaseSettings):
    """``GX_K8S_CACHE_ROOT`` (default ~/.cache/gxlib) and ``GX_K8S_GO_BINARY``."""

    model_config = SettingsConfigDict(env_prefix="GX_K8S_", extra="ignore")

    cache_root: Path = Field(default_factory=_default_cache_root)
    go_binary: str = "go"
