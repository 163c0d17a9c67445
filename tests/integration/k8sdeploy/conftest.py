"""kustomize for the drift tests (the cached binary; built first when missing, as in tests/integration/platform)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.k8sbuild.binaries import KUSTOMIZE, ensure_k8s_tools
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.progress import Progress


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return ensure_k8s_tools(K8sBuildSettings(), [KUSTOMIZE], progress=Progress()).binary(KUSTOMIZE)
