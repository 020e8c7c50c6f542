"""`trace`: record a function's graph once, then replay it over whole batches with numpy.

The graph of a model is the same for every sample; only the numbers change.
``trace(fn, example)`` calls ``fn`` once on Values and keeps the graph as a
flat tape of *slots*: the traced inputs, the parameters (leaves that require a
gradient: the replay re-reads their ``.data`` every time and adds the batch's
gradient to their ``.grad``), the constants (frozen at trace time) and one slot
per operation. A replay holds every slot as a row of a 2-D array ``S`` of shape
(slots, batch): row ``s`` has one entry per sample.

Tracing is a small compiler: record (tape) → schedule (levels, groups, chains) → kernels.
One module per stage; each imports only the ones listed below it:

- `record`: `trace` calls the function once on Values and hands its graph to `Trace`;
  `indices` marks integer arguments, `traced` traces once per shape.
- `replay`: `Trace` numbers the schedule's blocks into slots of ``S``, plans the
  gradients, and replays forward and backward (fast pass, careful pass); `Batch`, `Seed`.
- `layers`: the fused dense layers (matrix products) and the selects (gathers).
- `kernels`: numpy, `NumpyMath`, the groups and chains run rule by rule, the BLAS calls.
- `schedule`: the nodes by level, the dense layers found on the tape, and the cut into
  groups, chains, layers and selects (no numpy).

The switches live in the module that reads them, and are set there:
`schedule.FUSE_LAYERS`, `schedule.SMALLEST_GROUP`, `schedule.SMALLEST_LAYER`,
`schedule.LONE_NEURON_INPUTS`, `kernels.BLAS_CALL_SIZE`.

Limits (as in ``jax.jit``): Python control flow runs once, at trace time. A
comparison or ``float()`` on a Value while tracing raises `TraceError`, and so
do ``no_grad``, ``backward()`` and ``grad()`` without ``create_graph`` inside
the traced function (their float gradients would be frozen; ``grad(...,
create_graph=True)`` is recorded, derivatives of relu and abs included);
reading ``.data`` directly cannot be detected and is frozen silently.
"""

from .kernels import NUMPY_MISSING, NumpyMath
from .record import Example, Indices, TracedByShape, indices, trace, traced
from .replay import Batch, Seed, Trace

__all__ = [
    "NUMPY_MISSING",
    "Batch",
    "Seed",
    "Example",
    "Indices",
    "NumpyMath",
    "Trace",
    "TracedByShape",
    "indices",
    "trace",
    "traced",
]
