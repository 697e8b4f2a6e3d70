"""The pix2pix U-Net generator: an encoder-decoder with a skip connection at every level."""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nn.layout import norm_bias
from gankit.nn.norms import norm_layer
from gankit.nn.padding import check_multiple

DROPOUT_LEVELS = 3  # up blocks right outside the innermost one that get Dropout(0.5)


class UnetBlock(nn.Module):
    """One level: ``down -> inner -> up``, concatenated with the input except at the top."""

    def __init__(self, down: nn.Module, inner: nn.Module, up: nn.Module, skip: bool) -> None:
        super().__init__()
        self.down = down
        self.inner = inner
        self.up = up
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.inner(self.down(x)))
        return torch.cat([x, y], dim=1) if self.skip else y


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 4x4 convs; 8 downs map 256x256 to a 1x1 bottleneck.

    Channels double per level from ``ngf`` up to ``8 * ngf``. The outermost and innermost
    down convs have no norm, so a 1x1 bottleneck never meets BatchNorm (which fails with batch
    size 1). LeakyReLU(0.2) on the way down, ReLU on the way up, Tanh at the output. With
    ``dropout`` the up blocks of the 3 levels just outside the innermost get Dropout(0.5)
    (for unet_256 that is exactly pix2pix; the reference gives unet_128 only 2).
    ``conv_bias="official"``: every conv but the output one has a bias only with instance
    norm, as in pix2pix; ``"gankit1"``: a bias unless BatchNorm follows (gankit 1's layout).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
        conv_bias: str = "official",
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ConfigError(f"UnetGenerator needs num_downs >= 2, got {num_downs}")
        self.size_multiple = 2**num_downs
        bias = norm_bias(norm, conv_bias)
        # gankit 1 gave the down convs no norm follows (outermost, innermost) a bias always
        bare_down_bias = bias if conv_bias == "official" else True
        widths = [ngf * min(2**level, 8) for level in range(num_downs)]
        innermost = num_downs - 1

        block: nn.Module = nn.Identity()
        for level in range(innermost, -1, -1):
            outer = in_channels if level == 0 else widths[level - 1]
            width = widths[level]
            is_inner = level == innermost
            is_outer = level == 0
            has_down_norm = not (is_inner or is_outer)
            down_bias = bias if has_down_norm else bare_down_bias
            down_conv = nn.Conv2d(outer, width, 4, stride=2, padding=1, bias=down_bias)
            # not in place: the block input is also the skip tensor (the result is the same)
            down: list[nn.Module] = [] if is_outer else [nn.LeakyReLU(0.2)]
            down.append(down_conv)
            if has_down_norm:
                down.append(norm_layer(norm, width))

            up_in = width if is_inner else 2 * width
            up: list[nn.Module] = [nn.ReLU(inplace=True)]
            if is_outer:
                up += [nn.ConvTranspose2d(up_in, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                up += [
                    nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias),
                    norm_layer(norm, outer),
                ]
                if dropout and innermost - DROPOUT_LEVELS <= level < innermost:
                    up.append(nn.Dropout(0.5))
            block = UnetBlock(nn.Sequential(*down), block, nn.Sequential(*up), skip=not is_outer)
        self.model = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_multiple(x, self.size_multiple, f"UnetGenerator({self.size_multiple})")
        return self.model(x)
