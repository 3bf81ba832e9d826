"""Sample-quality metrics on minigen's own feature network (seeds 000 and 004).

* ``inception_score(probs, splits=10)`` -> (mean, std)          Salimans et al. 2016
* ``frechet_distance(mu1, sigma1, mu2, sigma2)``, ``fid(images_a, images_b)``   Heusel et al. 2017
* ``kid(feats_a, feats_b, subsets=100, subset_size=1000)`` -> (mean, std)   Bińkowski et al. 2018
* ``precision_recall(feats_real, feats_fake, k=3)``             Kynkäänniemi et al. 2019
* ``kl_divergence(p, q)``; ``embed(images)`` -> (features, p(y|x)) of the shipped network
* ``minigen.metrics.scoring``: all of them at once against Fashion-MNIST's test set
"""
from .classifier import (ConvClassifier, evaluate, extract_features, load_classifier,  # noqa: F401
                         predict_logits, save_classifier, train_classifier)
from .divergence import kl_divergence  # noqa: F401
from .features import (WeightsChecksumError, embed, feature_network,  # noqa: F401
                       load_feature_network)
from .frechet import fid, frechet_distance, gaussian_statistics  # noqa: F401
from .inception import inception_score  # noqa: F401
from .mmd import kid, mmd2_unbiased  # noqa: F401
from .knn_manifold import precision_recall  # noqa: F401
