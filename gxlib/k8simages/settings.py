"""Where the locally built container images are cached and which tools build them (``GX_IMAGES_*``)."""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxlib.config import APP_NAME


def _default_cache_root() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "images"


class ImageSettings(BaseSettings):
    """``GX_IMAGES_CACHE_ROOT`` (default ~/.cache/gxlib/images), ``GX_IMAGES_CC`` (the C compiler for the pause
    program), ``GX_IMAGES_GO_BINARY``."""

    model_config = SettingsConfigDict(env_prefix="GX_IMAGES_", extra="ignore")

    cache_root: Path = Field(default_factory=_default_cache_root)
    cc: str = "cc"
    go_binary: str = "go"
