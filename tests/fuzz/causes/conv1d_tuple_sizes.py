# Conv1d/ConvTranspose1d: a 1-tuple stride, dilation (or kernel_size) is copied as written; MindSpore 2.10's Conv1d/Conv1dTranspose take an int only and raise (TypeError), with no finding (unreported raise).
import torch.nn as nn

conv = nn.Conv1d(4, 4, 2, stride=(2,))
record("out", conv(sample(3, 4, 6, seed=1)))
