"""Neural networks on the `autograd` engine: the classic backpropagation method,
as textbooks state it, with modern initializers, losses and optimizers.

>>> import nn
>>> model = nn.MLP(2, [2, 1], activation="sigmoid", init="xavier_uniform", seed=0)
>>> out = model([0.5, 0.1])
"""

from __future__ import annotations

from . import data, functional, init, losses, lr_scheduler, optim, plot, utils
from .draw import draw_network
from .interop import from_torch, to_torch
from .module import MLP, Layer, Neuron
from .modules import (
    BatchNorm1d,
    Dropout,
    Embedding,
    Identity,
    Linear,
    Module,
    ReLU,
    RMSNorm,
    Sequential,
    Sigmoid,
    Tanh,
)
from .trainer import EarlyStopping, History, Trainer

__all__ = [
    "Module",
    "Linear",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "Identity",
    "Dropout",
    "BatchNorm1d",
    "Embedding",
    "RMSNorm",
    "functional",
    "Neuron",
    "Layer",
    "MLP",
    "Trainer",
    "History",
    "EarlyStopping",
    "init",
    "to_torch",
    "from_torch",
    "losses",
    "optim",
    "lr_scheduler",
    "utils",
    "data",
    "draw_network",
    "plot",
]
