# ConvTranspose1d/2d with no padding and a (dilated) kernel smaller than the stride in some dimension: converted to pad_mode='valid', where MindSpore 2.10 makes (in - 1) * stride + max(kernel, stride) outputs and torch (in - 1) * stride + kernel: another shape, no finding (silent difference). With padding (pad_mode='pad') the shapes agree.
import torch.nn as nn

conv = nn.ConvTranspose2d(4, 4, kernel_size=1, stride=2)
record("out", conv(sample(2, 4, 5, 4, seed=1)))
