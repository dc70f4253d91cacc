"""Every registered network: output shapes, gradients, parameter counts at the paper's width."""
from __future__ import annotations

import pytest
import torch

from thyroid_studio.engine.models.architectures import ARCHITECTURES, build_model


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_shapes_and_heads(arch: str) -> None:
    model = build_model(arch, width=4).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96))
    assert out["nodule"].shape == (2, 1, 64, 96)
    if arch == "unet":
        assert "gland" not in out
    else:
        assert out["gland"].shape == (2, 1, 64, 96)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_parameter_gets_a_gradient(arch: str) -> None:
    model = build_model(arch, width=4)
    out = model(torch.randn(2, 3, 32, 32))
    loss = sum(logits.mean() for logits in out.values())
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


@pytest.mark.slow
def test_paper_width_parameter_counts_match_the_paper() -> None:
    # Reference notes: U-Net 31.0 M, MT-Net 43.2 M parameters at 64 base channels.
    count = lambda arch: sum(p.numel() for p in build_model(arch, 64).parameters()) / 1e6  # noqa: E731
    assert count("unet") == pytest.approx(31.0, abs=0.1)
    assert count("mtnet") == pytest.approx(43.2, abs=0.1)
    assert count("trfe-a") == count("mtnet")  # variant A adds no parameters
    assert count("trfe-b") > count("mtnet") and count("trfe-c") > count("trfe-b")


def test_trfe_prior_changes_the_nodule_output() -> None:
    """The gland prior really feeds the nodule decoder: same weights, different gland head -> different nodule."""
    torch.manual_seed(0)
    model = build_model("trfe-a", width=4).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)["nodule"].clone()
        model.gland_decoder.head.bias.add_(5.0)
        after = model(x)["nodule"]
    assert not torch.allclose(before, after)


def test_mtnet_has_no_prior() -> None:
    torch.manual_seed(0)
    model = build_model("mtnet", width=4).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        before = model(x)["nodule"].clone()
        model.gland_decoder.head.bias.add_(5.0)
        assert torch.equal(before, model(x)["nodule"])


def test_unknown_architecture_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unet, mtnet, trfe-a"):
        build_model("deeplab")
