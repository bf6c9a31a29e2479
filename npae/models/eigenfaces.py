"""Eigenfaces: the lecture's "Applications of PCA" (Turk & Pentland, 1991).

An N x M image is a point in R^{NM}; faces fill a low-dimensional part of that space. With
training faces F_1 .. F_M (rows, flattened):

    (1)  F = (1/M) sum_i F_i,        f_i = F_i - F                 mean image, centred faces
    (2)  u_1 .. u_K: the top-K eigenvectors of the covariance of the f_i      eigenfaces
    (3)  a_j = u_j^T (A - F)                                        the codes of an image A
    (4)  A ~ F + a_1 u_1 + a_2 u_2 + ... + a_K u_K                  K-term linear approximation
    (5)  k* = argmin_k ||a - a_k||      a_k: the code of face class k (recognition)
    (6)  e(A) = ||(A - F) - sum_j a_j u_j||                        distance from face space

(2) is ``npae.models.PCA``; this class only adds the image bookkeeping and (4)-(6).
In (5) the code of class k is either the mean of its training codes (``match="mean"``, as in
Turk & Pentland) or the code of the nearest training image (``match="nearest"``, 1-NN).
Because u_j are orthonormal, ||a - a_k|| is the distance between the projections of the two
images onto the face space, so (5) and (6) together split ||A - A_k|| into "which face" and
"how much of a face".

Contrast. With ``standardize=True`` every image is first shifted and scaled to zero mean and
unit standard deviation over its pixels (Turk & Pentland work on such normalised images).
It matters for (6): a flat background patch has little energy of its own, so without it a
non-face can lie *closer* to face space than a face does (on scikit-image's LFW subset the
raw distance separates faces from non-faces worse than chance; standardised, the ROC AUC is
above 0.9 with K = 5).
"""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_float_array, check_param
from .base import BaseEstimator, check_is_fitted
from .pca import PCA, check_n_components

__all__ = ["Eigenfaces"]


class Eigenfaces(BaseEstimator):
    """Mean image, eigen-images, codes, K-term approximations and nearest-class recognition.

    Parameters
    ----------
    n_components : int, float in (0, 1) or None
        K, the number of eigenfaces (1 <= K <= min(n_images, n_pixels)); a float f keeps the
        smallest K whose eigenfaces explain more than the fraction f of the variance (the
        K-term approximation (4) asks "how many terms?"); None keeps all.
    match : "nearest" or "mean"
        The class code a_k of (5): the nearest training image's code or the class mean code.
    standardize : bool
        Give every image zero mean and unit standard deviation before anything else
        (applied in every method, so test images are treated like training images).
    solver : "auto", "svd" or "eigh"
        Passed to ``PCA``.

    Attributes
    ----------
    image_shape_ : tuple       shape of one image, e.g. (112, 92)
    mean_image_ : image_shape_          F of (1)
    eigenfaces_ : (K,) + image_shape_   u_1 .. u_K of (2), as images
    codes_ : (n, K)            codes (3) of the training images
    labels_ : (n,) or None     training labels
    classes_ : (c,)            the distinct labels (when labels were given)
    class_codes_ : (c, K)      mean code of each class
    explained_variance_ratio_ : (K,)
    pca_ : PCA                 the fitted PCA on the flattened images
    """

    def __init__(self, n_components=None, *, match="nearest", standardize=False, solver="auto"):
        self.n_components = n_components
        self.match = match
        self.standardize = standardize
        self.solver = solver

    # -- images <-> rows -------------------------------------------------------------------
    def _as_rows(self, images, reset):
        images = as_float_array(images, "images", dtype=np.float64)
        if images.ndim not in (2, 3):
            raise ValueError(f"images must be a 3-D array (n_images, height, width) or a 2-D "
                             f"array of flattened images (n_images, n_pixels); got shape "
                             f"{images.shape}. Reshape your data: images[None] for one image")
        shape = images.shape[1:]
        if reset:
            self.image_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif images.ndim == 2 and shape[0] != self.n_features_in_:
            # scikit-learn's wording for flattened images (rows of X), which its checks expect
            raise ValueError(f"X has {shape[0]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input (images of "
                             f"shape {self.image_shape_}, flattened)")
        elif shape != self.image_shape_ and (images.ndim != 2 or
                                             shape[0] != int(np.prod(self.image_shape_))):
            raise ValueError(f"images have shape {shape} each, but this model was fitted on "
                             f"images of shape {self.image_shape_}; resize them first")
        X = images.reshape(len(images), -1)
        if self.standardize:
            X = X - X.mean(axis=1, keepdims=True)
            sd = X.std(axis=1, keepdims=True)
            # a constant image has no contrast to normalise: it stays all zeros
            np.divide(X, sd, out=X, where=sd > 0)
        return X

    def _as_images(self, rows):
        return rows.reshape((len(rows),) + tuple(self.image_shape_))

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, images, y=None):
        """Learn (1)-(3) from training images; labels ``y`` (one per image) enable ``predict``."""
        labels = y  # scikit-learn's name for the targets; here the identity of each face
        check_param("match", self.match, options=("nearest", "mean"))
        check_param("standardize", self.standardize, options=(True, False))
        X = self._as_rows(images, reset=True)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.ndim != 1 or len(labels) != len(X):
                raise ValueError(f"y must be one label per image: got shape {labels.shape} "
                                 f"for {len(X)} images")
        if isinstance(self.n_components, numbers.Integral):
            check_n_components(self.n_components, X)   # an eigenface at least
        self.pca_ = PCA(self.n_components, solver=self.solver).fit(X)
        self.n_components_ = self.pca_.n_components_
        self.mean_image_ = self._as_images(self.pca_.mean_[None])[0]
        self.eigenfaces_ = self._as_images(self.pca_.components_)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        self.codes_ = self.pca_.transform(X)
        self.labels_ = labels
        if labels is not None:
            self.classes_, inverse = np.unique(labels, return_inverse=True)
            counts = np.bincount(inverse)
            sums = np.zeros((len(self.classes_), self.n_components_))
            np.add.at(sums, inverse, self.codes_)
            self.class_codes_ = sums / counts[:, None]
        return self

    def _check_fitted(self):
        check_is_fitted(self, "pca_")

    # -- (3)-(6) -------------------------------------------------------------------------------
    def transform(self, images):
        """Codes (3) a_j = u_j^T (A - F), shape (n, K)."""
        self._check_fitted()
        return self.pca_.transform(self._as_rows(images, reset=False))

    def approximate(self, images, K=None):
        """The K-term approximations (4) F + a_1 u_1 + ... + a_K u_K, images of the input's shape.

        K = 0 gives the mean image; K defaults to ``n_components_``. With ``standardize=True``
        these approximate the standardised images.
        """
        self._check_fitted()
        K = self.n_components_ if K is None else K
        check_param("K", K, kind="int", low=0, high=self.n_components_)
        a = self.transform(images)[:, :K]
        U = self.pca_.components_[:K]
        return self._as_images(a @ U + self.pca_.mean_)

    def distance_from_face_space(self, images):
        """(6): the norm of what the K eigenfaces cannot explain, one value per image.

        Large for images that are not faces (Turk & Pentland's face detection).
        """
        self._check_fitted()
        X = self._as_rows(images, reset=False)
        R = X - self.pca_.reconstruct(X)
        return np.sqrt(np.einsum("ij,ij->i", R, R))

    def predict(self, images):
        """(5): the label of the class whose code is nearest to each image's code."""
        self._check_fitted()
        if self.labels_ is None:
            raise ValueError("predict needs labelled training images: call fit(images, labels) "
                             "with one label per image")
        a = self.transform(images)
        refs, ref_labels = ((self.codes_, self.labels_) if self.match == "nearest"
                            else (self.class_codes_, self.classes_))
        # ||a - a_k||^2 = ||a||^2 - 2 a.a_k + ||a_k||^2; ||a||^2 does not change the argmin
        d2 = (refs * refs).sum(axis=1)[None, :] - 2.0 * (a @ refs.T)
        return ref_labels[np.argmin(d2, axis=1)]

    def score(self, images, y):
        """Recognition accuracy of ``predict`` on images with labels ``y``."""
        return float(np.mean(self.predict(images) == np.asarray(y)))
