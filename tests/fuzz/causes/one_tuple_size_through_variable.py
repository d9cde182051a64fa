# Conv1d/ConvTranspose1d/MaxPool1d: a 1-tuple size reaching the layer through a variable (a literal (2,) becomes 2) is passed as it is; MindSpore 2.10's one-dimensional layers take an int only and raise (TypeError), with no finding (unreported raise).
import torch.nn as nn

ks = (2,)
conv = nn.Conv1d(4, 4, ks)
record("out", conv(sample(3, 4, 6, seed=1)))
