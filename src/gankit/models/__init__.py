"""Every model file is imported here so that its ``@register_model`` runs."""

from gankit.models import (  # noqa: F401
    aae,
    acgan,
    bgan,
    cgan,
    colorization,
    cyclegan,
    dcgan,
    dragan,
    gan,
    lsgan,
    pix2pix,
    sgan,
    wgan,
    wgan_gp,
)
