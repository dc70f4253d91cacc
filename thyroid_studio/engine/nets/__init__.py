"""The networks: U-Net, MT-Net and TRFE-Net (variants A, B, C); LiteMedSAM for box prompts.

Every segmentation network takes a (N, C, H, W) batch with H and W divisible by 16
and returns a dict of logits at input resolution: ``"nodule"`` always, ``"gland"``
when the network has a gland head. LiteMedSAM (``litemedsam.py``) is of another
kind: it encodes a square image once and decodes a mask per box prompt.
"""
from .litemedsam import LiteMedSAM
from .mtnet import MTNet
from .trfe import TRFENet
from .unet import UNet

__all__ = ["UNet", "MTNet", "TRFENet", "LiteMedSAM"]
