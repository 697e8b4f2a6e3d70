"""Metrics of image sets and image pairs: FID, KID, L1, PSNR, SSIM.

>>> from gankit import metrics
>>> metrics.fid("datasets/real", "samples/")                 # clean-fid protocol by default
>>> metrics.compare("datasets/real", fakes, kid=True)        # fakes: (N, C, H, W) in [-1, 1]
>>> metrics.ssim(outputs, targets)

FID and KID use the TF 2015-12-05 Inception-v3 that every paper uses (see
:mod:`gankit.metrics.weights` for where the file comes from) and a named resize protocol
(:mod:`gankit.metrics.resize`). See docs/metrics.md.
"""

from gankit.metrics.cache import cached_stats, file_fingerprint
from gankit.metrics.compare import (
    SetComparison,
    compare,
    feature_stats,
    fid,
    image_files,
    kid,
    kid_from_stats,
    reference_stats,
)
from gankit.metrics.features import DIMS, FeatureExtractor, inception_features
from gankit.metrics.frechet import fid_from_stats, frechet_distance, trace_sqrt_low_rank
from gankit.metrics.kid import KIDResult, kernel_inception_distance, mmd2_unbiased
from gankit.metrics.paired import l1, psnr, ssim
from gankit.metrics.resize import PROTOCOLS, describe_protocol
from gankit.metrics.stats import FeatureStats
from gankit.metrics.weights import EXPECTED_SHA256, InceptionWeights, find_weights

__all__ = [
    "DIMS",
    "EXPECTED_SHA256",
    "PROTOCOLS",
    "FeatureExtractor",
    "FeatureStats",
    "InceptionWeights",
    "KIDResult",
    "SetComparison",
    "cached_stats",
    "compare",
    "describe_protocol",
    "feature_stats",
    "fid",
    "fid_from_stats",
    "file_fingerprint",
    "find_weights",
    "frechet_distance",
    "image_files",
    "inception_features",
    "kernel_inception_distance",
    "kid",
    "kid_from_stats",
    "l1",
    "mmd2_unbiased",
    "psnr",
    "reference_stats",
    "ssim",
    "trace_sqrt_low_rank",
]
