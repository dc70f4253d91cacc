"""Contour roles: what each drawn layer means, its colour, and which networks may fill it.

The colours are those of the TRFE-Net paper's Fig. 1: green the ground truth or the
corrected label, yellow U-Net, red TRFE-Net; the thyroid gland predicted by a network
with a gland head is a quieter light blue. The overlay images, the app's layers, its
legend and the models dialog all read this one table; a new role is one entry.

Filled areas are hatched, each role in its own direction, never tinted: two translucent
tints mix (red over green looks yellow, U-Net's colour), crossing lines stay apart.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .architectures import ArchSpec, arch_spec

RGB = tuple[int, int, int]
HATCHES = ("/", "\\", "-", "|")  # diagonal up, diagonal down, horizontal, vertical lines


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
    hatch: str  # how a filled area is drawn: one of HATCHES, a different one per role
    opacity: float = 1.0  # default on screen
    fits: Callable[[ArchSpec], bool] | None = None
    from_role: str | None = None

    @property
    def model_slot(self) -> bool:
        return self.fits is not None


ROLES: dict[str, Role] = {
    role.key: role
    for role in (
        Role("label", "Label / ground truth", (0, 255, 0), 2, "\\"),
        Role("trfe", "TRFE-Net", (255, 0, 0), 2, "/", fits=lambda spec: spec.has_prior),
        Role("unet", "U-Net", (255, 255, 0), 2, "-", fits=lambda spec: not spec.has_gland),
        Role("gland", "Thyroid gland", (0, 200, 255), 1, "|", opacity=0.6, from_role="trfe"),
    )
}
MODEL_ROLES: tuple[str, ...] = tuple(key for key, role in ROLES.items() if role.model_slot)
WHOLE_IMAGE_GLAND = 0.9  # a gland over this share of the ultrasound image outlines the image, not a gland: not drawn
PRIMARY_ROLE = "trfe"  # the model behind batch runs, fine-tuning, the probability heat map and "worst first"


def fits(role: str, arch: str) -> bool:
    """Whether a network of architecture ``arch`` may fill the model slot of ``role`` (False for an
    unknown architecture or a role without a slot)."""
    try:
        spec = arch_spec(arch)
    except ValueError:
        return False
    check = ROLES[role].fits
    return check is not None and check(spec)
