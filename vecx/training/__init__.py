"""Training, written once against the ``Backend`` protocol: any model, every backend.

``vecx.fit`` trains a model given as a loss and initial parameters (or a built-in task)
by minibatch SGD or momentum; ``vecx.train`` runs one of d2l's experiments (``PRESETS``).
The pieces, one module each: ``tasks`` (models and their losses), ``optimizers``,
``schedule`` (which minibatches each segment trains on), ``executors`` (how a segment's
steps run), ``precision`` (mixed precision: the cast points and loss scaling), ``loop``
(validation, clock, checkpoints, divergence) and ``history``.
"""

from vecx.training.executors import EXECUTORS, Executor, Problem, StepExecutor, get_executor
from vecx.training.history import Checkpoint, History
from vecx.training.loop import DIVERGENCE_FACTOR, fit, init_params
from vecx.training.optimizers import OPTIMIZERS, Momentum, Optimizer, momentum, sgd
from vecx.training.precision import LossScale, Policy
from vecx.training.presets import PRESETS, Preset, train
from vecx.training.tasks import TASKS, Task, accuracy, cross_entropy, linreg, squared_loss

__all__ = [
    "DIVERGENCE_FACTOR",
    "EXECUTORS",
    "OPTIMIZERS",
    "PRESETS",
    "TASKS",
    "Checkpoint",
    "Executor",
    "History",
    "LossScale",
    "Momentum",
    "Optimizer",
    "Policy",
    "Preset",
    "Problem",
    "StepExecutor",
    "Task",
    "accuracy",
    "cross_entropy",
    "fit",
    "get_executor",
    "init_params",
    "linreg",
    "momentum",
    "sgd",
    "squared_loss",
    "train",
]
