# MaxPool1d: a 1-tuple kernel_size or stride is copied as written; MindSpore 2.10's MaxPool1d takes an int only and raises (TypeError), with no finding (unreported raise). AvgPool1d takes the tuple.
import torch.nn as nn

pool = nn.MaxPool1d(kernel_size=(2,))
record("out", pool(sample(3, 4, 6, seed=1)))
