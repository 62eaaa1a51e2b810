"""Long-sequence tasks generated in code (no downloads), deterministic by seed.

Example:

>>> import keras_sparse as ks
>>> data = ks.datasets.listops(8, max_length=128, seed=0)
>>> data.inputs.shape, data.num_classes
((8, 128), 10)
"""

from keras_sparse.datasets.far_retrieval import far_retrieval
from keras_sparse.datasets.listops import TaskData, evaluate, listops
from keras_sparse.datasets.pipeline import as_dataset
from keras_sparse.datasets.vocabulary import Vocabulary

__all__ = ["TaskData", "Vocabulary", "as_dataset", "evaluate", "far_retrieval", "listops"]
