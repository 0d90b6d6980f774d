"""Intermediate NEB images by linear or IDPP interpolation (ASE)."""

from __future__ import annotations

import warnings

from ase import Atoms

from ionmd.errors import InputError

METHODS: tuple[str, ...] = ("linear", "idpp")


def make_images(initial: Atoms, final: Atoms, n_images: int, method: str = "idpp") -> list[Atoms]:
    """Return ``n_images`` images (end points included) from ``initial`` to ``final``.

    Displacements use the minimum-image convention, so an atom that crosses a
    periodic boundary takes the short way. ``idpp`` is the image-dependent pair
    potential path of Smidstrup et al. (2014), which keeps atoms apart better
    than the straight line.
    """
    if method not in METHODS:
        raise InputError(f"unknown interpolation {method!r}; choose one of {', '.join(METHODS)}")
    if n_images < 3:
        raise InputError(
            f"need at least 3 images (2 end points and 1 intermediate), got {n_images}"
        )
    from ase.mep import NEB

    images = [initial.copy()] + [initial.copy() for _ in range(n_images - 2)] + [final.copy()]
    for im in images:
        im.calc = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        band = NEB(images, method="improvedtangent")
        band.interpolate(method=method, mic=True)
    return images
