"""The networks: U-Net, MT-Net and TRFE-Net (variants A, B, C) on any encoder of ``encoders.ENCODERS``;
LiteMedSAM for box prompts.

Every segmentation network takes a (N, C, H, W) batch with H and W divisible by the
encoder's deepest stride (16 plain, 32 EfficientNet-Lite) and returns a dict of logits at
input resolution: ``"nodule"`` always, ``"gland"`` when the network has a gland head, and
``"findings"`` (a dict of classification logits) when it was built with a vocabulary.
LiteMedSAM (``litemedsam.py``) is of another kind: it encodes a square image once and
decodes a mask per box prompt.
"""
from .encoders import ENCODERS
from .litemedsam import LiteMedSAM
from .mtnet import MTNet
from .trfe import TRFENet
from .unet import UNet

__all__ = ["ENCODERS", "UNet", "MTNet", "TRFENet", "LiteMedSAM"]
