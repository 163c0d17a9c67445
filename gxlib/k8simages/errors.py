"""Errors of the local image builds; each names the image (or layer path) and what the operator can do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gxlib.errors import GxError


class LayerError(GxError):
    """A layer cannot be built from what it was given; ``path`` names the entry or the source path."""

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class ImageError(GxError):
    """An image cannot be written as asked; ``reference`` names the image."""

    def __init__(self, message: str, *, reference: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reference = reference


class ImageBuildError(GxError):
    """A step of an image's build failed: the image, the step, the command and the tail of its output."""

    def __init__(
        self,
        image: str,
        step: str,
        *,
        command: Sequence[str] = (),
        output_tail: str = "",
        log_file: Path | None = None,
        hint: str | None = None,
    ) -> None:
        shown = f": `{' '.join(command)}`" if command else ""
        where = f" (full log: {log_file})" if log_file else ""
        tail = f"\n{output_tail}" if output_tail else ""
        super().__init__(f"building image {image!r} failed while {step}{shown}{where}{tail}", hint=hint)
        self.image = image
        self.step = step
        self.command = tuple(command)
        self.log_file = log_file


class UnknownImage(GxError):
    """An image name that the catalog does not have."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"no image named {name!r} in the catalog", hint=f"known images: {', '.join(known)}")
        self.name = name
