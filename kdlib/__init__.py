"""kdlib: the small library behind *Knowledge Distillation for Spatiotemporal Data*.

One concern per module: ``data`` (datasets, windows, scaler), ``models``, ``losses``,
``train`` (``fit``/``predict``), ``metrics``, ``evaluation`` (error tables), ``baselines``
(forecasting baselines), ``transfer`` (teacher-labelled transfer sets), ``profiling``,
``checkpoints``, ``seed``.
"""

from .augment import random_shift
from .baselines import HistoricalAverage, LinearForecaster, last_value_forecast
from .checkpoints import load_checkpoint, save_checkpoint
from .data import (
    MNIST,
    MetrLAWeek,
    StandardScaler,
    TrafficWindows,
    chronological_split,
    data_dir,
    load_metr_la_week,
    load_mnist,
    sliding_windows,
    traffic_splits,
)
from .experiments import (
    Method,
    StudentRuns,
    cosine_adam,
    epochs_to_target,
    gap_recovered,
    paired_differences,
    parallel_map,
    seconds_to_target,
    summarize,
    train_students,
)
from .evaluation import horizon_table, mean_std_table
from .losses import (
    HintDistillationLoss,
    HintLoss,
    distillation_loss,
    kd_loss,
    logit_distillation_loss,
    logit_gradient,
    logit_matching_loss,
    output_distillation_loss,
    partial_label_distillation_loss,
    softmax_t,
    teacher_bounded_loss,
)
from .metrics import accuracy, errors, horizon_metrics, masked_mae, masked_mape, masked_rmse
from .models import MLP, STUDENT_SIZES, DiffusionMLP, Ensemble, GraphWaveNet, SmallCNN, STIDStudent
from .profiling import break_even_inferences, compare, count_parameters, flops_per_sample, latency, profile, size_on_disk, training_step_seconds
from .seed import seed_everything
from .train import History, default_device, fit, predict
from .transfer import perturbed_copies, with_transfer

__version__ = "0.1.0"
