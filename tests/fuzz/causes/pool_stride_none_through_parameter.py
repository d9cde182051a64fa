# MaxPool2d (and the other pools) with stride=None reaching it through a factory parameter: the None is passed to MindSpore, which raises (TypeError: stride NoneType), no finding (unreported raise). A literal stride=None is converted to the kernel size.
import torch.nn as nn

def make(k, s):
    return nn.MaxPool2d(k, s)

pool = make(2, None)
record("out", pool(sample(2, 4, 5, 4, seed=1)))
