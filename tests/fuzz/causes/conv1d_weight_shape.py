# Reading Conv1d's (and ConvTranspose1d's) weight: MindSpore holds it as (out, in/groups, 1, k), torch as (out, in/groups, k) (rules/conv.toml inserted_axes); the attribute read is converted with no finding, and the value read has another shape (silent difference).
import torch.nn as nn

conv = nn.Conv1d(4, 8, 3)
record("weight", conv.weight)
