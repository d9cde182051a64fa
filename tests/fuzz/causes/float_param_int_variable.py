# A parameter converted with "float" (Dropout1d/2d p, PReLU init; Dropout's p via dropout_p) becomes a float only when it is an int literal: an int reaching it through a variable or a factory's parameter is passed as is, and MindSpore 2.10 raises (TypeError: 'p' should be 'float'), with no finding (unreported raise).
import torch.nn as nn

rate = 0
drop = nn.Dropout2d(rate)
record("out", drop(sample(2, 4, 5, 4, seed=1)))
