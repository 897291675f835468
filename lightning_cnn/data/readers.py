"""Reading images from files: listing a folder of class subfolders, decoding one image to a float tensor."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

__all__ = [
    "BadImageError",
    "COLOR_MODES",
    "ColorMode",
    "IMAGE_EXTENSIONS",
    "RESIZE_MODES",
    "ResizeMode",
    "check_extensions",
    "image_files",
    "list_image_folder",
    "load_image",
]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
ColorMode = Literal["rgb", "grayscale"]
COLOR_MODES: tuple[str, ...] = get_args(ColorMode)
ResizeMode = Literal["stretch", "center_crop"]
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)


class BadImageError(ValueError):
    """An image file that cannot be read or decoded; the message names its path."""

    def __init__(self, path: str | Path, reason: BaseException | str) -> None:
        self.path = str(path)
        super().__init__(
            f"Cannot read image {self.path}: {reason}. Fix or remove the file, or pass skip_bad_files=True to skip"
            " unreadable images (they are counted in a warning)."
        )


def list_image_folder(
    root: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS, class_names: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """List the images of a folder of class subfolders (``root/<class>/**/<image>``) without opening them.

    Classes are the subfolder names in sorted order (or ``class_names``, e.g. a training folder's classes
    for its test folder); files are sorted within each class, so the listing is the same on every
    machine and rank.

    Args:
        root: the folder.
        extensions: file name endings that count as images (case-insensitive).
        class_names: the classes to expect; a subfolder outside them is an error.

    Returns:
        ``(paths, labels, class_names)``.

    Raises:
        FileNotFoundError: when ``root`` is not a folder.
        ValueError: for no class folders, a single class, an empty class folder, or a class not in ``class_names``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist or is not a folder.")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not found:
        raise ValueError(
            f"Image folder {root} has no class subfolders: expected one folder of images per class,"
            f" e.g. {root / 'cat' / '0001.png'}."
        )
    if class_names is None:
        if len(found) < 2:
            raise ValueError(
                f"Image folder {root} has only one class folder ({found[0]!r}): a classifier needs at least 2 classes."
            )
        classes = found
    else:
        classes = list(class_names)
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise ValueError(
                f"Image folder {root} has class folders {unknown} that are not among the classes {classes}."
            )
    exts = tuple(e.lower() for e in check_extensions(extensions))
    paths: list[str] = []
    labels: list[int] = []
    # A link inside a class folder to the root or to another class folder would give images a second label.
    others = {os.path.realpath(root)} | {os.path.realpath(root / n) for n in classes}
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue  # a test folder may lack a class
        files = image_files(folder, exts, skip=others - {os.path.realpath(folder)})
        if not files:
            raise ValueError(
                f"Class folder {folder} has no images (files ending in {', '.join(exts)}): add images or remove it."
            )
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), classes


def check_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """File name endings as a tuple, each with its dot (``"png"`` means ``".png"``; a bare string is one ending)."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    exts = tuple(extensions)
    bad = [e for e in exts if not isinstance(e, str) or not e.strip(".")]
    if bad:
        raise ValueError(f"Expected extensions to be file endings such as ('.png', '.jpg'), but got {exts!r}.")
    return tuple(e if e.startswith(".") else f".{e}" for e in exts)


def image_files(
    folder: str | Path, extensions: Sequence[str], skip: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """The image files under ``folder`` at any depth (names ending in ``extensions``, no hidden files), sorted.

    Linked subfolders are followed, as torchvision's ``ImageFolder`` does, each real folder once: a loop of links
    ends, and the same images do not come twice (they could then land in both training and test). Folders whose
    real path is in ``skip`` are not entered.
    """
    exts = tuple(e.lower() for e in extensions)
    found: list[str] = []
    seen: set[str] = set()
    for d, dirs, fs in os.walk(folder, followlinks=True):
        real = os.path.realpath(d)
        if real in seen or real in skip:
            dirs[:] = []
            continue
        seen.add(real)
        found += (os.path.join(d, f) for f in fs)
    return sorted(p for p in found if p.lower().endswith(exts) and not os.path.basename(p).startswith("."))


def load_image(
    path: str | Path,
    color: ColorMode = "rgb",
    image_size: int | None = None,
    resize_mode: ResizeMode = "stretch",
) -> torch.Tensor:
    """Decode an image file to a float tensor ``[C, H, W]`` in ``[0, 1]``, upright.

    An EXIF orientation tag (a phone's photo stored sideways, e.g. orientation 6) is applied first
    (:func:`PIL.ImageOps.exif_transpose`), so the image comes as a viewer shows it.

    8-bit images are divided by 255; 16-bit grayscale images (PIL modes ``I;16*``, and ``I`` with values up
    to 65535) by 65535, as :func:`torchvision.transforms.v2.functional.to_dtype` scales ``uint16``;
    32-bit float images (mode ``F``) are taken as they are and must lie in ``[0, 1]``.

    Args:
        path: the file.
        color: ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
        image_size: resize to ``image_size × image_size`` (``None``: keep the size).
        resize_mode: ``"stretch"`` resizes to the square; ``"center_crop"`` resizes the shorter side and
            crops the centre.

    Raises:
        BadImageError: when the file cannot be read or decoded (its path is in the message).
    """
    from PIL import Image, ImageOps

    try:
        img: Image.Image
        with Image.open(path) as opened:
            opened.load()
            upright = ImageOps.exif_transpose(opened)  # a camera's EXIF orientation: as a viewer shows it
            high = _high_depth_as_float(upright)
            img = upright.convert("RGB" if color == "rgb" else "L") if high is None else high
        if image_size is not None:
            w, h = img.size
            if resize_mode == "center_crop":
                scale = image_size / min(w, h)
                nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
                img = img.resize((nw, nh), Image.Resampling.BILINEAR)
                left, top = (nw - image_size) // 2, (nh - image_size) // 2
                img = img.crop((left, top, left + image_size, top + image_size))
            elif (w, h) != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.float32) if img.mode == "F" else np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadImageError(path, err) from err
    x = torch.from_numpy(array.copy())
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
    if img.mode != "F":
        return x.float().div_(255.0)
    return x.expand(3, -1, -1).contiguous() if color == "rgb" else x


def _high_depth_as_float(img: Any) -> Any:
    """A 16-bit or 32-bit single-channel PIL image as a float (mode ``F``) image in ``[0, 1]``, else ``None``.

    ``convert("L")`` would clip such images at 255 instead of scaling them.
    """
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return None
    array = np.asarray(img).astype(np.float32)
    if array.size == 0:
        raise ValueError("the image has no pixels")
    low, high = float(array.min()), float(array.max())
    if img.mode == "F":
        if low < 0.0 or high > 1.0 or not np.isfinite(array).all():
            raise ValueError(f"a 32-bit float image must have values in [0, 1], but has [{low:g}, {high:g}]")
    elif low < 0 or high > 65535:
        raise ValueError(
            f"a 32-bit integer image must have values in [0, 65535] (16 bits), but has [{low:g}, {high:g}]"
        )
    else:
        array /= 65535.0
    return Image.fromarray(array)
