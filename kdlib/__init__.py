"""kdlib: the small library behind *Knowledge Distillation for Spatiotemporal Data*; one concern per module, in order:

==================  ==============================================================
``files``           data, cache and checkpoint folders; SHA-256-verified downloads
``data``            the datasets (MNIST, the METR-LA week), in memory
``preprocessing``   scaler, chronological split and halves, windows, sensor outages, augmentation, transfer sets
``models``          MNIST classifiers, traffic forecasters and their graph support
``baselines``       forecasting baselines (last value, historical average, linear), as models
``losses``          distillation losses, each a typed function with its formula
``metrics``         accuracy, errors, masked MAE/RMSE/MAPE, horizon tables
``train``           ``seed_everything``, ``fit``, ``predict``, optimiser recipes
``stacked``         ``fit_stacked``: K seeds of a small model trained at once
``experiments``     methods over seeds, tables, paired statistics
``teachers``        ``load_teacher(name)``, cached and out-of-fold teacher outputs, retraining CLI
``profiling``       parameters, FLOPs, latency, training-step time, break-even
``plots``           the book's recurring figures (imported as ``kdlib.plots``)
``exercises``       ``check_answer`` for the book's self-checking exercises
==================  ==============================================================

``kdlib`` re-exports every module's names except ``kdlib.plots`` (so ``import kdlib`` does not import matplotlib).
"""

from . import baselines, data, exercises, experiments, files, losses, metrics, models, preprocessing, profiling, stacked, teachers, train
from .baselines import *  # noqa: F403
from .data import *  # noqa: F403
from .exercises import *  # noqa: F403
from .experiments import *  # noqa: F403
from .files import *  # noqa: F403
from .losses import *  # noqa: F403
from .metrics import *  # noqa: F403
from .models import *  # noqa: F403
from .preprocessing import *  # noqa: F403
from .profiling import *  # noqa: F403
from .stacked import *  # noqa: F403
from .teachers import *  # noqa: F403
from .train import *  # noqa: F403

__all__: list[str] = [name for m in (baselines, data, exercises, experiments, files, losses, metrics, models, preprocessing,
                          profiling, stacked, teachers, train) for name in m.__all__]
__version__ = "0.2.0"
