"""The applications panel: an uploaded image restored, or compressed against JPEG and WebP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from aekit.dashboard import compression, images, typicality
from aekit.dashboard.deps import WorkspaceDep
from aekit.dashboard.errors import TooLarge
from aekit.errors import ConfigError

router = APIRouter(prefix="/api/apply")


def _read(upload: UploadFile) -> bytes:
    """The upload's bytes, reading at most one byte past the limit (a larger file is refused unread)."""
    data = upload.file.read(images.MAX_UPLOAD_BYTES + 1)
    if len(data) > images.MAX_UPLOAD_BYTES:
        raise TooLarge(
            f"the uploaded file is over {images.MAX_UPLOAD_BYTES // 2**20} MB; send a smaller image."
        )
    return data


@router.post("/restore")
def restore(
    file: Annotated[UploadFile, File()], model: Annotated[str, Form()], ws: WorkspaceDep
) -> dict[str, Any]:
    restorer = ws.of_type(
        model, "restore", "pick a restore model (aekit train --task denoise|colorize|upscale|inpaint)."
    )
    channels = restorer.task_.observed_channels(restorer.channels_)
    image = images.decode_upload(_read(file), "the uploaded image", channels, images.MAX_APPLY_PIXELS)
    out = restorer.restore(image)
    return {
        "input": images.data_url(image),
        "output": images.data_url(out),
        "width": int(out.shape[1]),
        "height": int(out.shape[0]),
        "typicality": typicality.image_report(restorer, image),
    }


@router.post("/compress")
def compress(
    file: Annotated[UploadFile, File()],
    ws: WorkspaceDep,
    model: Annotated[str, Form()] = "photo",
    quality: Annotated[int, Form()] = 4,
) -> dict[str, Any]:
    """Our codec at ``quality`` beside JPEG and WebP at the quality whose file size is nearest ours."""
    codec = ws.of_type(model, "codec", "pick 'photo' (built in) or a codec from aekit train --task compress.")
    if not 1 <= quality <= codec.n_qualities:
        raise ConfigError(
            f"quality must be from 1 (smallest files) to {codec.n_qualities} (best) for codec {model!r}; "
            f"got {quality}."
        )
    image = images.decode_upload(_read(file), "the uploaded image", codec.channels_, images.MAX_APPLY_PIXELS)
    ours = compression.learned(codec, image, quality, codec_name=ws.entry(model).builtin or model)
    return {
        "ours": {**ours, "quality": quality},
        **{name: compression.pillow_nearest(name, image, ours["bytes"]) for name in compression.FORMATS},
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "typicality": typicality.image_report(codec, image),
    }
