"""Every model file is imported here so that its ``@register_model`` runs."""

from gankit.models import colorization, cyclegan, gan, pix2pix  # noqa: F401
