"""The networks: U-Net, MT-Net and TRFE-Net (variants A, B, C) on any encoder of ``encoders.ENCODERS``.

Every network takes a (N, C, H, W) batch with H and W divisible by the encoder's
deepest stride (16 plain, 32 EfficientNet-Lite) and returns a dict of logits at input
resolution: ``"nodule"`` always, ``"gland"`` when the network has a gland head, and
``"findings"`` (a dict of classification logits) when it was built with a vocabulary.
"""
from .encoders import ENCODERS
from .mtnet import MTNet
from .trfe import TRFENet
from .unet import UNet

__all__ = ["ENCODERS", "UNet", "MTNet", "TRFENet"]
