"""The networks: U-Net, MT-Net and TRFE-Net (variants A, B, C).

Every network takes a (N, C, H, W) batch with H and W divisible by 16 and
returns a dict of logits at input resolution: ``"nodule"`` always, ``"gland"``
when the network has a gland head.
"""
from .mtnet import MTNet
from .trfe import TRFENet
from .unet import UNet

__all__ = ["UNet", "MTNet", "TRFENet"]
