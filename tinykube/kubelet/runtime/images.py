"""The image service of runtimes that run commands from the host: images are recorded by
name (and a digest of it), never pulled, since containers use the host's filesystem."""

from __future__ import annotations

import hashlib

from tinykube.kubelet.runtime.interface import Image, ImageSpec


def image_id(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


class RecordedImages:
    """ImageService by bookkeeping: ``pull_image`` records, the rest reads the record."""

    images: dict[str, Image]

    async def pull_image(self, image: ImageSpec) -> str:
        ref = image_id(image.image)
        self.images.setdefault(image.image, Image(ref, [image.image]))
        return ref

    async def image_status(self, image: ImageSpec) -> Image | None:
        return self.images.get(image.image)

    async def list_images(self) -> list[Image]:
        return list(self.images.values())

    async def remove_image(self, image: ImageSpec) -> None:
        self.images.pop(image.image, None)
