"""Contour roles: what each drawn layer means, its colour, and which networks may fill it.

The colours are those of the TRFE-Net paper's Fig. 1: green the ground truth or the
corrected label, yellow U-Net, red TRFE-Net; the thyroid gland predicted by a network
with a gland head is a quieter light blue. The overlay images, the app's layers, its
legend and the models dialog all read this one table; a new role is one entry.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .architectures import ArchSpec

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Role:
    """One contour layer.

    ``model_slot``: the layer shows the nodule mask of a model chosen for this role (the
    user picks the checkpoint; ``fits`` says which architectures may be chosen);
    ``from_role``: the layer shows the gland mask of another role's model instead.
    """

    key: str
    title: str
    colour: RGB
    thickness: int  # pixels, in exported overlays
    fits: Callable[[ArchSpec], bool] | None = None
    from_role: str | None = None

    @property
    def model_slot(self) -> bool:
        return self.fits is not None


ROLES: dict[str, Role] = {
    role.key: role
    for role in (
        Role("label", "Label / ground truth", (0, 255, 0), 2),
        Role("trfe", "TRFE-Net", (255, 0, 0), 2, fits=lambda spec: spec.has_prior),
        Role("unet", "U-Net", (255, 255, 0), 2, fits=lambda spec: not spec.has_gland),
        Role("gland", "Thyroid gland", (0, 200, 255), 1, from_role="trfe"),
    )
}
MODEL_ROLES: tuple[str, ...] = tuple(key for key, role in ROLES.items() if role.model_slot)
